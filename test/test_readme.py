"""The README stays true: its parameter tables match the nodes' descriptors, its commands exist."""

from __future__ import annotations

from pathlib import Path

from agra_ros.ros.param_table import BEGIN, END, tables

ROOT = Path(__file__).resolve().parents[1]


def test_parameter_tables_match_the_code():
    text = (ROOT / "README.md").read_text()
    inside = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert inside == tables().strip(), (
        "README parameter tables are stale: python -m agra_ros.ros.param_table --write README.md"
    )


def test_the_two_commands_are_the_ones_ci_runs():
    text = (ROOT / "README.md").read_text()
    assert "./agra.sh demo" in text and "./agra.sh test" in text
    assert "./agra.sh test" in (ROOT / ".ci" / "run").read_text()
