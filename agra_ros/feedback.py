"""The agra/feedback vector: what perception reports per processed frame and the policy scores decisions with.

One definition shared by the producer (detection.runtime) and the consumer (online.inputs), so the two cannot
disagree on the order of the values.
"""

FEEDBACK_FIELDS: tuple[str, ...] = (
    "fps",
    "latency_ms",
    "detector_energy_per_frame_j",
    "power_w",
    "accuracy_proxy",
    "objects",
    "mean_confidence",
)
"""Order of the values in one agra/feedback vector; its layout label is these names joined by commas."""
