"""agra_ros.sim."""
