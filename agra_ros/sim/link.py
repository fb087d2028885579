"""Link profiles of the simulator: the network between the robot and a perception server, drawn per episode.

A profile gives the link's round-trip time (a median, a log-normal spread of the slow link state that drifts over
an episode, and a per-decision jitter around it), its uplink throughput (median and log-normal spread), the share
of requests lost, and the robot's radio (:mod:`agra_ros.device.radio`, Huang et al., MobiSys 2012), whose data-
transfer power model charges the energy of every frame sent. ``none`` is a robot without a server: remote execution
is unavailable and the policy's execution target is masked to local, as perception does when no server answers.

Numbers, and where they come from:

- ``lte``: J. Huang et al., "A close examination of performance and power characteristics of 4G LTE networks",
  MobiSys 2012 (4GTest, Table 2 / Fig. 3): median RTT about 70 ms, median uplink 5.64 Mbit/s. The spreads and the
  1 % loss are our assumptions (a cellular link's RTT varies within a session by tens of ms; loss is mostly hidden
  by the radio link's retransmissions, so a request is lost rarely).
- ``good_wifi``: an assumption for a robot in the room of the access point, the edge machine one wired hop behind
  it: median RTT 5 ms, uplink 50 Mbit/s (what 802.11n/ac gives one client in practice, and the issue's "good link"
  of at least 50 Mbit/s), no loss. It uses Huang's Wi-Fi radio model.
- ``poor_wifi``: an assumption for the edge of the access point's range or a crowded channel: median RTT 40 ms with a
  wide spread, uplink 4 Mbit/s, 8 % of requests lost (bracketing the degraded link of the package's namespace test,
  2 Mbit/s and 20 % loss, at its bad end).

A lost request costs what it costs on the robot (:mod:`agra_ros.perception.offload`): perception waits until the
deadline (:data:`DEADLINE_BUDGETS` frame budgets), with the radio on, and then runs the frame locally in the
fallback configuration (the detector's ``full``, local); a reply later than the deadline is a timeout too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agra_ros.core.observation import LinkObservation
from agra_ros.device.radio import RadioModel, radio_model

NO_SERVER = "none"
DEADLINE_BUDGETS = 1.5
"""Deadline of a remote request in frame budgets (1 / target FPS): perception's default."""
RX_BYTES = 2_000.0
"""Size of a server's reply (the detections): a few hundred bytes per box, a few boxes."""


@dataclass(frozen=True)
class LinkProfile:
    """One kind of link between robot and server (see the module docstring for the numbers)."""

    name: str
    rtt_median_s: float = 0.0
    rtt_sd: float = 0.0
    """Log-normal spread of the slow link state (the RTT drifts around its median over an episode)."""
    jitter_sd: float = 0.0
    """Log-normal spread of each decision's RTT around the link state."""
    uplink_median_mbps: float = 0.0
    uplink_sd: float = 0.0
    """Log-normal spread of the uplink throughput (slow, like the RTT's link state)."""
    loss: float = 0.0
    """Mean share of requests lost (never answered)."""
    radio: str | None = None
    """The robot's radio (:data:`agra_ros.device.radio.RADIOS`); None: no server (``none``)."""

    @property
    def server(self) -> bool:
        return self.radio is not None


LINK_PROFILES: dict[str, LinkProfile] = {
    "good_wifi": LinkProfile("good_wifi", 0.005, 0.3, 0.15, 50.0, 0.3, 0.0, "wifi"),
    "poor_wifi": LinkProfile("poor_wifi", 0.040, 0.5, 0.3, 4.0, 0.5, 0.08, "wifi"),
    "lte": LinkProfile("lte", 0.070, 0.3, 0.2, 5.64, 0.4, 0.01, "lte"),
    NO_SERVER: LinkProfile(NO_SERVER),
}
"""The simulator's link profiles by name."""


def link_profile(name: str) -> LinkProfile:
    """The named profile; ValueError names the known ones."""
    try:
        return LINK_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown link profile {name!r}; known: {', '.join(LINK_PROFILES)}") from None


