"""The learner within a budget: its CPU share held to the budget, updates deferred while perception misses its
target, what it held back reported, and the node parameter that sets the budget at runtime."""

from __future__ import annotations

import math
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from test_online_learner import NVEC, OBS_DIM, _rollout, _state, _wait

from agra_ros.nodes.policy_params import SPECS
from agra_ros.online.budget import CPU_BUDGET_RANGE, CpuBudget, UpdateGate
from agra_ros.online.learner import OnlineLearner
from agra_ros.online.learner_process import LearnerSupervisor
from agra_ros.online.learner_settings import LearnerSettings, online_ppo_settings
from agra_ros.online.status import learner_budget_values
from agra_ros.policy.gpn import build_gpn
from agra_ros.ros import params as ros_params


class FakeProcess:
    """A clock and a CPU-time counter that a test advances: ``work`` spends CPU, ``idle`` only time."""

    def __init__(self) -> None:
        self.t = 100.0
        self.cpu = 5.0

    def work(self, s: float) -> None:
        self.t += s
        self.cpu += s

    def idle(self, s: float) -> None:
        self.t += s


def test_the_bucket_makes_a_process_wait_off_what_it_spent_over_budget():
    p = FakeProcess()
    b = CpuBudget(0.1, window_s=10.0, cpu=lambda: p.cpu, clock=lambda: p.t)
    assert b.wait_s() == 0.0  # nothing spent yet
    p.work(1.0)
    assert b.wait_s() == pytest.approx(10.0 - 0.1 / 0.1, abs=1e-9)  # 1 s of CPU, 0.1 s of it earned meanwhile
    p.idle(9.0)
    assert b.wait_s() == pytest.approx(0.0, abs=1e-9)
    # an idle hour earns at most window_s seconds' worth: the burst afterwards is bounded
    p.idle(3600.0)
    p.work(1.0)
    assert b.wait_s() == pytest.approx(0.0, abs=1e-9)
    p.work(1.0)
    assert b.wait_s() > 0.0


def test_a_process_that_obeys_stays_at_its_budget_on_average():
    p = FakeProcess()
    b = CpuBudget(0.1, window_s=10.0, measure_s=30.0, cpu=lambda: p.cpu, clock=lambda: p.t)
    t0, c0 = p.t, p.cpu
    for _ in range(2000):
        wait = b.wait_s()
        if wait > 0:
            p.idle(min(wait, 0.5))
        else:
            p.work(0.3)  # one PPO update's worth
    share = (p.cpu - c0) / (p.t - t0)
    assert 0.09 <= share <= 0.1 + 0.3 / (p.t - t0) + 1e-9, share
    assert b.share_measured() == pytest.approx(0.1, abs=0.02)
    b.set_share(0.5)
    assert b.share == 0.5


def test_a_real_busy_loop_is_throttled_to_about_its_budget():
    """Real CPU time on a possibly loaded machine: a generous bound (2x the budget), and it must throttle at all."""
    budget = 0.2
    gate = UpdateGate(budget, window_s=0.5)
    c0, t0 = time.process_time(), time.monotonic()
    chunks = 0
    while time.monotonic() - t0 < 2.5:
        wait = gate.wait_s(poll_s=0.05)
        if wait > 0:
            time.sleep(wait)
            continue
        end = time.process_time() + 0.02  # 20 ms of CPU, however long the machine takes to give it
        while time.process_time() < end:
            pass
        gate.ran()
        chunks += 1
    share = (time.process_time() - c0) / (time.monotonic() - t0)
    assert chunks >= 1
    assert gate.throttled_s > 0.5, gate.stats()
    assert share <= 2 * budget, f"CPU share {share:.2f} for a budget of {budget}"


def test_updates_wait_while_perception_misses_its_target_at_most_max_defer_s():
    p = FakeProcess()
    gate = UpdateGate(0.1, max_defer_s=30.0, cpu=lambda: p.cpu, clock=lambda: p.t)
    p.idle(20.0)  # tokens for an update
    assert gate.wait_s() == 0.0
    gate.ran()
    gate.set_target_missed(True)
    for _ in range(10):
        assert gate.wait_s(poll_s=0.5) == 0.5
        p.idle(0.5)
    st = gate.stats()
    assert st["deferred_updates"] == 1 and st["deferred_s"] == pytest.approx(4.5) and st["target_missed"] == 1.0
    assert st["throttled_s"] == 0.0
    p.idle(30.0)  # the deferral's limit: the update runs after all (within the budget)
    assert gate.wait_s() == 0.0
    gate.ran()
    assert gate.wait_s() > 0  # the next one waits again
    gate.set_target_missed(False)
    assert gate.wait_s() == 0.0
    assert gate.stats()["deferred_updates"] == 2


