"""agra_ros.training."""
