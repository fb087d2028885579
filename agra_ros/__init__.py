"""agra_ros: Adaptive Granularity Resource Allocation for object detection on ROS 2 robots.

The core (every subpackage but ``nodes`` and ``ros``) never imports rclpy, so it can be used and tested
without a ROS installation. docs/architecture.md describes the vocabulary, the layers and the ROS graph.

``agra_ros.msg`` (the package's interfaces, generated from msg/) is not in this folder: ``colcon build`` installs it
next to these modules, and the pip venv's set-up (scripts/build_interfaces.sh) installs it into
``<venv>/lib/agra_ros/python/agra_ros``, which is joined to this package here. It cannot go into site-packages
there: a second ``agra_ros`` folder on sys.path would hide this editable package.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

_generated = _os.path.join(_sys.prefix, "lib", "agra_ros", "python", "agra_ros")
if _os.path.isdir(_generated) and _generated not in __path__:
    __path__.append(_generated)