@pytest.mark.parametrize("share", [0.0, 0.005, 1.5, math.nan, -0.1])
def test_the_budget_is_a_share_of_one_core(share):
    with pytest.raises(ValueError, match="cpu budget"):
        CpuBudget(share)


def test_a_held_back_learner_keeps_only_the_newest_rollouts():
    spec, st = _state()
    learner = OnlineLearner(spec, st, LearnerSettings(online_ppo_settings(num_steps=8), ewc=False))
    rng = np.random.default_rng(0)
    for _ in range(10):
        learner.push(_rollout(learner.gpn, 8, rng))
    assert learner.due and learner.updates == 0
    assert learner.dropped_steps == 8 * (10 - OnlineLearner.MAX_PENDING_ROLLOUTS)
    n = 0
    while learner.step():
        n += 1
    assert n == OnlineLearner.MAX_PENDING_ROLLOUTS and not learner.due


def test_the_supervisor_defers_the_learner_and_reports_its_budget():
    spec, st = _state()
    gpn = build_gpn(OBS_DIM, NVEC, hidden=32, seed=0)
    settings = LearnerSettings(online_ppo_settings(num_steps=8), nice=0, cpu_budget=0.5, max_defer_s=600.0)
    sup = LearnerSupervisor(spec, st, settings)
    rng = np.random.default_rng(0)
    try:
        with pytest.raises(ValueError, match="cpu budget"):
            sup.set_control(cpu_budget=2.0)
        sup.set_control(target_missed=True, cpu_budget=0.6)
        sup.start()
        for _ in range(4):
            assert sup.submit(_rollout(gpn, 8, rng))
        assert _wait(lambda: (sup.poll(), sup.stats.get("deferred_updates", 0) >= 1)[1], 60), sup.stats
        assert sup.latest.updates == 0 and sup.stats["cpu_budget"] == 0.6 and sup.stats["target_missed"] == 1.0
        values = dict(learner_budget_values(sup))
        assert values["learner_cpu_budget"] == 0.6 and values["learner_target_missed"] is True
        assert values["learner_deferred_updates"] >= 1
        sup.set_control(target_missed=False)
        assert _wait(lambda: (sup.poll(), sup.latest.updates >= 1)[1], 60), sup.stats
    finally:
        sup.stop()


def test_budget_values_before_the_learner_reports():
    sup = SimpleNamespace(stats={}, settings=LearnerSettings(), control={"target_missed": False})
    values = dict(learner_budget_values(sup))
    assert values["learner_cpu_budget"] == 0.10 and math.isnan(values["learner_cpu_share"])
    assert values["learner_throttled"] is False and values["learner_deferred_updates"] == 0


def test_the_policy_node_parameters_take_a_budget_and_a_hold_time_at_runtime():
    specs = [s for s in SPECS if s.name in ("learner_cpu_budget", "min_hold_s")]
    assert {s.name: (s.default, s.range[:2], s.read_only) for s in specs} == {
        "learner_cpu_budget": (0.10, CPU_BUDGET_RANGE, False),
        "min_hold_s": (1.0, (0.0, 30.0), False),
    }
    ctx = Context()
    rclpy.init(args=["--ros-args"], context=ctx)
    node = Node("budget_params_test", context=ctx)
    try:
        declared = ros_params.declare(node, specs)
        ros_params.on_set(node, declared)
        for name, value in (("learner_cpu_budget", 0.0), ("learner_cpu_budget", 1.5), ("min_hold_s", 31.0)):
            res = node.set_parameters([Parameter(name, value=value)])[0]
            assert not res.successful and name in res.reason, (name, value, res.reason)
        assert node.set_parameters([Parameter("learner_cpu_budget", value=0.25)])[0].successful
        assert node.set_parameters([Parameter("min_hold_s", value=0.0)])[0].successful
        assert node.get_parameter("learner_cpu_budget").value == 0.25
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_the_learner_is_niced_from_its_start_not_after_its_imports():
    spec, st = _state()
    sup = LearnerSupervisor(spec, st, LearnerSettings(nice=10))
    try:
        sup.start()
        pid = sup.pid
        assert pid is not None
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, own + 10)  # at once, while it still imports
        assert _wait(lambda: (sup.poll(), bool(sup.stats))[1], 60), "the learner never reported"
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, own + 10)  # and not niced twice
    finally:
        sup.stop()
