"""Print the README's parameter tables from the nodes' own ParamSpecs, so the README cannot drift from the code.

    .venv/bin/python scripts/param_table.py > /tmp/params.md   # then paste into README.md "Parameters"
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


def main() -> None:
    print("\n\n".join(table(n) for n in NODES))


if __name__ == "__main__":
    main()
