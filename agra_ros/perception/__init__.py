"""agra_ros.perception."""
