"""Print the README's interface table from the .msg files in msg/, so the README cannot drift from the interfaces.

.venv/bin/python -m agra_ros.ros.interface_table --write README.md   # replaces the table in place

Every field in msg/ carries a comment, and every field of a plain type its unit in brackets (``# ... [ms]``): the
table's unit column comes from there. test/test_interfaces.py fails when a field lacks one or the README is stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MSG_DIR = Path(__file__).resolve().parents[2] / "msg"
"""msg/ of the source checkout (the interfaces are installed as share/agra_ros/msg, not inside the package)."""

BEGIN, END = "<!-- interfaces:begin -->", "<!-- interfaces:end -->"

_LINE = re.compile(r"^(?P<type>[\w/\[\]<=]+)\s+(?P<name>\w+)(?P<value>\s*=\s*[^#]+?)?\s*(#\s*(?P<comment>.*))?$")
_UNIT = re.compile(r"\s*\[(?P<unit>[^\]]+)\]")


@dataclass(frozen=True)
class Field:
    """One field or constant of a .msg file."""

    message: str
    type: str
    name: str
    constant: str | None
    """The value of a constant; None for a field."""
    unit: str
    comment: str
    """The comment without the unit."""

    @property
    def needs_unit(self) -> bool:
        """Plain-typed fields state a unit; constants, headers and nested messages describe themselves."""
        return self.constant is None and "/" not in self.type and self.type[:1].islower()


def parse_msg(path: Path) -> list[Field]:
    """The fields and constants of one .msg file, in order; full-line comments and blank lines are skipped."""
    fields = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(f"{path.name}: cannot read {line!r}")
        comment = m["comment"] or ""
        u = _UNIT.search(comment)
        unit = u["unit"] if u else ""
        if u:
            comment = (comment[: u.start()] + comment[u.end() :]).strip()
        value = m["value"].strip().lstrip("=").strip() if m["value"] else None
        fields.append(Field(path.stem, m["type"], m["name"], value, unit, comment))
    return fields


def interfaces(msg_dir: Path = MSG_DIR) -> dict[str, list[Field]]:
    """Every .msg in ``msg_dir`` by name, sorted."""
    return {p.stem: parse_msg(p) for p in sorted(msg_dir.glob("*.msg"))}


def table(msg_dir: Path = MSG_DIR) -> str:
    rows = ["| message | field | type | unit | meaning |", "|---|---|---|---|---|"]
    for name, fields in interfaces(msg_dir).items():
        for f in fields:
            field = f"`{f.name}={f.constant}`" if f.constant is not None else f"`{f.name}`"
            kind = f"{f.type} constant" if f.constant is not None else f.type
            meaning = f.comment.replace("|", "\\|")
            rows.append(f"| `agra_ros/msg/{name}` | {field} | {kind} | {f.unit} | {meaning} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from agra_ros.ros.param_table import replace_between

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", metavar="README", help="replace the text between the interfaces markers in this file")
    args = ap.parse_args(argv)
    if args.write:
        replace_between(Path(args.write), BEGIN, END, table())
    else:
        print(table())


if __name__ == "__main__":
    main()
