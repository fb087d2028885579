"""agra_ros.policy."""
