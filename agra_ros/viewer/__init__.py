"""agra_ros.viewer: looking at a running graph without a ROS distro (a Foxglove WebSocket server)."""
