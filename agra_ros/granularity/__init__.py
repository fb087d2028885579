"""agra_ros.granularity."""
