"""Simulator: gymnasium's checker, the table views against CostTable/AccuracyModel, scalar vs vector outcome, speed."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from simfixtures import make_env, write_fixture_tables

from agra_ros.granularity.levels import KEYFRAME_INTERVALS, GranularityConfig
from agra_ros.tables.files import AccuracyModel, CostTable
from agra_ros.tables.search import ConfigModel, SearchSpace


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_fixture_tables(tmp_path_factory.mktemp("tables"))


def test_env_checker(tables):
    check_env(make_env(tables), skip_render_check=True)


def test_config_model_matches_tables(tables):
    cp, ap = tables
    cost, acc = CostTable.load(cp), AccuracyModel.load(ap)
    model = ConfigModel(cost, acc)
    rng = np.random.default_rng(0)
    for _ in range(50):
        key = tuple(int(v) for v in rng.integers(0, 5, 3)) + (int(rng.integers(3)),)
        cfg = GranularityConfig.from_indices(list(key) + [0], 3)
        lat, macs, byt, a = model.lookup(key)
        fc = cost.frame_cost(cfg)
        assert lat == pytest.approx(fc.latency_s) and macs == pytest.approx(fc.macs)
        assert byt == pytest.approx(fc.bytes) and a == pytest.approx(acc.predict(cfg))
    space = SearchSpace(model)
    assert 1 not in space.choices[0]  # partitioned is slower than full at the same width: dropped exactly
    for row in rng.integers(0, space.size, 20):
        key = tuple(int(v) for v in space.keys[row])
        assert model.lookup(key) == pytest.approx(
            (space.latency_s[row], space.macs[row], space.bytes[row], space.accuracy[row])
        )


def test_step_matches_vectorised_evaluate(tables):
    env = make_env(tables)
    env.reset(seed=3)
    for _ in range(20):
        a = env.action_space.sample()
        lat, macs, byt, acc = env.model.lookup(tuple(int(v) for v in a[:4]))
        k = KEYFRAME_INTERVALS[a[5]]
        args = (np.array([lat]), np.array([macs]), np.array([byt]), np.array([acc]), np.array([a[3]]), a[4])
        vec = env.evaluate(*args, None, np.array([k]))
        _, r, _, _, info = env.step(a)
        assert info["keyframe_interval"] == k
        # evaluate prices no switch (the oracle's per-step search); step charges the churn against the last step
        assert r == pytest.approx(float(vec["reward"][0]) - env.settings.weights.delta * info["switch"])
        assert info["fps"] == pytest.approx(float(vec["fps"][0]))


def test_oracle_is_exact_against_brute_force(tables):
    from agra_ros.policy.oracle import OraclePolicy

    env = make_env(tables)
    env.reset(seed=5)
    oracle = OraclePolicy(env)
    for _ in range(5):
        a = oracle.act()
        best = max(
            float(env.evaluate(*env.model.lookup((l0, l1, l2, s)), s, t, None, k)["reward"])
            for l0 in range(5)
            for l1 in range(5)
            for l2 in range(5)
            for s in range(3)
            for t in range(2)
            for k in KEYFRAME_INTERVALS
        )
        lookup = env.model.lookup(tuple(int(v) for v in a[:4]))
        chosen = float(env.evaluate(*lookup, a[3], a[4], None, KEYFRAME_INTERVALS[a[5]])["reward"])
        assert chosen == pytest.approx(best)
        env.step(a)


def test_thermal_throttling_under_sustained_power(tables):
    env = make_env(tables)
    env.reset(seed=0)
    for _ in range(200):
        env.device.advance(env.device.p.p_max_w, 1.0, 1.0)
    assert env.device.throttling and env.device.clock_ratio < 1.0
    assert env.ctx["local_mult"] > 0


def test_long_random_rollout_stays_finite(tables):
    """Thousands of random steps across resets keep every observation and reward finite.

    The speed target (>= 5,000 steps/s) is a benchmark, not a timed test: ``python -m agra_ros.bench.policy_bench sim``.
    """
    env = make_env(tables)
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(256)]
    for i in range(5000):
        obs, reward, term, trunc, _ = env.step(actions[i % 256])
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        if term or trunc:
            env.reset()


def test_without_a_remote_node_every_action_runs_locally_and_the_oracle_knows(tables):
    from agra_ros.policy.oracle import OraclePolicy

    env = make_env(tables, allow_remote=False)
    twin = make_env(tables)
    env.reset(seed=3)
    twin.reset(seed=3)
    action = env.action_space.sample()
    action[-2] = 1  # ask for remote (the last head is the keyframe interval)
    local = action.copy()
    local[-2] = 0
    _, r, _, _, info = env.step(action)
    _, r_local, _, _, info_local = twin.step(local)
    assert not info["remote"] and r == pytest.approx(r_local) and info["fps"] == pytest.approx(info_local["fps"])
    oracle = OraclePolicy(env)
    for _ in range(20):
        a = oracle.act()
        assert a[-2] == 0  # local (the last head is the keyframe interval)
        env.step(a)


def test_workload_cache_prefers_the_shipped_copy_and_writes_new_traces_to_the_user_cache(tmp_path, monkeypatch):
    from agra_ros.sim import workload_cache as wc
    from agra_ros.workload.trace import Trace

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shipped = Trace.load("bench")
    name = f"{shipped.name}-{wc._trace_key(shipped, 0)}.npz"
    assert (wc.shipped_cache_dir() / name).is_file(), "the package's traces ship their workload cache"
    wc.phase_workloads(shipped)
    assert not (wc.user_cache_dir()).exists(), "a shipped trace must not be rendered again"

    trace_file = tmp_path / "tiny.yaml"
    trace_file.write_text(
        "name: tiny\nphases:\n  - {name: a, duration_s: 1, density: 3, resolution: [160, 120], target_fps: 5}\n"
    )
    tiny = Trace.load(str(trace_file))
    first = wc.phase_workloads(tiny)
    written = list(wc.user_cache_dir().glob("tiny-*.npz"))
    assert len(written) == 1 and not list(wc.shipped_cache_dir().glob("tiny-*.npz"))
    again = wc.phase_workloads(tiny)
    assert np.array_equal(first[0].embeddings, again[0].embeddings)


def test_device_block_shows_the_detector_where_it_runs():
    """D means what the device monitor measures: the detector's busy share is GPU utilisation only on a board with
    a GPU; elsewhere the monitor reads gpu_util 0 and the CPU carries it on top of the background load."""
    from agra_ros.core.device import DeviceSim
    from agra_ros.device.keys import DEVICE_KEYS

    cpu, gpu = DEVICE_KEYS.index("cpu_util"), DEVICE_KEYS.index("gpu_util")
    for name, has_gpu in (("x86_generic", False), ("raspberry_pi_5", False), ("jetson_orin_nano", True)):
        dev = DeviceSim(name)
        dev.advance(dev.p.p_idle_w, busy_fraction=0.6, dt_s=1.0)
        d = dev.vector(interference=0.2, cores_lost=0)
        if has_gpu:
            assert d[gpu] == pytest.approx(0.6) and d[cpu] == pytest.approx(0.2), (name, d)
        else:
            assert d[gpu] == 0.0 and d[cpu] == pytest.approx(0.2 + 0.6 * 0.8), (name, d)


def test_mean_confidence_and_accuracy_floor_follow_the_robot_definitions(tables):
    """W's mean confidence is 0 with nothing detected and at least perception's score threshold otherwise; a drawn
    accuracy floor is the one in P and the one the accuracy loss is measured against."""
    from agra_ros.core.contract import SCORE_THRESHOLD
    from agra_ros.core.observation import P_FIELDS
    from agra_ros.sim.env import CONFIDENCE_AT_FULL
    from agra_ros.workload.features import EMBEDDING_DIM, SCALAR_NAMES

    env = make_env(tables, accuracy_floor_range=(0.5, 0.95))
    p0 = env.layout.slices()[2].start
    floor_i = [i for i, f in enumerate(P_FIELDS) if f[0].startswith("accuracy_floor")][0]
    floors, confs = set(), []
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        floors.add(round(float(obs[p0 + floor_i]), 6))
        assert obs[p0 + floor_i] == pytest.approx(env.accuracy_floor) and 0.5 <= env.accuracy_floor <= 0.95
        for _ in range(5):
            obs, _, _, _, info = env.step(env.action_space.sample())
            conf = float(obs[EMBEDDING_DIM + SCALAR_NAMES.index("mean_confidence")])
            assert conf == 0.0 or SCORE_THRESHOLD <= conf <= CONFIDENCE_AT_FULL[1], conf
            confs.append(conf)
            assert info["accuracy_loss"] == pytest.approx(max(0.0, env.accuracy_floor - info["accuracy_ratio"]))
    assert len(floors) == 12 and any(c > 0 for c in confs)
    fixed = make_env(tables)
    for seed in range(3):
        fixed.reset(seed=seed)
        assert fixed.accuracy_floor == fixed.settings.accuracy_floor


def test_relative_targets_follow_the_episode_device():
    """heldout_rel asks the same multiples of full's rate of a Jetson Nano and of x86 (the real tables)."""
    from agra_ros.sim.env import AgraEnv

    for profile in ("jetson_nano_5w", "x86_generic"):
        env = AgraEnv(trace="heldout_rel", device=profile, random_start=False)
        env.reset(seed=0)
        assert env.ctx["target_fps"] == pytest.approx(1.3 * env.full_fps)
        assert env.full_fps == pytest.approx(1.0 / (env.model.full[0] * env.device.latency_multiplier(0.0, 0)))
    env = AgraEnv(trace="heldout_rel", device="jetson_nano_5w")
    slow = env.full_fps
    assert slow < AgraEnv(trace="heldout_rel", device="x86_generic").full_fps / 4


