"""agra_ros.detection."""
