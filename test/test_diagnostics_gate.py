"""The policy reads /diagnostics serialized: small messages always, a large one at most once per period."""

from __future__ import annotations

from agra_ros.online.diagnostics_gate import LARGE_DIAGNOSTICS_BYTES, DiagnosticsGate


def test_small_messages_always_pass_and_large_ones_once_per_period():
    gate = DiagnosticsGate(period_s=1.0)
    assert all(gate.admit(2_000, t / 50) for t in range(100))  # a device status at 50 Hz: every one read
    big = LARGE_DIAGNOSTICS_BYTES + 1
    read = [t for t in range(100) if gate.admit(big, t / 50)]  # a 2-second flood at 50 Hz
    assert read == [0, 50]
    assert gate.admit(1_000, 1.999)  # a device status amid the flood still goes through


def test_a_device_status_as_large_as_the_threshold_is_small():
    gate = DiagnosticsGate()
    assert gate.admit(LARGE_DIAGNOSTICS_BYTES, 0.0) and gate.admit(LARGE_DIAGNOSTICS_BYTES, 0.0)
    # small messages do not use up the large ones' period: the first large one is read, the next not
    assert gate.admit(LARGE_DIAGNOSTICS_BYTES + 1, 0.5) and not gate.admit(LARGE_DIAGNOSTICS_BYTES + 1, 0.6)
