"""The command reference, written from the command line's own parsers so it cannot drift.

Every command and sub-action of ``batchscore`` (found by walking the parsers, as ``--help``
does), each with its usage and a table of every option and argument with its help text and
default. README's "Every option" block is this text; a test holds them equal, and

    python -m batchscore.command_reference            # prints it (``make help``)
    python -m batchscore.command_reference --write README.md   # rewrites README's block

The parsers of a command are built only with its module imported (``build_parser(only=...)``),
so a command whose third-party package is missing here is left out with a note rather than
failing the whole reference.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from batchscore.cli import COMMANDS, build_parser

BEGIN = (
    "<!-- BEGIN command reference (python -m batchscore.command_reference --write README.md) -->"
)
END = "<!-- END command reference -->"
#: the width the usage lines are wrapped at (fixed: the text must not depend on the terminal)
WIDTH = 100
#: shown once above the tables, not in every one
COMMON = {"-h", "--help", "--log-level"}


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-commands of ``parser`` (argparse keeps them only among its actions)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def walk() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``(("simulate",), parser)``, ..., ``(("models",), parser)``, ``(("models", "pack"),
    parser)``, ...: every command and sub-action, in ``--help`` order."""

    def below(parser, path):
        yield path, parser
        for name, sub in subparsers(parser).items():
            yield from below(sub, (*path, name))

    for command in COMMANDS:
        yield from below(subparsers(build_parser(only=command))[command], (command,))


def render() -> str:
    """The reference as Markdown (between :data:`BEGIN` and :data:`END` in README)."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)  # argparse wraps at the terminal's width
    try:
        sections = [_section(path, parser) for path, parser in walk()]
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    intro = (
        "Every command takes `-h`/`--help` and `--log-level "
        "{DEBUG,INFO,WARNING,ERROR,CRITICAL}` (before or after its name); the tables list "
        "everything else, as the parsers define it."
    )
    return "\n".join([BEGIN, "", intro, "", *sections, END])


def _section(path: tuple[str, ...], parser: argparse.ArgumentParser) -> str:
    title = f"#### `batchscore {' '.join(path)}`"
    usage = parser.format_usage().strip().removeprefix("usage: ")
    lines = [title, "", parser.description or "", "", "```", usage, "```", ""]
    rows = [_row(parser, action) for action in parser._actions if _documented(action)]
    if rows:
        lines += ["| option | meaning |", "|---|---|", *rows, ""]
    return "\n".join(line for line in lines if line is not None)


def _documented(action: argparse.Action) -> bool:
    if isinstance(action, argparse._SubParsersAction):
        return False
    if set(action.option_strings) & COMMON:
        return False
    return action.help is not argparse.SUPPRESS


def _row(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    if action.option_strings:
        name = ", ".join(
            formatter._format_action_invocation(action).split(", ")
        )  # "--input PATH", "-n N, --count N"
    else:
        name = formatter._metavar_formatter(action, action.dest)(1)[0]
    meaning = formatter._expand_help(action) if action.help else ""
    if action.required and action.option_strings:
        meaning = f"**required**; {meaning}" if meaning else "**required**"
    return f"| `{name}` | {_cell(meaning)} |"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def block_of(readme: str) -> str | None:
    """README's generated block (markers included), or None when it has none."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        return None
    return readme[start : end + len(END)]


def write_into(readme: Path) -> bool:
    """Replace README's block with :func:`render`; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    block = block_of(text)
    if block is None:
        raise SystemExit(f"{readme}: no {BEGIN!r} ... {END!r} block to fill")
    new = text.replace(block, render())
    readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchscore.command_reference")
    parser.add_argument("--write", type=Path, metavar="README", help="fill README's block")
    args = parser.parse_args(argv)
    if args.write:
        changed = write_into(args.write)
        print(f"{args.write}: {'updated' if changed else 'already up to date'}")
    else:
        print(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
