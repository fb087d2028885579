"""Every `agra-ros` verb's --help names its verb in the usage line, so a user can copy the line and run it."""

from __future__ import annotations

import contextlib
import io

import pytest

from agra_ros.cli import BENCHES, PASSTHROUGH, main


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            rc = main(argv)
    except SystemExit as exc:  # argparse's --help
        rc = exc.code
    assert rc == 0, argv
    return out.getvalue()


@pytest.mark.parametrize("verb", sorted(PASSTHROUGH))
def test_passthrough_usage_names_the_verb(verb):
    text = _help([verb, "--help"])
    assert text.startswith(f"usage: agra-ros {verb}"), text.splitlines()[0]


@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_bench_usage_names_the_verb(bench):
    text = _help(["bench", bench, "--help"])
    assert text.startswith(f"usage: agra-ros bench {bench}"), text.splitlines()[0]


@pytest.mark.parametrize("sub", ["live", "sim"])
def test_bench_paper_sub_usage_names_the_verb(sub):
    text = _help(["bench", "paper", sub, "--help"])
    assert text.startswith(f"usage: agra-ros bench paper {sub}"), text.splitlines()[0]
