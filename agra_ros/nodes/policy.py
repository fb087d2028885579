"""policy_node: picks the detector's granularity configuration for every decision period and learns on the robot.

Listens to ``agra/feedback`` (PerceptionFeedback: each decision's reward, and W: the embedding perception takes from
its own detector's backbone, with motion and detections; no raw image, no network of its own), ``/diagnostics``
(device state D from device_monitor or a jtop node; read serialized, a large message at most once a second:
:class:`agra_ros.online.diagnostics_gate.DiagnosticsGate`), ``agra/trace_target_fps`` (a camera trace's target, see
below) and the latched ``agra/granularity_catalogue``. Publishes ``agra/granularity`` (GranularityCommand) at
``decision_rate_hz`` plus reward, Lagrange weights, target attainment and learner updates for rqt_plot, and its
status on ``/diagnostics``. The package's messages are converted in agra_ros.ros.interfaces.

The target FPS P has one owner: this node's ``target_fps`` parameter, published on ``agra/target_fps`` with
transient-local (latched) QoS, so a perception that starts or restarts later gets it at once. Precedence: a value
set on the parameter by anyone (``ros2 param set``, launch's ``target_fps``, another node's SetParameters call)
always wins and turns ``follow_trace`` off, so it sticks; while ``follow_trace`` is true the latest trace target
on ``agra/trace_target_fps`` is written into the parameter. ``ros2 param set /policy follow_trace true`` goes
back to the trace.

The acting, scoring and experience bookkeeping are in :class:`agra_ros.online.agent.OnlineAgent`; PPO runs in a
separate process (:class:`agra_ros.online.learner_process.LearnerSupervisor`) that hands back weights and is
restarted when it dies, held to ``learner_cpu_budget`` and deferring its updates while perception misses its
target (:mod:`agra_ros.online.budget`); a new configuration waits out ``min_hold_s`` unless safety needs it now
(:mod:`agra_ros.online.hold`); checkpoints are atomic (:mod:`agra_ros.online.checkpoint`). The parameters are
declared in :mod:`agra_ros.nodes.policy_params`; what the node reports on /diagnostics is built by
:mod:`agra_ros.online.status`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from std_msgs.msg import Float32, Header, UInt32

from agra_ros.bad_inputs import BadInputCounter
from agra_ros.detectors.footage import installed_table
from agra_ros.device.profiles import ProfileError
from agra_ros.granularity.levels import LEVELS, GranularityCommandError
from agra_ros.limits import TARGET_FPS_RANGE, InputRejected, parse_target_fps
from agra_ros.nodes.policy_params import SPECS
from agra_ros.online.agent import LEARNER_ALGORITHMS, AgentSettings, OnlineAgent, learner_settings_for
from agra_ros.online.checkpoint import CheckpointSpec
from agra_ros.online.device_input import DeviceInputError, DeviceInputs, is_device_input_status, parse_device_status
from agra_ros.online.diagnostics_gate import DiagnosticsGate
from agra_ros.online.hold import DecisionHold, force_reason
from agra_ros.online.learner_process import LearnerSupervisor
from agra_ros.online.lifecycle import CheckpointKeeper, TargetArbiter
from agra_ros.online.live_accuracy import read_footage_table
from agra_ros.online.stats import AttainmentWindow, LatencyWindow
from agra_ros.online.status import catalogue_mismatch, policy_status
from agra_ros.policy.gpn import GPNSpec
from agra_ros.ros import params as ros_params
from agra_ros.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter, StatusBuilder
from agra_ros.ros.interfaces import (
    GranularityCatalogue,
    GranularityCommand,
    PerceptionFeedback,
    catalogue_layers_levels,
    command_from_msg,
    command_to_msg,
    feedback_from_msg,
    workload_from_msg,
)
from agra_ros.ros.qos import command_qos, latched_qos
from agra_ros.ros.spin import spin_node


class PolicyNode(Node):
    """Decides the granularity configuration, learns online, checkpoints, and keeps the device safe."""

    def __init__(self, **kwargs) -> None:
        super().__init__("policy", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        p = ros_params.values(self, self._specs)
        log = self.get_logger()
        self.agent = OnlineAgent(
            AgentSettings(
                algorithm=p["algorithm"],
                device_profile=p["device_profile"],
                accuracy_floor=p["accuracy_floor"],
                allow_remote=p["allow_remote"],
                critical_temp_c=p["critical_temp_c"],
                recover_margin_c=p["recover_margin_c"],
                seed=p["seed"],
                live_accuracy=p["live_accuracy"],
                calibrate_speed=p["calibrate_speed"],
                explore_share=p["explore_share"],
                stick_margin=p["stick_margin"],
            )
        )
        self.agent.set_target(p["target_fps"])
        self._seed_live_accuracy(p["footage_table"])
        self.target = TargetArbiter()
        ro = ParameterDescriptor(read_only=True, description="Switchable layers of the detector, in command order.")
        self.declare_parameter("layer_names", list(self.agent.layer_names), ro)
        ro = ParameterDescriptor(read_only=True, description="Granularity level names; a command holds their indices.")
        self.declare_parameter("levels", list(LEVELS), ro)
        self.rejections = BadInputCounter()
        self.latency = LatencyWindow()
        self.attainment = AttainmentWindow()
        self._catalogue_error: str | None = None
        """Why the last catalogue does not fit (empty: it fits; None: none heard yet)."""
        self._device_seen = False
        self._device_inputs = DeviceInputs()
        self._last_config = ""
        self.hold = DecisionHold(p["min_hold_s"])
        self._fallback = False
        """Perception's latest feedback says it runs its fallback configuration."""
        # checkpoints
        spec = CheckpointSpec(p["algorithm"], self.agent.layout.dim, self.agent.nvec)
        self.checkpoint = CheckpointKeeper(None, spec)
        if p["checkpoint_dir"] and self.agent.learns:
            self.checkpoint.path = Path(p["checkpoint_dir"]).expanduser() / f"policy_{p['algorithm']}.pt"
            self._load_checkpoint()
        # the learner
        self.learner: LearnerSupervisor | None = None
        if p["algorithm"] in LEARNER_ALGORITHMS:
            assert self.agent.gpn is not None
            settings = learner_settings_for(
                p["algorithm"], self.agent.layout.w_dim, rollout_steps=int(p["rollout_steps"]), seed=int(p["seed"])
            )
            settings.cpu_budget = float(p["learner_cpu_budget"])
            self.learner = LearnerSupervisor(
                GPNSpec(**{**self.agent.gpn.spec.to_dict(), "nvec": tuple(self.agent.gpn.spec.nvec)}),
                self.agent.learner_state(),
                settings,
                log=self._learner_log,
            )
        # ROS interfaces
        q = command_qos(10)
        self._pub_cmd = self.create_publisher(GranularityCommand, "agra/granularity", q)
        self._pub_target = self.create_publisher(Float32, "agra/target_fps", latched_qos())
        self._pub_reward = self.create_publisher(Float32, "agra/reward", q)
        self._pub_beta = self.create_publisher(Float32, "agra/lagrange/fps", q)
        self._pub_gamma = self.create_publisher(Float32, "agra/lagrange/accuracy", q)
        self._pub_attain = self.create_publisher(Float32, "agra/target_attainment", q)
        self._pub_updates = self.create_publisher(UInt32, "agra/learner_updates", q)
        self._diagnostics_gate = DiagnosticsGate()  # serialized: a flood of large statuses is never deserialised
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics_raw, 20, raw=True)
        self.create_subscription(Float32, "agra/trace_target_fps", self._on_trace_target, latched_qos())
        self.create_subscription(PerceptionFeedback, "agra/feedback", self._on_feedback, command_qos(50))
        self.create_subscription(GranularityCatalogue, "agra/granularity_catalogue", self._on_catalogue, latched_qos())
        ros_params.on_set(self, self._specs)
        ros_params.add_pre_set(self, self._outside_target_stops_trace)
        self.add_post_set_parameters_callback(self._apply)
        self._decision_timer = self.create_timer(1.0 / p["decision_rate_hz"], self._decide)
        self._learner_timer = self.create_timer(0.2, self._service_learner)
        self._ckpt_timer = self.create_timer(p["checkpoint_period_s"], self._periodic_checkpoint)
        self._diag = DiagnosticsReporter(self, hardware_id=f"policy:{p['algorithm']}")
        self._diag.add("policy", self._check)
        self._set_learning(bool(p["learning"]))
        log.info(
            f"{p['algorithm']} policy over {self.agent.n_layers} layers, deciding at {p['decision_rate_hz']:.1f} Hz, "
            f"target {p['target_fps']:.1f} FPS, learning {'on' if p['learning'] else 'off'}"
            + (f", started from {self.agent.shipped}" if self.agent.shipped else "")
        )
        if p["publish_target_fps"]:
            self._publish_target()

    def _seed_live_accuracy(self, setting: str) -> None:
        """Start the live accuracy model from this robot's footage table (``evaluate-footage --install``)."""
        path = installed_table() if setting == "auto" else (Path(setting).expanduser() if setting else None)
        if path is None or (setting == "auto" and not path.is_file()):
            return
        try:
            used = self.agent.live.seed(read_footage_table(path))
        except ValueError as exc:
            self.get_logger().warning(f"footage table not used: {exc}")
            return
        self.get_logger().info(f"live accuracy starts from {used} configurations measured on this camera ({path})")

    # ------------------------------------------------------------------ parameters
    def _outside_target_stops_trace(self, params: list[Parameter]) -> list[Parameter]:
        """Pre-set callback: a target_fps set by anyone but the trace input also sets follow_trace false (in the
        same atomic change), unless the same request sets follow_trace itself."""
        if self.target.outside_set_stops_following({prm.name for prm in params}):
            params = [*params, Parameter("follow_trace", Parameter.Type.BOOL, False)]
        return params

    def _apply(self, params: list[Parameter]) -> None:
        for prm in params:
            if prm.name == "target_fps":
                self.agent.set_target(float(prm.value))
                source = self.target.applied()
                if self.get_parameter("publish_target_fps").value:
                    self._publish_target()
                self.get_logger().info(f"target FPS set to {prm.value:.2f} ({source})")
            elif prm.name in ("calibrate_speed", "explore_share", "stick_margin"):
                setattr(self.agent.s, prm.name, type(getattr(self.agent.s, prm.name))(prm.value))
            elif prm.name == "follow_trace":
                if prm.value and self.target.trace_target is not None:
                    self._set_target_from_trace(self.target.trace_target)
            elif prm.name == "publish_target_fps":
                if prm.value:
                    self._publish_target()
            elif prm.name == "learning":
                self._set_learning(bool(prm.value))
            elif prm.name == "decision_rate_hz":
                self._decision_timer.cancel()
                self.destroy_timer(self._decision_timer)
                self._decision_timer = self.create_timer(1.0 / float(prm.value), self._decide)
            elif prm.name == "checkpoint_period_s":
                self._ckpt_timer.cancel()
                self.destroy_timer(self._ckpt_timer)
                self._ckpt_timer = self.create_timer(float(prm.value), self._periodic_checkpoint)
            elif prm.name in ("critical_temp_c", "recover_margin_c"):
                setattr(self.agent.guard, prm.name, float(prm.value))
            elif prm.name == "accuracy_floor":
                self.agent.s.accuracy_floor = float(prm.value)
            elif prm.name == "allow_remote":
                self.agent.s.allow_remote = bool(prm.value)
            elif prm.name == "min_hold_s":
                self.hold.min_hold_s = float(prm.value)
            elif prm.name == "learner_cpu_budget" and self.learner is not None:
                self.learner.set_control(cpu_budget=float(prm.value))

    def _set_learning(self, on: bool) -> None:
        if on and not self.agent.learns:
            self.get_logger().info(f"{self.agent.s.algorithm} does not learn online; 'learning' has no effect")
        self.agent.set_learning(on and self.agent.learns)
        if self.learner is not None:
            if on and self.learner.status == "stopped":
                self.learner.start()
            elif not on and self.learner.status != "stopped":
                self.learner.stop()
                self.get_logger().info("learning off: learner process stopped, acting with the current weights")

    # ------------------------------------------------------------------ inputs
    def _reject(self, exc: Exception, kind: str | None = None) -> None:
        kind = kind or getattr(exc, "kind", "input")
        if self.rejections.record(kind, time.monotonic()) is not None:
            n = self.rejections.count(kind)
            self.get_logger().warning(f"rejected {kind} input ({n} so far): {exc}")

    def _on_trace_target(self, msg: Float32) -> None:
        """A camera trace's target: the lower-priority input of the target_fps parameter (see the module doc)."""
        try:
            fps = parse_target_fps(msg.data, *TARGET_FPS_RANGE)
        except InputRejected as exc:
            self._reject(exc)
            return
        following = bool(self.get_parameter("follow_trace").value)
        if self.target.trace_heard(fps, following, self.get_parameter("target_fps").value):
            self._set_target_from_trace(fps)

    def _set_target_from_trace(self, fps: float) -> None:
        self.target.setting_from_trace = True
        try:
            result = self.set_parameters([Parameter("target_fps", Parameter.Type.DOUBLE, float(fps))])[0]
        finally:
            self.target.setting_from_trace = False
        if not result.successful:
            self._reject(InputRejected("target_fps", result.reason))

    def _publish_target(self) -> None:
        """Announce the target on agra/target_fps: latched, so one message per change reaches late joiners too."""
        self._pub_target.publish(Float32(data=float(self.agent.target_fps)))

    def _on_feedback(self, msg: PerceptionFeedback) -> None:
        try:
            fb = feedback_from_msg(msg)
        except InputRejected as exc:
            self._reject(exc)
            return
        try:
            config = command_from_msg(msg.configuration, self.agent.n_layers)
        except GranularityCommandError:
            config = None  # a feedback without a readable configuration still scores the decision
        self.agent.add_feedback(fb, time.monotonic(), config, tracked=bool(msg.tracked))
        self.agent.set_link(float(msg.link_rtt_ms), float(msg.link_uplink_mbps), float(msg.link_loss))
        self.attainment.add(fb.fps, self.agent.target_fps)
        self._fallback = bool(msg.fallback)
        try:
            self.agent.set_workload(workload_from_msg(msg, fb))
        except InputRejected as exc:  # the decision keeps the last good W; the message counts as bad
            self._reject(exc)

    def _on_diagnostics_raw(self, data: bytes) -> None:
        if not self._diagnostics_gate.admit(len(data), time.monotonic()):
            return self._reject(ValueError(f"a {len(data)}-byte /diagnostics message not read"), "diagnostics_large")
        try:
            msg = deserialize_message(data, DiagnosticArray)
        except Exception as exc:  # noqa: BLE001 - one undecodable message must not end the node
            return self._reject(exc, "diagnostics")
        self._on_diagnostics(msg)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        # device_monitor's status, a jtop node's measured values preferred; only statuses whose name can carry D
        # are parsed (a neighbour's thousands of keys cost a string comparison per status)
        statuses = [
            (s.name, s.message, {v.key: v.value for v in s.values})
            for s in msg.status
            if is_device_input_status(s.name)
        ]
        if not statuses:
            return
        for kv in self._device_inputs.device_key_values(statuses, time.monotonic()):
            try:
                reading = parse_device_status(kv)
            except DeviceInputError as exc:
                self._reject(exc, "diagnostics")
                continue
            if reading is None:  # a status without device keys (perception, camera, ...)
                continue
            self.agent.set_device(reading.vector, reading.temp_c, reading.throttling, reading.critical_temp_c)
            self._device_seen = True

    def _on_catalogue(self, msg: GranularityCatalogue) -> None:
        try:
            layers, levels = catalogue_layers_levels(msg)
        except InputRejected as exc:
            self._reject(exc)
            return
        error = catalogue_mismatch(layers, levels, self.agent.layer_names)
        if error != self._catalogue_error:
            if error:
                self.get_logger().error(error)
            else:
                self.get_logger().info(f"perception's catalogue matches the policy: {len(layers)} layers")
        self._catalogue_error = error

    # ------------------------------------------------------------------ deciding
    def _decide(self) -> None:
        t0 = time.perf_counter()
        if not self.agent.ready:
            return
        try:
            d = self.agent.decide()
        except ValueError as exc:  # an observation the policy refuses: keep the last command in force
            self._reject(exc, "observation")
            return
        if d.safety is not None:
            log = self.get_logger()
            if d.safety.engaged:
                log.warning(f"safety override: {d.safety.reason}; commanding the safety override configuration")
            else:
                log.info(f"safety override ended: {d.safety.reason}; the policy decides again")
        force = force_reason(d.source, d.safety is not None, self._fallback, d.terms.get("fps"), self.agent.target_fps)
        config = self.hold.offer(d.config, time.monotonic(), force)  # min_hold_s: else the one in force again
        if config != d.config:
            self.agent.ran_instead(config)
        header = Header(stamp=self.get_clock().now().to_msg())
        self._pub_cmd.publish(command_to_msg(config, self.agent.decisions, header))
        self._last_config = config.short()
        if d.reward is not None:
            self._pub_reward.publish(Float32(data=float(d.reward)))
        self._pub_beta.publish(Float32(data=float(self.agent.multipliers.beta)))
        self._pub_gamma.publish(Float32(data=float(self.agent.multipliers.gamma)))
        share = self.attainment.share()
        if not math.isnan(share):
            self._pub_attain.publish(Float32(data=share))
        self._pub_updates.publish(UInt32(data=int(self.agent.updates)))
        self.latency.add(time.perf_counter() - t0)

    # ------------------------------------------------------------------ learner
    def _learner_log(self, level: str, text: str) -> None:
        # one call site per severity: rclpy refuses a call site whose severity changes between calls
        if level == "error":
            self.get_logger().error(text)
        else:
            self.get_logger().info(text)

    def _service_learner(self) -> None:
        batches = self.agent.take_experience()
        if self.learner is None:
            return
        for b in batches:
            self.learner.submit(b)
        self.learner.set_control(target_missed=self.attainment.missing())  # the learner defers updates meanwhile
        state = self.learner.poll()  # also restarts a dead learner, from the last weights it handed back
        if state is not None:
            self.agent.apply_learner_state(state)

    # ------------------------------------------------------------------ checkpoints
    def _load_checkpoint(self) -> None:
        log = self.get_logger()
        self.agent, out = self.checkpoint.load(self.agent)
        for warning in out.warnings:
            log.warning(warning)
        if out.status in ("quarantined", "unusable"):
            log.error(out.message)
        elif out.status == "missing":
            log.info(out.message)
        else:
            log.info(f"{out.message} ({self.agent.updates} learner updates)")

    def save_checkpoint(self) -> bool:
        """Write the checkpoint; False (counted, logged, in diagnostics) when it could not be written."""
        return self.checkpoint.save(self.agent, self.get_logger().error)

    def _periodic_checkpoint(self) -> None:
        if self.agent.learning:
            self.save_checkpoint()

    # ------------------------------------------------------------------ status
    def _check(self, status: StatusBuilder) -> None:
        report = policy_status(
            self.agent,
            last_config=self._last_config,
            latency=self.latency,
            target=self.target,
            follow_trace=bool(self.get_parameter("follow_trace").value),
            attainment=self.attainment,
            rejections=self.rejections,
            learner=self.learner,
            checkpoint=self.checkpoint,
            device_seen=self._device_seen,
            catalogue_error=self._catalogue_error or "",
            hold=self.hold,
        )
        for key, value in report.values:
            status.add(key, value)
        for severity, message in report.summaries:
            status.summary(ERROR if severity == "error" else WARN, message)
        status.summary(OK, "deciding")

    def destroy_node(self) -> None:
        """Finish the learner and write the final checkpoint before the node goes away."""
        self.shutdown()
        super().destroy_node()

    def shutdown(self) -> None:
        """Stop the learner (collecting its last weights) and write the final checkpoint."""
        if self.learner is not None:
            self.learner.stop()
            if self.learner.new_state or self.learner.latest.updates > self.agent.updates:
                self.agent.apply_learner_state(self.learner.latest)
        ck = self.checkpoint
        if self.agent.learns and ck.path is not None:
            if self.save_checkpoint():
                self.get_logger().info(f"final checkpoint written to {ck.path}")
            else:
                self.get_logger().error(
                    f"final checkpoint NOT written to {ck.path} ({ck.error}): what was learned since "
                    + ("the last checkpoint" if ck.saves else "start-up")
                    + " is lost"
                )


def main(args: list[str] | None = None) -> None:
    spin_node("policy", PolicyNode, (ProfileError,), args)


if __name__ == "__main__":
    main()
