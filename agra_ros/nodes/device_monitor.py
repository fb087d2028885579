"""device_monitor_node: the device state on /diagnostics, from real sensors where they exist, modelled elsewhere.

One status (``device_monitor: device``) carries plain numeric keys the policy reads without parsing units
(agra_ros.device.keys) and, for each, ``<key>.source`` naming the backend that produced it. Next to it go statuses
shaped like isaac_ros_jetson_stats' jtop node, so existing dashboards read this node too.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from agra_ros.device.jtop_compat import jtop_statuses
from agra_ros.device.keys import CONTEXT_KEYS, DEVICE_KEYS, DEVICE_STATUS_NAME
from agra_ros.device.monitors import BACKEND_ORDER, DeviceMonitor, parse_backend_list
from agra_ros.device.profiles import ProfileError, available_profiles, load_profile
from agra_ros.ros import params as ros_params
from agra_ros.ros.diagnostics import ERROR, OK, WARN, StatusBuilder, status_from_dict
from agra_ros.ros.spin import spin_node

SPECS = [
    ros_params.ParamSpec("rate_hz", 2.0, "Publishing rate of /diagnostics in Hz.", range=(0.1, 50.0, 0.0)),
    ros_params.ParamSpec(
        "backends",
        "auto",
        "Device backends in priority order, comma-separated, or auto (try all). "
        f"Known: {', '.join(BACKEND_ORDER)}; the modelled source always fills what sensors lack.",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "device_profile",
        "auto",
        "Device profile (config/devices/<name>.yaml or a path) for modelled power/heat; auto picks by CPU arch. "
        f"Shipped: {', '.join(available_profiles())}.",
        read_only=True,
    ),
    ros_params.ParamSpec("sysfs_root", "/sys", "Root of the sysfs tree the sysfs backend reads.", read_only=True),
    ros_params.ParamSpec("hardware_id", "", "hardware_id of every status; empty: the device profile's name."),
    ros_params.ParamSpec("jtop_compatible", True, "Also publish jetson_stats-style statuses (cpu, gpu, temp, power)."),
]


class DeviceMonitorNode(Node):
    """Samples the device backends at ``rate_hz`` and publishes one DiagnosticArray per sample."""

    def __init__(self, **kwargs) -> None:
        super().__init__("device_monitor", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        p = ros_params.values(self, self._specs)
        parse_backend_list(p["backends"])  # ValueError: a clear start-up error
        self.profile = load_profile(p["device_profile"])  # ProfileError: a clear start-up error
        self.monitor = DeviceMonitor(self.profile, p["backends"], p["sysfs_root"], log=self._log)
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        self._pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos)
        self._timer = self.create_timer(1.0 / p["rate_hz"], self._tick)
        ros_params.on_set(self, self._specs)
        self.add_post_set_parameters_callback(self._apply)
        self.samples = 0
        self.get_logger().info(
            f"device profile {self.profile.name}; publishing /diagnostics at {p['rate_hz']:.1f} Hz "
            f"from {', '.join(b.name for b in self.monitor.active)}"
        )

    def _log(self, level: str, msg: str) -> None:
        (self.get_logger().warning if level == "warn" else self.get_logger().info)(msg)

    def _apply(self, params: list[Parameter]) -> None:
        if any(prm.name == "rate_hz" for prm in params):
            self._timer.cancel()
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / self.get_parameter("rate_hz").value, self._tick)

    def _hardware_id(self) -> str:
        return self.get_parameter("hardware_id").value or self.profile.name

    def device_status(self, sample, hw: str) -> StatusBuilder:
        """The status with the numeric device keys and their sources."""
        b = StatusBuilder(DEVICE_STATUS_NAME, hw)
        state = self.monitor.state(sample)
        for k, v in state.to_key_values().items():
            b.values.append((k, v))
        for k in DEVICE_KEYS + CONTEXT_KEYS:
            if k in sample.sources:
                b.add(f"{k}.source", sample.sources[k])
        b.add("backends", ",".join(x.name for x in self.monitor.active))
        b.add("device_profile", self.profile.name)
        for name, why in self.monitor.failed.items():
            b.summary(WARN, f"backend {name} failed: {why}")
        critical = state.temp_critical_c
        if critical is not None and state.temp_c >= critical:
            b.summary(ERROR, f"temperature {state.temp_c:.1f} C at or above critical {critical:.1f} C")
        elif state.throttling:
            b.summary(WARN, f"throttling: clock at {state.clock_ratio:.0%}")
        b.summary(
            OK,
            f"{state.power_w:.2f} W ({sample.sources.get('power_w', '?')}), {state.temp_c:.1f} C "
            f"({sample.sources.get('temp_c', '?')}), cpu {state.cpu_util:.0%}",
        )
        return b

    def _tick(self) -> None:
        sample = self.monitor.sample()
        hw = self._hardware_id()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        try:
            msg.status.append(self.device_status(sample, hw).to_msg())
        except ValueError as exc:  # a reading no source could fill: report it, keep running
            err = StatusBuilder(DEVICE_STATUS_NAME, hw)
            err.summary(ERROR, f"device reading unusable: {exc}")
            msg.status.append(err.to_msg())
        if self.get_parameter("jtop_compatible").value:
            msg.status.extend(status_from_dict(d) for d in jtop_statuses(sample, hw))
        self._pub.publish(msg)
        self.samples += 1

    def destroy_node(self) -> None:
        self.monitor.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_node("device_monitor", DeviceMonitorNode, (ProfileError, ValueError), args)


if __name__ == "__main__":
    main()