def test_a_keyframe_interval_buys_rate_and_energy_for_the_tracker_s_accuracy():
    """Same state, full everywhere, interval 1 against 3 (core.temporal): more FPS, less energy per frame, the
    accuracy the motion of the phase's frames lets the tracker keep."""
    from agra_ros.core.temporal import keyframe_retention
    from agra_ros.sim.env import AgraEnv

    outs = {}
    for k_index in (0, KEYFRAME_INTERVALS.index(3)):
        env = AgraEnv(trace="heldout_rel", device="jetson_nano_5w", random_start=False)
        env.reset(seed=1)
        action = np.zeros(env.n_layers + 3, dtype=np.int64)
        action[-1] = k_index
        motion, tracker_s = env.ctx["motion"], env.ctx["tracker_s"]
        outs[k_index] = env.step(action)[-1]
    one, three = outs[0], outs[KEYFRAME_INTERVALS.index(3)]
    # two of three frames cost the tracker (the cost table's measured line for this phase's objects, on the
    # device's clock) instead of the detector
    assert tracker_s > 0 and three["keyframe_interval"] == 3
    assert three["fps"] == pytest.approx(3.0 / (1.0 / one["fps"] + 2.0 * tracker_s), rel=0.02)
    assert three["fps"] > one["fps"]
    assert three["system_energy_per_frame_j"] < one["system_energy_per_frame_j"]
    assert three["accuracy_ratio"] == pytest.approx(one["accuracy_ratio"] * keyframe_retention(3, motion))
