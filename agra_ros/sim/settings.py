"""SimSettings: everything that defines one simulated world of :class:`agra_ros.sim.env.AgraEnv`."""

from __future__ import annotations

from dataclasses import dataclass, field

from agra_ros.core.contract import LINK_RTT_S
from agra_ros.core.device import BACKGROUND_LOAD_MEAN
from agra_ros.core.reward import RewardWeights
from agra_ros.device.profiles import DeviceProfile
from agra_ros.limits import ACCURACY_FLOOR
from agra_ros.sim.randomise import DeviceRandomisation


@dataclass
class SimSettings:
    """Everything that defines one simulated world."""

    trace: str = "default"
    """Workload trace (config/traces/<name>.yaml or a path): density, resolution and target FPS over time."""
    device: str | DeviceProfile = "x86_generic"
    """Device profile of the robot's computer (a config/devices/<name>.yaml name, or a profile)."""
    randomise_device: DeviceRandomisation | None = None
    """Draw the device and its background load anew every episode around these profiles (domain randomisation);
    None: always ``device`` with ``interference_mean``."""
    remote_device: str | DeviceProfile = "x86_generic"
    """Device profile of the remote perception node the execution target 'remote' sends frames to."""
    cost_table: str | None = None
    """Cost table path (default: the real detector's, agra_ros/data/cost_tables/ssd/x86_generic.json)."""
    accuracy_model: str | None = None
    """Accuracy model path (default: the real detector's, agra_ros/data/accuracy_model_ssd.json)."""
    dt_s: float = 1.0
    """Simulated seconds per decision (one step)."""
    max_steps: int = 128
    """Episode length in decisions (then truncated)."""
    random_start: bool = True
    """Start each episode at a random time of the trace (otherwise at t = 0)."""
    accuracy_floor: float = ACCURACY_FLOOR
    """Accuracy floor, as a share of the full configuration's accuracy (the optional accuracy target of P)."""
    accuracy_floor_range: tuple[float, float] | None = None
    """Draw each episode's accuracy floor uniformly in this range instead (training: the robot's accuracy_floor
    parameter can be set anywhere, and a policy that only ever saw one floor ignores it); None: always
    ``accuracy_floor``."""
    accuracy_floor_drawn_share: float = 1.0
    """With ``accuracy_floor_range``: the share of episodes whose floor is drawn; the rest keep ``accuracy_floor``
    (the default floor most robots run at stays well trained)."""
    density_sensitivity: tuple[float, float] = (0.5, 1.5)
    """Accuracy-loss multiplier for an empty and for a full (40-object) scene: dense scenes suffer more."""
    allow_remote: bool = True
    """False: no episode has a perception server (every episode's link is ``none``): the execution target is
    always local, whatever the action says, as perception_node does when no server answers."""
    link_profiles: tuple[str, ...] = ("good_wifi",)
    """Link profiles (:data:`agra_ros.sim.link.LINK_PROFILES`) an episode with a server draws from, uniformly."""
    server_share: float = 1.0
    """Share of episodes with a perception server; the others have the link ``none`` (remote masked to local), so
    one policy learns both worlds."""
    link_noise: bool = True
    """False: the link sits at its profile's medians (tests)."""
    link_rtt_s: float = LINK_RTT_S
    """RTT the observation shows when the episode has no server (the robot's fallback when nothing was measured)."""
    compressed_bytes_per_pixel: float = 0.15
    """Size of a compressed camera frame per input pixel (JPEG-like)."""
    interference_mean: float = BACKGROUND_LOAD_MEAN
    """Mean background CPU load from other processes (0..1); slows local inference by 1 + load."""
    interference_sd: float = 0.1
    """Step noise of the background load (AR(1) with rate 0.2)."""
    core_loss_rate: float = 0.01
    """Chance per decision that another process takes a core for a while (cores available drops)."""
    weights: RewardWeights = field(default_factory=RewardWeights)
    """Fixed reward weights of the env's own reward (an AGRA learner recomputes it with learned multipliers)."""