def draw_profile(rng: np.random.Generator, profiles: tuple[str, ...], server_share: float) -> LinkProfile:
    """This episode's link: with probability ``server_share`` one of ``profiles`` (uniformly), else ``none``."""
    has_server = rng.random() < server_share
    name = profiles[int(rng.integers(len(profiles)))] if profiles else NO_SERVER
    return link_profile(name if has_server else NO_SERVER)


class LinkSim:
    """One episode's link: slow log-normal states of RTT and uplink, per-decision jitter and lost requests.

    It draws the same number of random numbers whatever the profile, so switching the profile does not shift the
    rest of the simulator's random stream."""

    def __init__(self, profile: LinkProfile, default_rtt_s: float, noise: bool = True) -> None:
        self.profile = profile
        self.default_rtt_s = default_rtt_s
        """RTT shown in the observation without a server (the robot's fallback when nothing was measured)."""
        self.noise = noise
        self.radio: RadioModel | None = radio_model(profile.radio) if profile.radio else None
        self.rtt_state = 0.0
        self.up_state = 0.0
        self.rtt_s = profile.rtt_median_s
        self.uplink_bps = profile.uplink_median_mbps * 1e6
        self.loss = profile.loss

    def reset(self, rng: np.random.Generator) -> None:
        p, k = self.profile, float(self.noise)
        self.rtt_state = k * p.rtt_sd * float(rng.normal())
        self.up_state = k * p.uplink_sd * float(rng.normal())

    def draw(self, rng: np.random.Generator) -> None:
        """Advance the link state one decision and draw its RTT, uplink and share of lost requests."""
        p, k = self.profile, float(self.noise)
        z = rng.normal(size=4)
        self.rtt_state += -0.1 * self.rtt_state + k * 0.1 * p.rtt_sd * float(z[0])
        self.up_state += -0.1 * self.up_state + k * 0.1 * p.uplink_sd * float(z[1])
        self.rtt_s = p.rtt_median_s * math.exp(self.rtt_state + k * p.jitter_sd * float(z[2]))
        self.uplink_bps = p.uplink_median_mbps * 1e6 * math.exp(self.up_state)
        # requests lost this decision: around the profile's mean, bursty (log-normal), at most all
        self.loss = min(1.0, p.loss * math.exp(k * (0.8 * float(z[3]) - 0.32)))

    def observation(self) -> LinkObservation:
        """What the robot measures of this link (the slow state, as perception's smoothed RTT; not the jitter)."""
        if not self.profile.server:
            return LinkObservation(rtt_s=self.default_rtt_s)
        p = self.profile
        return LinkObservation(
            rtt_s=p.rtt_median_s * math.exp(self.rtt_state),
            uplink_mbps=self.uplink_bps / 1e6,
            loss=self.loss,
            server=True,
        )

    def remote_cost(
        self,
        remote_latency_s,
        tx_bytes,
        target_fps: float,
        fallback_latency_s: float,
        fallback_energy_j: float,
    ):
        """(latency, robot's dynamic energy, robot's busy time) per frame commanded remote, as means over the
        decision's frames (floats or numpy arrays alike).

        A frame goes out, the server runs it (``remote_latency_s``), the reply comes back: latency = server time +
        RTT + tx bits / uplink; the radio is active that long (Huang's model: energy = per-bit cost + base power x
        active time). A lost request, or a reply later than the deadline, costs the deadline with the radio on and
        then the local fallback run (``fallback_latency_s``, ``fallback_energy_j``), which also keeps the robot
        busy."""
        assert self.radio is not None, "remote_cost on a link without a server"
        r = self.radio
        deadline = DEADLINE_BUDGETS / target_fps
        answered_s = remote_latency_s + self.rtt_s + 8.0 * tx_bytes / self.uplink_bps
        lost = np.where(answered_s > deadline, 1.0, self.loss)
        answered_j = r.energy_j(tx_bytes, RX_BYTES, answered_s)
        lost_j = r.energy_j(tx_bytes, 0.0, deadline) + fallback_energy_j  # sent, never answered
        latency = (1.0 - lost) * answered_s + lost * (deadline + fallback_latency_s)
        energy = (1.0 - lost) * answered_j + lost * lost_j
        return latency, energy, lost * fallback_latency_s
