"""The robot's radio energy when perception sends a frame to a perception server: a published measurement.

Source: J. Huang, F. Qian, A. Gerber, Z. M. Mao, S. Sen, O. Spatscheck, "A close examination of performance and
power characteristics of 4G LTE networks", ACM MobiSys 2012, Table 3 ("data transfer power model"), measured on
smartphones: while data flows the radio draws

    P = alpha_u * t_u + alpha_d * t_d + beta          (t_u, t_d: uplink / downlink throughput in Mbit/s)

with, for Wi-Fi, alpha_u = 283.17 mW/Mbps, alpha_d = 137.01 mW/Mbps, beta = 132.86 mW, and for LTE
alpha_u = 438.39, alpha_d = 51.97 mW/Mbps, beta = 1288.04 mW. Over a transfer of T seconds that moves b_u and b_d
megabits, the energy is alpha_u * b_u + alpha_d * b_d (mJ, throughput cancels) + beta * T. Here T is the request's
round trip (the radio stays active until the reply is in; on a timeout, the deadline). LTE's tail energy after the
transfer (its RRC_CONNECTED tail, ~11.6 s in the paper) is not charged per frame: at the frame rates of a robot the
radio never leaves the connected state, so the tail is a constant of the link, not a cost of one frame.

Wi-Fi is the default: a robot beside its edge box. The per-bit Wi-Fi cost (2.27 J per MB sent) is far above the
0.05 J/MB in the device profiles' ``tx_j_per_mb``; the simulator's link profiles (:mod:`agra_ros.sim.link`) charge
this model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RADIOS", "RadioModel", "radio_model"]


@dataclass(frozen=True)
class RadioModel:
    """Huang et al. (MobiSys 2012) data-transfer power model of one radio."""

    name: str
    uplink_mw_per_mbps: float
    downlink_mw_per_mbps: float
    base_mw: float

    def energy_j(self, tx_bytes: float, rx_bytes: float, active_s: float) -> float:
        """Joules to send ``tx_bytes``, receive ``rx_bytes`` with the radio active for ``active_s`` seconds (floats,
        or numpy arrays: the simulator evaluates many configurations at once)."""
        mbit_up, mbit_down = 8.0 * np.maximum(0.0, tx_bytes) / 1e6, 8.0 * np.maximum(0.0, rx_bytes) / 1e6
        mj = (
            self.uplink_mw_per_mbps * mbit_up
            + self.downlink_mw_per_mbps * mbit_down
            + self.base_mw * np.maximum(0.0, active_s)
        )
        return mj / 1e3


RADIOS: dict[str, RadioModel] = {
    "wifi": RadioModel("wifi", 283.17, 137.01, 132.86),
    "lte": RadioModel("lte", 438.39, 51.97, 1288.04),
}
"""Huang et al., MobiSys 2012, Table 3."""


def radio_model(name: str) -> RadioModel:
    """The named radio (``wifi`` or ``lte``); KeyError names the known ones."""
    try:
        return RADIOS[name]
    except KeyError:
        raise KeyError(f"unknown radio {name!r}; known: {', '.join(RADIOS)}") from None
