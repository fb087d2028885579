"""agra_ros.detectors."""
