"""agra_ros.detectors.synthetic."""
