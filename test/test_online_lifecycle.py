"""The policy node's bookkeeping without ROS: checkpoint lifecycle and the target FPS's precedence."""

from __future__ import annotations

import tempfile
from pathlib import Path

from simfixtures import FIXTURE_DEVICE, write_fixture_tables

from agra_ros.core.contract import Contract, observation_layout
from agra_ros.core.device import DeviceSim
from agra_ros.online.agent import AgentSettings, OnlineAgent
from agra_ros.online.checkpoint import CheckpointSpec
from agra_ros.online.lifecycle import CheckpointKeeper, TargetArbiter
from agra_ros.tables.search import load_config_model

_TABLES = write_fixture_tables(Path(tempfile.mkdtemp(prefix="agra_lifecycle_test_")))


def _agent() -> OnlineAgent:
    model = load_config_model(str(_TABLES[0]), str(_TABLES[1]))
    ref = Contract(observation_layout(), model, DeviceSim(FIXTURE_DEVICE, table_device="fixture"))
    return OnlineAgent(AgentSettings(start_from_shipped=False), ref)


def test_checkpoint_round_trip_and_failures_counted_and_logged_once(tmp_path):
    agent = _agent()
    spec = CheckpointSpec("agra", agent.layout.dim, agent.nvec)
    keeper = CheckpointKeeper(tmp_path / "policy_agra.pt", spec)
    agent, out = keeper.load(agent)
    assert out.status == "missing" and keeper.status == "missing"
    logged: list[str] = []
    assert keeper.save(agent, logged.append) and keeper.saves == 1 and keeper.error == ""
    agent.updates = 7
    keeper.save(agent, logged.append)
    again = CheckpointKeeper(tmp_path / "policy_agra.pt", spec)
    restored, out = again.load(_agent())
    assert out.status == "loaded" and restored.updates == 7
    blocked = CheckpointKeeper(tmp_path / "not_a_folder" / "sub" / "policy_agra.pt", spec)
    (tmp_path / "not_a_folder").write_text("a file where a folder should be")
    assert not blocked.save(agent, logged.append) and not blocked.save(agent, logged.append)
    assert blocked.failures == 2 and blocked.error and len(logged) == 1  # logged once per period, all counted


def test_parameter_wins_over_the_trace_and_the_trace_sets_it_only_while_followed():
    t = TargetArbiter()
    assert t.outside_set_stops_following({"target_fps"})
    assert not t.outside_set_stops_following({"target_fps", "follow_trace"})
    assert not t.outside_set_stops_following({"learning"})
    assert t.trace_heard(20.0, following=True, current=30.0)
    assert t.trace_target == 20.0
    t.setting_from_trace = True
    assert not t.outside_set_stops_following({"target_fps"})  # the node's own write of a trace target
    assert t.applied() == "trace"
    t.setting_from_trace = False
    assert not t.trace_heard(15.0, following=False, current=20.0) and t.trace_target == 15.0
    assert not t.trace_heard(20.0, following=True, current=20.0)  # already in force
    assert t.applied() == "parameter"
