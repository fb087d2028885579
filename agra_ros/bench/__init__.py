"""agra_ros.bench."""
