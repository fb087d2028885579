"""agra_ros.sim: the AGRA decision problem as a gymnasium environment (``AgraRos-v0``) over measured tables."""

from agra_ros.sim.env import ENV_ID, AgraEnv, SimSettings, register

register()

__all__ = ["ENV_ID", "AgraEnv", "SimSettings", "register"]
