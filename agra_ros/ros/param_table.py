"""Print the README's parameter tables from the nodes' own ParamSpecs, so the README cannot drift from the code.

.venv/bin/python -m agra_ros.ros.param_table --write README.md   # replaces the tables in place
"""

from __future__ import annotations

import importlib

NODES = ("camera_source", "device_monitor", "perception", "policy")


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
    path = Path(args.write)
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{tables()}\n{END}{tail}")


if __name__ == "__main__":
    main()
