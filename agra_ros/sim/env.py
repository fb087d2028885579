"""AgraEnv: the AGRA decision problem as a gymnasium environment over measured tables and a simulated device."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agra_ros.core.contract import (
    SCORE_THRESHOLD,
    Contract,
    default_accuracy_model,
    default_cost_table,
    observation_layout,
)
from agra_ros.core.device import DeviceSim
from agra_ros.core.observation import OwnSpeed
from agra_ros.core.reward import RewardWeights, agra_reward, reward_terms, switch_churn, system_energy_per_frame_j
from agra_ros.core.temporal import KEYFRAME_RETENTION_RATE, keyframe_retention
from agra_ros.granularity.levels import KEYFRAME_INTERVALS, RESOLUTION_SCALES, action_nvec
from agra_ros.sim.link import NO_SERVER, LinkSim, draw_profile, link_profile
from agra_ros.sim.settings import SimSettings
from agra_ros.sim.workload_cache import PhaseWorkload, phase_workloads
from agra_ros.tables.search import ConfigModel, load_config_model
from agra_ros.workload.features import OBJECTS_SCALE, WorkloadFeatures
from agra_ros.workload.trace import Trace

ENV_ID = "AgraRos-v0"
CONFIDENCE_AT_FULL = (0.35, 0.9)
"""Range of the episode's mean detection confidence at full accuracy, drawn uniformly per episode. The real SSD on
the package's clips at 320x240 keeps detections of mean score 0.35 (Megamind) to 0.45 (vtest), the synthetic-shape
detector about 0.9."""


class AgraEnv(gym.Env):
    """Choosing the detector's granularity configuration for every decision period.

    ## Action space
    ``MultiDiscrete(action_nvec(n_layers))``: one level index per switchable layer (into ``levels.LEVELS``:
    full, partitioned, neuron-75, neuron-50, neuron-25), then the resolution-scale index (into
    ``RESOLUTION_SCALES``: 1.0, 0.75, 0.5), then the execution-target index (0 local, 1 remote), then the
    keyframe-interval index (into ``KEYFRAME_INTERVALS``: 1, 2, 3, 4, 6; an action without it, as the fixed
    baselines give, runs every frame). The layer count is read from the cost table. ``agra/granularity`` carries
    the same (the interval in its own field).

    ## Observation space
    ``Box(low, high, (WORKLOAD_DIM + DEVICE_DIM + P_DIM,), float32)`` laid out by
    :class:`agra_ros.core.observation.ObservationLayout` and built by :meth:`agra_ros.core.contract.Contract.observation`,
    the builder the policy node uses too:

    | block | entries | content |
    |---|---|---|
    | W | EMBEDDING_DIM | the detector backbone's embedding of a rendered frame of the current trace phase, as perception publishes it |
    | W | 4 | resolution (Mpix), objects detected last frame / 40, mean confidence, motion / 16 (``WorkloadFeatures``) |
    | D | DEVICE_DIM | device state vector (``agra_ros.device``): temperature, power, voltage, CPU/GPU use, clock ratio, cores available, throttling |
    | P | 13 | target FPS / 60, accuracy floor, link RTT / 0.1 s, last accuracy ratio, and own speed: last load (latency x target FPS), achieved / target FPS, log2 of latency over the table's, the last configuration's mean width, scale and target; then the link: uplink / 50 Mbit/s, loss share, server available (``core.observation.P_FIELDS``) |

    ## Transition
    The frame latency of a configuration is its cost-table latency (additive model) scaled by the device profile
    (speed relative to the table's device, DVFS clock ratio from the thermal model, cores available, background
    interference). Remote execution (only in episodes with a server: :mod:`agra_ros.sim.link`, a link profile drawn
    per episode) costs the server's latency (its own profile) plus the link RTT (log-normal link state with
    per-decision jitter) plus the transfer at the uplink's rate; the robot pays its radio (Huang et al.'s model);
    a lost or late request costs the deadline and then the local fallback (full) run.
    Perception paces itself to the target: achieved FPS = min(target, 1 / latency). Power is the device power
    model, P = min(P_idle + E_dyn(configuration) * FPS, P_max); it heats the thermal RC model, which throttles the clock above
    its threshold. Accuracy is the accuracy model's mAP as a share of the full configuration's, with the loss scaled
    by scene density. Everything random for a decision (interference, cores, link) is drawn *before* the action, so
    the reward is a deterministic function of (state, action): :meth:`evaluate` computes it for any set of
    configurations, which is what the oracle searches.

    ## Reward
    ``r = -alpha * energy_norm - beta * fps_shortfall - gamma * accuracy_loss`` (docs/architecture.md) with
    the terms from :func:`agra_ros.core.reward.reward_terms`, the function the robot uses: ``energy_norm`` = system
    energy per frame (P / FPS, idle share included) / that of the full configuration on the nominal device at the
    same target, ``fps_shortfall`` = max(0, target - fps) / target, ``accuracy_loss`` = max(0, floor - accuracy
    ratio), and ``- delta * switch``: the churn against the previous step's configuration (none on an episode's
    first step; :func:`agra_ros.core.reward.switch_churn`). :meth:`evaluate` prices no switch (``switch`` 0).

    ## Domain randomisation
    With ``SimSettings.randomise_device``, every reset draws a device around one of the shipped profiles and the
    episode's background load (:mod:`agra_ros.sim.randomise`).
    The env uses fixed weights (``SimSettings.weights``); the AGRA learner treats beta and gamma as Lagrange
    multipliers and recomputes the reward from ``info`` (see :mod:`agra_ros.core.reward`).

    ## Episode end
    Never terminates; truncated after ``max_steps`` decisions. ``info`` carries ``energy_norm``,
    ``fps_shortfall``, ``accuracy_loss`` (the constraint terms for dual ascent), ``fps``, ``target_fps``,
    ``latency_s``, ``power_w``, ``system_energy_per_frame_j``, ``accuracy_ratio``, ``temperature_c``,
    ``clock_ratio``, ``remote``, ``switch``.
    """

    metadata = {"render_modes": []}

    def __init__(self, settings: SimSettings | None = None, **overrides: Any) -> None:
        super().__init__()
        s = settings or SimSettings()
        for k, v in overrides.items():
            if not hasattr(s, k):
                raise ValueError(f"unknown simulator setting {k!r}")
            setattr(s, k, v)
        self.settings = s
        if s.dt_s <= 0 or s.max_steps <= 0:
            raise ValueError("dt_s and max_steps must be positive")
        for name in s.link_profiles:
            link_profile(name)  # an unknown name fails here, not at the first reset that draws it
        self.model: ConfigModel = load_config_model(
            str(s.cost_table or default_cost_table()), str(s.accuracy_model or default_accuracy_model())
        )
        self.n_layers = self.model.n_layers
        self.trace = Trace.load(s.trace)
        self.workloads: list[PhaseWorkload] = phase_workloads(self.trace)
        table = self.model.cost_table
        self._table_device, self._table_threads = table.device, int(table.data.get("threads", 1))
        self.device = DeviceSim(s.device, table_device=self._table_device, table_threads=self._table_threads)
        self.remote = DeviceSim(s.remote_device, table_device=self._table_device, table_threads=self._table_threads)
        self.layout = observation_layout()
        self.contract = Contract(self.layout, self.model, self.device, s.accuracy_floor, s.link_rtt_s)
        self.interference_mean = s.interference_mean
        low, high = self.layout.bounds()
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._nvec = action_nvec(self.n_layers)
        self.action_space = spaces.MultiDiscrete(self._nvec)
        self._scale_sq = np.array(RESOLUTION_SCALES) ** 2
        self._scale_sq_list = self._scale_sq.tolist()
        self._w = np.zeros(self.layout.w_dim, dtype=np.float32)
        self._reset_state()

    # ----------------------------------------------------------------- state
    def _reset_state(self) -> None:
        self.t = 0.0
        self.steps = 0
        self.interference = self.settings.interference_mean
        self.link = LinkSim(link_profile(NO_SERVER), self.settings.link_rtt_s)
        self.cores_lost = 0
        self.core_loss_left = 0
        self.own_speed = OwnSpeed()
        self.previous: tuple[int, ...] | None = None  # the configuration that ran last step (the churn term's)
        self.last_acc_ratio = 1.0
        self.last_objects = 0.0
        self.confidence_top = float(np.mean(CONFIDENCE_AT_FULL))
        self.accuracy_floor = self.settings.accuracy_floor
        self.ctx: dict[str, float] = {}
        self.full_fps = self.device_full_fps()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_state()
        rng = self.np_random
        if self.settings.random_start:
            self.t = float(rng.uniform(0.0, self.trace.total_duration))
        if self.settings.randomise_device is not None:
            profile, self.interference_mean = self.settings.randomise_device.sample(rng)
            self.device = DeviceSim(profile, table_device=self._table_device, table_threads=self._table_threads)
            self.contract.device = self.device
        s = self.settings
        profile = draw_profile(rng, s.link_profiles, s.server_share if s.allow_remote else 0.0)
        self.link = LinkSim(profile, s.link_rtt_s, s.link_noise)
        self.link.reset(rng)
        self.interference = float(np.clip(rng.normal(self.interference_mean, 0.1), 0.0, 0.9))
        self.device.reset(rng)
        self.full_fps = self.device_full_fps()
        self.confidence_top = float(rng.uniform(*CONFIDENCE_AT_FULL))
        if self.settings.accuracy_floor_range is not None:
            drawn = float(rng.uniform(*self.settings.accuracy_floor_range))
            self.accuracy_floor = (
                drawn if rng.random() < self.settings.accuracy_floor_drawn_share else self.settings.accuracy_floor
            )
        self._draw_context()
        return self._observation(), {}

    def device_full_fps(self) -> float:
        """The rate the full configuration runs at on this episode's device, unloaded: what a phase's
        ``target_fps_rel`` multiplies."""
        return 1.0 / (float(self.model.full[0]) * self.device.latency_multiplier(0.0, 0))

    def _draw_context(self) -> None:
        """Draw everything random about the coming decision, so its reward depends on the action alone."""
        s, rng = self.settings, self.np_random
        phase_i = self.trace.phase_index_at(self.t)
        phase = self.trace.phases[phase_i]
        wl = self.workloads[phase_i]
        k = int(rng.integers(len(wl.objects)))
        # background load: AR(1) toward its mean, clipped to [0, 0.9]
        self.interference = min(
            0.9,
            max(
                0.0,
                self.interference
                + 0.2 * (self.interference_mean - self.interference)
                + s.interference_sd * float(rng.normal()),
            ),
        )
        if self.core_loss_left > 0:
            self.core_loss_left -= 1
            if self.core_loss_left == 0:
                self.cores_lost = 0
        elif rng.random() < s.core_loss_rate:
            self.cores_lost = 1
            self.core_loss_left = int(rng.integers(5, 30))
        self.link.draw(rng)
        density = float(wl.objects[k]) / OBJECTS_SCALE
        lo, hi = s.density_sensitivity
        self.ctx = {
            "phase": phase_i,
            "target_fps": float(phase.target_for(self.full_fps)),
            "density": density,
            "sensitivity": lo + (hi - lo) * min(1.5, density),
            "frame_px": float(phase.resolution[0] * phase.resolution[1]),
            "local_mult": self.device.latency_multiplier(self.interference, self.cores_lost),
            "remote_mult": self.remote.latency_multiplier(0.0, 0),
            "dyn_scale": self.device.dynamic_energy_scale(),
        }
        self.ctx["e_ref"] = self.device.reference_energy_j(self.model.full, self.ctx["target_fps"])
        # a lost remote request runs here in the fallback configuration (the detector's full, local)
        f_s = self.ctx["fallback_s"] = float(self.model.full[0]) * self.ctx["local_mult"]
        f_j = self.device.detector_energy_per_frame_j(f_s, float(self.model.full[1]), float(self.model.full[2]))
        self.ctx["fallback_j"] = float(f_j) * self.ctx["dyn_scale"]
        # temporal granularity (core.temporal): the tracker follows this frame's objects on the device's clock
        self.ctx["motion"] = float(wl.motion[k])
        self.ctx["objects"] = float(wl.objects[k])
        self.ctx["tracker_s"] = float(self.contract.tracker_latency_s(self.ctx["objects"])) * self.ctx["local_mult"]
        self.ctx["tracker_j"] = float(
            self.device.detector_energy_per_frame_j(self.ctx["tracker_s"], 0.0, 0.0) * self.ctx["dyn_scale"]
        )
        self._w[:] = WorkloadFeatures(
            wl.embeddings[k],
            wl.resolution_mpix,
            self.last_objects * OBJECTS_SCALE,
            self._mean_confidence(),
            float(wl.motion[k]),
        ).vector()

    def _mean_confidence(self) -> float:
        """W's mean detection confidence of the last frame, as perception reports it: the mean score of the
        detections kept (each at least the score threshold), 0 when none was kept. It rises with the accuracy
        ratio toward this episode's ``confidence_top``, drawn per episode because how confident a detector is
        depends on the detector and the camera more than on the configuration."""
        if self.last_objects * OBJECTS_SCALE < 0.5:
            return 0.0
        lo = SCORE_THRESHOLD
        return lo + (self.confidence_top - lo) * min(1.0, self.last_acc_ratio)

    def _observation(self) -> np.ndarray:
        return self.contract.observation(
            self._w,
            self.device.vector(self.interference, self.cores_lost),
            self.ctx["target_fps"],
            self.own_speed,
            self.last_acc_ratio,
            self.accuracy_floor,
            self.link.observation(),
        )

    @property
    def remote_available(self) -> bool:
        """Whether this episode has a perception server (remote execution is masked to local otherwise)."""
        return self.link.profile.server

    # ----------------------------------------------------------------- the model
    def evaluate(
        self,
        latency_s,
        macs,
        bytes_moved,
        accuracy,
        scale_index,
        remote,
        weights: RewardWeights | None = None,
        interval=1,
    ) -> dict[str, Any]:
        """Outcome of configurations in the current state, from their table values (scalars or arrays).

        ``latency_s``, ``macs``, ``bytes_moved``, ``accuracy``: the additive-model values of the configurations
        (:class:`agra_ros.tables.search.ConfigModel`); ``scale_index``: their resolution-scale index; ``remote``:
        0/1; ``interval``: keyframe interval(s) (the detector on every k-th frame, the tracker between:
        :mod:`agra_ros.core.temporal`). Returns latency_s (mean per frame), fps, power_w, system_energy_per_frame_j, energy_norm, fps_shortfall, accuracy_ratio,
        accuracy_loss, busy_s and reward (with ``weights``, default the env's). :meth:`step` uses exactly this code, so
        the oracle's search over it is exact for the env's reward.
        """
        ctx, dev, s = self.ctx, self.device, self.settings
        w = weights or s.weights
        remote = np.asarray(remote, dtype=bool) & self.remote_available
        target = ctx["target_fps"]
        lat_local = latency_s * ctx["local_mult"]
        e_local = dev.detector_energy_per_frame_j(lat_local, macs, bytes_moved) * ctx["dyn_scale"]
        lat_det, e_det, busy_det = lat_local, e_local, lat_local
        if np.any(remote):
            lat_r, e_r, busy_r = self._remote(latency_s, self._scale_sq[scale_index])
            lat_det, e_det = np.where(remote, lat_r, lat_local), np.where(remote, e_r, e_local)
            busy_det = np.where(remote, busy_r, lat_local)
        k = np.asarray(interval, dtype=np.float64)
        tracked = (k - 1.0) / k  # share of frames the tracker serves
        latency = lat_det / k + tracked * ctx["tracker_s"]
        fps = np.minimum(target, 1.0 / latency)
        e_dyn = e_det / k + tracked * ctx["tracker_j"]
        acc_ratio = np.clip(1.0 - (1.0 - accuracy / self.model.accuracy_full) * ctx["sensitivity"], 0.0, 1.0)
        acc_ratio = acc_ratio * keyframe_retention(k, ctx["motion"])
        busy = busy_det / k + tracked * ctx["tracker_s"]
        return self._outcome(latency, fps, e_dyn, acc_ratio, busy, w)

    def _evaluate_one(
        self,
        latency_s: float,
        macs: float,
        bytes_moved: float,
        accuracy: float,
        scale_index: int,
        remote: bool,
        interval: int = 1,
        switch: float = 0.0,
    ) -> dict[str, float]:
        """:meth:`evaluate` for one configuration in plain floats (the hot path; a test checks they agree)."""
        ctx, dev, w = self.ctx, self.device, self.settings.weights
        target = ctx["target_fps"]
        lat_local = latency_s * ctx["local_mult"]
        if remote and self.remote_available:
            latency, e_dyn, busy = map(float, self._remote(latency_s, self._scale_sq_list[scale_index]))
        else:
            latency = lat_local
            e_dyn = dev.detector_energy_per_frame_j(lat_local, macs, bytes_moved) * ctx["dyn_scale"]
            busy = lat_local
        # agreement with the full configuration: between 0 (nothing matches) and 1 (the full configuration itself)
        acc_ratio = min(1.0, max(0.0, 1.0 - (1.0 - accuracy / self.model.accuracy_full) * ctx["sensitivity"]))
        if interval != 1:  # the tracker serves (k - 1) of every k frames (core.temporal, as evaluate)
            tracked = (interval - 1.0) / interval
            latency = latency / interval + tracked * ctx["tracker_s"]
            e_dyn = e_dyn / interval + tracked * ctx["tracker_j"]
            busy = busy / interval + tracked * ctx["tracker_s"]
            acc_ratio *= math.exp(-KEYFRAME_RETENTION_RATE * (interval - 1.0) * ctx["motion"])
        fps = min(target, 1.0 / latency)
        return self._outcome(latency, fps, e_dyn, acc_ratio, busy, w, switch)

    def _remote(self, latency_s, scale_sq):
        """(latency, energy, busy) per frame commanded remote (:meth:`~agra_ros.sim.link.LinkSim.remote_cost`)."""
        c = self.ctx
        tx = c["frame_px"] * scale_sq * self.settings.compressed_bytes_per_pixel
        return self.link.remote_cost(
            latency_s * c["remote_mult"], tx, c["target_fps"], c["fallback_s"], c["fallback_j"]
        )

    def _outcome(self, latency, fps, e_dyn, acc_ratio, busy, w: RewardWeights, switch=0.0) -> dict[str, Any]:
        """Power, energy and the reward terms from one or many configurations' latency, FPS, dynamic energy and
        accuracy (plain arithmetic: floats and numpy arrays alike), so both evaluation paths share one reward."""
        ctx = self.ctx
        power = self.device.power.power_w(e_dyn, fps)
        energy = system_energy_per_frame_j(power, fps)
        t = reward_terms(energy, ctx["e_ref"], fps, ctx["target_fps"], acc_ratio, self.accuracy_floor)
        return {
            "latency_s": latency,
            "fps": fps,
            "power_w": power,
            "system_energy_per_frame_j": energy,
            "energy_norm": t.energy_norm,
            "fps_shortfall": t.fps_shortfall,
            "accuracy_ratio": acc_ratio,
            "accuracy_loss": t.accuracy_loss,
            "switch": switch,
            "reward": agra_reward(t.energy_norm, t.fps_shortfall, t.accuracy_loss, w, switch),
            "busy_s": busy,
        }

    def step(self, action):
        key = tuple(int(x) for x in np.asarray(action).ravel())
        L = self.n_layers
        # the fixed baselines give no interval head (L + 2 entries): interval 1
        if len(key) not in (L + 2, L + 3) or not all(0 <= k < n for k, n in zip(key, self._nvec)):
            raise ValueError(f"action {key} is not in {self.action_space}")
        lat, macs, byt, acc = self.model.lookup(key[: L + 1])
        remote = key[L + 1] == 1 and self.remote_available
        interval = KEYFRAME_INTERVALS[key[L + 2]] if len(key) == L + 3 else 1
        ran = (*key[: L + 1], int(remote), KEYFRAME_INTERVALS.index(interval))
        switch, self.previous = switch_churn(self.previous, ran), ran
        out = self._evaluate_one(lat, macs, byt, acc, key[L], remote, interval, switch)
        info = dict(
            out,
            target_fps=self.ctx["target_fps"],
            remote=remote,
            keyframe_interval=interval,
            objects=self.ctx["objects"],
            phase=self.ctx["phase"],
            density=self.ctx["density"],
            temperature_c=self.device.temperature_c,
            clock_ratio=self.device.clock_ratio,
        )
        # the device lives on: its power heats it, the thermal model may throttle the clock
        self.device.advance(out["power_w"], out["fps"] * out["busy_s"], self.settings.dt_s)
        self.own_speed = self.contract.own_speed(
            out["latency_s"],
            out["fps"],
            self.ctx["target_fps"],
            ran,
            tracker_s=self.ctx["tracker_s"] / self.ctx["local_mult"],
        )
        self.last_acc_ratio = max(0.0, min(1.5, out["accuracy_ratio"]))
        self.last_objects = min(1.5, self.ctx["density"] * self.last_acc_ratio)
        self.t += self.settings.dt_s
        self.steps += 1
        self._draw_context()
        truncated = self.steps >= self.settings.max_steps
        return self._observation(), out["reward"], False, truncated, info


def register() -> None:
    """Register ``AgraRos-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="agra_ros.sim.env:AgraEnv")
