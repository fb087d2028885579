"""agra_ros.results."""
