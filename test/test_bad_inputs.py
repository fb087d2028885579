"""The bad-input counter both nodes use: counts by kind, logs each kind at most once per period."""

from __future__ import annotations

import threading

from agra_ros.bad_inputs import BadInputCounter


def test_bad_input_counter_throttles_per_kind():
    c = BadInputCounter(log_period_s=5.0)
    assert c.record("image_step", 0.0) == 1
    assert c.record("image_step", 1.0) is None
    assert c.record("image_encoding", 1.0) == 1  # another kind logs at once
    assert c.record("image_step", 2.0) is None
    assert c.record("image_step", 5.0) == 3  # the two held back plus this one
    assert c.counts() == {"image_step": 4, "image_encoding": 1} and c.total() == 5
    assert c.count("image_step") == 4 and c.count("feedback") == 0


def test_bad_input_counter_counts_every_record_across_threads():
    c = BadInputCounter()

    def hammer() -> None:
        for _ in range(2000):
            c.record("feedback", 0.0)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.count("feedback") == 8000 and c.total() == 8000
