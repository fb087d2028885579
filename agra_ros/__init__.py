"""agra_ros: Adaptive Granularity Resource Allocation for object detection on ROS 2 robots.

The core (every subpackage but ``nodes`` and ``ros``) never imports rclpy, so it can be used and tested
without a ROS installation. docs/architecture.md describes the vocabulary, the layers and the ROS graph.
"""

__version__ = "0.1.0"
