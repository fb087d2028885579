"""agra_ros.device."""
