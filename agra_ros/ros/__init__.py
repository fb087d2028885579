"""Conversions between ROS 2 messages and the core's types (images, diagnostics, detections, QoS, parameters).

Together with ``agra_ros.nodes`` this is the only part of the package that imports rclpy and message packages.
"""
