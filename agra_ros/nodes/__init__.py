"""agra_ros.nodes."""
