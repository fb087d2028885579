"""agra_ros.detectors.ssd."""
