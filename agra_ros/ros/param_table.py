"""Print the README's parameter tables from the nodes' own ParamSpecs, so the README cannot drift from the code.

.venv/bin/python -m agra_ros.ros.param_table --write docs/robot.md   # replaces the tables in place
"""

from __future__ import annotations

import importlib

NODES = ("camera_source", "device_monitor", "perception", "perception_server", "policy", "recorder")


def specs_of(node: str):
    return importlib.import_module(f"agra_ros.nodes.{node}").SPECS


def _allowed(spec) -> str:
    if spec.choices:
        return " \\| ".join(spec.choices)
    if spec.range is not None:
        lo, hi, _ = spec.range
        if isinstance(spec.default, int):
            return f"[{int(lo)}, {int(hi)}]"
        return f"[{lo:g}, {hi:g}]"
    return ""


def table(node: str) -> str:
    rows = [f"#### `{node}`", "", "| parameter | default | allowed | runtime | meaning |", "|---|---|---|---|---|"]
    for s in specs_of(node):
        default = f"`{s.default!r}`" if isinstance(s.default, str) else f"`{s.default}`"
        desc = s.description.replace("|", "\\|")
        rows.append(f"| `{s.name}` | {default} | {_allowed(s)} | {'no' if s.read_only else 'yes'} | {desc} |")
    return "\n".join(rows)


def tables() -> str:
    return "\n\n".join(table(n) for n in NODES)


BEGIN, END = "<!-- params:begin -->", "<!-- params:end -->"


def main(argv: list[str] | None = None) -> None:
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", metavar="README", help="replace the text between the params markers in this file")
    args = ap.parse_args(argv)
    if not args.write:
        print(tables())
        return
    replace_between(Path(args.write), BEGIN, END, tables())


def replace_between(path, begin: str, end: str, body: str) -> None:
    """Replace the text between the ``begin`` and ``end`` markers of the file at ``path`` with ``body``."""
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{body}\n{end}{tail}")


if __name__ == "__main__":
    main()
