"""agra_ros.tables."""
