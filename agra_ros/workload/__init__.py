"""agra_ros.workload."""
