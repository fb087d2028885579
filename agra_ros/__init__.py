"""agra_ros: Adaptive Granularity Resource Allocation for object detection on ROS 2 robots.

The core (every subpackage but ``nodes`` and ``ros``) never imports rclpy, so it can be used and tested
without a ROS installation. See DESIGN.md in the project for the vocabulary and the layering.
"""

__version__ = "0.1.0"
