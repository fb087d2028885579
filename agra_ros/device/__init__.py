"""agra_ros.device: device profiles, the power and thermal models, and the device monitor backends.

``load_profile`` and ``PowerModel`` are what the detector runtime and the simulator use; ``DeviceMonitor`` is what
device_monitor_node wraps; ``DeviceState`` (keys.py) is the device state D shared by simulation and robot.
"""

from agra_ros.device.keys import DEVICE_DIM, DEVICE_KEYS, DeviceState
from agra_ros.device.power_model import PowerModel
from agra_ros.device.profiles import DeviceProfile, ProfileError, available_profiles, load_profile
from agra_ros.device.thermal import ThermalModel

__all__ = [
    "DEVICE_DIM",
    "DEVICE_KEYS",
    "DeviceProfile",
    "DeviceState",
    "PowerModel",
    "ProfileError",
    "ThermalModel",
    "available_profiles",
    "load_profile",
]
