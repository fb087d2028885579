"""The README and docs/ stay true: what they show exists in the code.

- the parameter tables (docs/robot.md) are the nodes' own descriptors, and the launch-argument table lists exactly
  the launch file's arguments;
- every `agra-ros <verb>` / `./agra.sh <verb>` / `python -m agra_ros.<module>` command shown, in a code block or an
  inline code span, names a verb the CLI has, and every `--flag` it shows is one that verb's argparse parser accepts
  (the parser is built by the verb's own ``main`` and caught before it parses, so nothing runs);
- every `ros2 launch agra_ros <file> key:=value` names a launch file and arguments that exist, every `ros2 run
  agra_ros <exe> --ros-args -p name:=value` an executable and its node's parameters, every `ros2 param
  set|get|describe /<node> <name> [value]` and every soak `--set <node>.<name>=value` a declared parameter (and a
  value its descriptor accepts, on a parameter that may be set at run time);
- every relative link (and its #anchor) and every repository path shown in code points at something that exists.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from agra_ros import cli
from agra_ros.ros import param_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ROBOT = ROOT / "docs" / "robot.md"
LAUNCH_FILE = ROOT / "launch" / "agra.launch.py"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

# ---------------------------------------------------------------------------------------------------- markdown


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


SHELL = ("bash", "sh", "shell", "console")
"""Fence languages whose lines are commands; other code blocks (trees, diagrams) are not."""


def _split_fences(text: str, shell_only: bool = False) -> tuple[list[str], str]:
    """(fenced code blocks, only ```bash-like ones if shell_only; the text outside them)."""
    blocks, prose, cur, inside, lang = [], [], [], False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if inside and (not shell_only or lang in SHELL):
                blocks.append("\n".join(cur))
            cur, lang = [], line.strip().strip("`").strip().lower()
            inside = not inside
            continue
        (cur if inside else prose).append(line)
    return blocks, "\n".join(prose)


def _inline_spans(prose: str) -> list[str]:
    """Inline code spans of the prose, a span broken over lines joined with a space."""
    return [" ".join(m.group(1).split()) for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", prose)]


def _tokens(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        return list(lex)
    except ValueError:  # an unbalanced quote in prose-like code: words are enough here
        return line.split()


def _segments(tokens: list[str]) -> Iterator[list[str]]:
    """Commands of a shell line: split at ; && || |, leading VAR=value assignments dropped."""
    cur: list[str] = []
    for tok in [*tokens, ";"]:
        if tok and set(tok) <= set(";&|"):
            while cur and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", cur[0]):
                cur.pop(0)
            if cur:
                yield cur
            cur = []
        else:
            cur.append(tok)


def commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every shell command shown in the README and docs/: code-block lines and inline spans."""
    out = []
    for page in PAGES:
        blocks, prose = _split_fences(page.read_text(), shell_only=True)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                out += [(f"{_rel(page)}: {line.strip()}", seg) for seg in _segments(_tokens(line))]
        for span in _inline_spans(prose):
            out += [(f"{_rel(page)}: `{span}`", seg) for seg in _segments(_tokens(span))]
    return out


# ---------------------------------------------------------------------------------------------------- CLI parsers


class _Parser(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _raise_parser(self, *args, **kwargs):
    raise _Parser(self)


def _parser_of_main(module: str, argv: list[str], monkeypatch) -> argparse.ArgumentParser:
    """The parser the module's ``main(argv)`` builds, caught at its first parse (nothing runs)."""
    mod = importlib.import_module(module)
    with monkeypatch.context() as m:
        for name in ("parse_args", "parse_known_args", "parse_intermixed_args"):
            m.setattr(argparse.ArgumentParser, name, _raise_parser)
        try:
            mod.main(list(argv))
        except _Parser as caught:
            return caught.parser
    raise AssertionError(f"{module}.main({argv}) returned without parsing its arguments")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }


def _descend(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """Follow sub-commands named in argv (``bench paper sim`` style) down to the parser that reads the flags."""
    for tok in argv:
        sub = _subparsers(parser)
        if tok in sub:
            parser = sub[tok]
    return parser


def _flags(argv: list[str]) -> list[str]:
    return [t.split("=", 1)[0] for t in argv if re.match(r"--?[A-Za-z]", t)]


def _check_flags(where: str, parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Every flag shown is one of the parser's; a first positional with choices (``bench policy compare``) is one."""
    known = set(parser._option_string_actions)
    problems = [f"{where}: {parser.prog} has no option {f}" for f in _flags(argv) if f not in known]
    positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    first = argv[0] if argv and not argv[0].startswith(("-", "<")) else None
    if first and positionals and positionals[0].choices and first not in positionals[0].choices:
        problems.append(f"{where}: {parser.prog} takes {sorted(positionals[0].choices)}, not {first!r}")
    return problems


def _check_agra_ros(where: str, argv: list[str], monkeypatch) -> list[str]:
    root = cli._parser()
    verbs = _subparsers(root)
    positional = [t for t in argv if not t.startswith("-")]
    if not positional:
        return _check_flags(where, root, argv)
    verb = positional[0]
    if verb.startswith("<"):  # a placeholder: ./agra.sh <command>
        return []
    if verb not in verbs:
        return [f"{where}: agra-ros has no verb {verb!r} (agra_ros/cli.py: {', '.join(verbs)})"]
    rest = argv[argv.index(verb) + 1 :]
    if verb == "bench":
        names = [t for t in rest if not t.startswith("-")]
        if not names or names[0] not in cli.BENCHES:
            return [f"{where}: agra-ros bench has no benchmark {names[:1]} (known: {', '.join(cli.BENCHES)})"]
        module, module_argv = cli.BENCHES[names[0]][0], rest[rest.index(names[0]) + 1 :]
    elif verb in cli.PASSTHROUGH:
        module, module_argv = cli.PASSTHROUGH[verb][0], rest
    else:
        problems = _check_flags(where, verbs[verb], rest)
        if verb == "launch":  # agra-ros launch takes ros2 launch's name:=value arguments
            declared = _launch_arguments(LAUNCH_FILE)
            keys = [t.split(":=", 1)[0] for t in rest if ":=" in t]
            problems += [f"{where}: the launch arguments have no {k!r}" for k in keys if k not in declared]
        return problems
    parser = _descend(_parser_of_main(module, module_argv, monkeypatch), module_argv)
    return _check_flags(where, parser, module_argv)


def _check_python_module(where: str, module: str, argv: list[str], monkeypatch) -> list[str]:
    if importlib.util.find_spec(module) is None:
        return [f"{where}: no module {module}"]
    parser = _descend(_parser_of_main(module, argv, monkeypatch), argv)
    return _check_flags(where, parser, argv)


def test_every_cli_command_and_flag_shown_exists(monkeypatch):
    problems, checked = [], 0
    for where, argv in commands():
        head = argv[0]
        if head in ("agra-ros", ".venv/bin/agra-ros"):
            problems += _check_agra_ros(where, argv[1:], monkeypatch)
        elif head == "./agra.sh":
            if len(argv) > 1 and argv[1] == "test":  # the rest are pytest's options
                continue
            problems += _check_agra_ros(where, argv[1:] or ["demo"], monkeypatch)
        elif (
            head.endswith(("python", "python3"))
            and argv[1:2] == ["-m"]
            and argv[2:3]
            and argv[2].startswith("agra_ros.")
        ):
            problems += _check_python_module(where, argv[2], argv[3:], monkeypatch)
        else:
            continue
        checked += 1
    assert checked >= 20, f"only {checked} CLI commands found: is the extraction broken?"
    assert not problems, "commands shown in the docs that the CLI does not accept:\n" + "\n".join(problems)


def test_the_two_commands_are_the_ones_ci_runs():
    text = README.read_text()
    assert "./agra.sh demo" in text and "./agra.sh test" in text
    assert "./agra.sh test" in (ROOT / ".ci" / "run").read_text()


# ---------------------------------------------------------------------------------------------------- ROS side


def _launch_arguments(path: Path) -> set[str]:
    """Arguments a launch file declares: its ARGUMENTS table (its own, or one it imports from agra_ros) and any
    DeclareLaunchArgument('name', ...)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ARGUMENTS" for t in node.targets):
            names |= {row[0] for row in ast.literal_eval(node.value)}
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("agra_ros"):
            if any(a.name == "ARGUMENTS" for a in node.names):
                names |= {row[0] for row in importlib.import_module(node.module).ARGUMENTS}
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "DeclareLaunchArgument"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names


def _executables() -> dict[str, str]:
    """console script -> node name, from setup.py."""
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"(\w+) = agra_ros\.nodes\.(\w+):main"', text))


_SPECS: dict[str, dict] = {}


def _specs(node: str) -> dict:
    if node not in _SPECS:
        _SPECS[node] = {s.name: s for s in param_table.specs_of(node)}
    return _SPECS[node]


def _check_value(where: str, node: str, spec, value: str) -> list[str]:
    if spec.choices:
        return [] if value in spec.choices else [f"{where}: {node}.{spec.name}={value} is not one of {spec.choices}"]
    if isinstance(spec.default, bool):
        ok = value.lower() in ("true", "false")
        return [] if ok else [f"{where}: {node}.{spec.name}={value} is not a bool"]
    if isinstance(spec.default, (int, float)) and spec.range is not None:
        try:
            v = float(value)
        except ValueError:
            return [f"{where}: {node}.{spec.name}={value} is not a number"]
        lo, hi, _ = spec.range
        return [] if lo <= v <= hi else [f"{where}: {node}.{spec.name}={value} is outside [{lo}, {hi}]"]
    return []


def _check_param(where: str, node: str, name: str, value: str | None = None, runtime: bool = False) -> list[str]:
    if "<" in node or "<" in name:  # a placeholder: ros2 param describe /<node> <name>
        return []
    if node not in param_table.NODES:
        return [f"{where}: no node {node!r} with parameters (agra_ros.ros.param_table.NODES: {param_table.NODES})"]
    spec = _specs(node).get(name)
    if spec is None:
        return [f"{where}: node {node} declares no parameter {name!r} (it has {', '.join(_specs(node))})"]
    problems = _check_value(where, node, spec, value) if value is not None else []
    if runtime and spec.read_only:
        problems.append(f"{where}: {node}.{name} is read-only: ros2 param set cannot change it")
    return problems


def test_every_ros2_launch_run_and_param_command_shown_exists():
    problems, checked = [], 0
    executables = _executables()
    for where, argv in commands():
        if argv[0] == "ros2" and argv[1:2] == ["launch"] and argv[2:3] == ["agra_ros"]:
            if len(argv) < 4 or argv[3].startswith(("<", "...")):  # a placeholder: ros2 launch agra_ros ...
                continue
            checked += 1
            launch = ROOT / "launch" / argv[3]
            if not launch.is_file():
                problems.append(f"{where}: no launch file launch/{argv[3]}")
                continue
            declared = _launch_arguments(launch)
            for tok in argv[4:]:
                key = tok.split(":=", 1)[0]
                if ":=" in tok and key not in declared:
                    problems.append(
                        f"{where}: {argv[3]} has no argument {key!r} (it has {', '.join(sorted(declared))})"
                    )
        elif argv[0] == "ros2" and argv[1:2] == ["run"] and argv[2:3] == ["agra_ros"]:
            checked += 1
            node = executables.get(argv[3])
            if node is None:
                problems.append(f"{where}: agra_ros has no executable {argv[3]!r} (setup.py: {', '.join(executables)})")
                continue
            for flag, value in zip(argv, argv[1:]):
                if flag == "-p" and ":=" in value:
                    name, val = value.split(":=", 1)
                    problems += _check_param(where, node, name, val)
        elif argv[0] == "ros2" and argv[1:2] == ["param"] and len(argv) >= 5 and argv[2] in ("set", "get", "describe"):
            checked += 1
            node = argv[3].rstrip("/").rsplit("/", 1)[-1]
            value = argv[5] if argv[2] == "set" and len(argv) > 5 else None
            problems += _check_param(where, node, argv[4], value, runtime=argv[2] == "set")
        elif argv[0] in ("agra-ros", "./agra.sh") and "--set" in argv:
            for flag, value in zip(argv, argv[1:]):
                if flag == "--set":
                    checked += 1
                    key, _, val = value.partition("=")
                    node, _, name = key.partition(".")
                    problems += _check_param(where, node, name, val)
    assert checked >= 8, f"only {checked} ros2 launch/run/param commands found: is the extraction broken?"
    assert not problems, "ROS commands shown in the docs that do not match the code:\n" + "\n".join(problems)


def test_parameter_tables_match_the_code():
    text = ROBOT.read_text()
    assert param_table.BEGIN in text and param_table.END in text, "docs/robot.md lost its parameter table markers"
    inside = text.split(param_table.BEGIN, 1)[1].split(param_table.END, 1)[0].strip()
    assert inside == param_table.tables().strip(), (
        "docs/robot.md parameter tables are stale: python -m agra_ros.ros.param_table --write docs/robot.md"
    )


def test_launch_argument_table_lists_exactly_the_launch_files_arguments():
    text = ROBOT.read_text()
    table = text.split("| launch argument |", 1)[1].split("\n\n", 1)[0]
    shown = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.M))
    declared = _launch_arguments(LAUNCH_FILE)
    assert shown == declared, (
        f"docs/robot.md's launch arguments: missing {declared - shown}, unknown {shown - declared}"
    )


# ---------------------------------------------------------------------------------------------------- links, paths


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (not - or _), spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    _, prose = _split_fences(page.read_text())
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose, flags=re.M):
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_every_relative_link_points_to_an_existing_file_and_anchor():
    problems, checked = [], 0
    for page in PAGES:
        _, prose = _split_fences(page.read_text())
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                problems.append(f"{_rel(page)}: link {target} -> {path} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                problems.append(f"{_rel(page)}: link {target}: {dest.name} has no heading #{anchor}")
    assert checked >= 20, f"only {checked} relative links found: is the extraction broken?"
    assert not problems, "\n".join(problems)


_TOP = {"agra_ros", "config", "launch", "scripts", "test", "docs", "msg", "rosdep", "interfaces"}
_PACKAGES = {p.name for p in (ROOT / "agra_ros").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}


def _repository_paths(text: str) -> set[str]:
    """Paths of the repository shown in code: `config/agra.yaml`, `perception/runtime.py` (in agra_ros/), ..."""
    blocks, prose = _split_fences(text)
    files_in_blocks = {w for b in blocks for w in re.findall(r"[\w./-]+", b) if re.search(r"\.[A-Za-z]{1,4}$", w)}
    words = set(_inline_spans(prose)) | files_in_blocks
    out = set()
    for w in words:
        w = w.rstrip(".,;:)")
        if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*/?", w) or "/" not in w.rstrip("/"):
            continue
        top = w.split("/", 1)[0]
        generated = w.startswith(("agra_ros/msg", "agra_ros.egg-info"))  # made by the interface build
        if (top in _TOP or top in _PACKAGES) and not generated:
            out.add(w)
    return out


def test_every_repository_path_shown_exists():
    problems = []
    for page in PAGES:
        for p in sorted(_repository_paths(page.read_text())):
            if not ((ROOT / p).exists() or (ROOT / "agra_ros" / p).exists()):
                problems.append(f"{_rel(page)}: {p} does not exist (moved? agra_ros/ was re-laid out)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "heading, slug",
    [
        ("The real detector (`ssd`, the default)", "the-real-detector-ssd-the-default"),
        ("The AGRA paper's table", "the-agra-papers-table"),
        ("The pip route: `./agra.sh`", "the-pip-route-agrash"),
        ("perception_node overhead", "perception_node-overhead"),
    ],
)
def test_anchor_slugs_follow_github(heading, slug):
    assert _slug(heading) == slug
