"""A pull request comment (or step summary) from a `pulumi preview --diff` text output that
always fits GitHub's limit: the change counts, the changed resources, as much of the diff as
fits, and a link to the full output.

GitHub refuses an issue comment over 65,536 characters ("Body is too long", pulumi/actions#482);
a large change is exactly when a reviewer needs the summary, so the summary always comes first
and the diff is cut, never the summary.

    python -m batchscore.preview_comment --stack dev --preview build/preview-dev.txt \\
        --full-output-url "$RUN_URL" --out build/preview-comment-dev.md

Exit codes: 0 written, 2 bad usage (a missing preview file).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

GITHUB_COMMENT_LIMIT = 65_536
# Room left under the limit for what GitHub adds and for multi-byte surprises.
DEFAULT_BUDGET = 60_000
MAX_LISTED = 60
MARKER = "<!-- batchscore-preview:{stack} -->"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_COUNT = re.compile(r"^\s*(?:[+~\-]{1,2}\s*)?(\d+) (to \w+|unchanged)\s*$")
_STEP = re.compile(r"^\s*(\+-|-\+|\+\+|--|[+~\-])\s+([\w.-]+:[\w/.-]*:[\w.-]+):\s+\(([\w-]+)\)")
_URN = re.compile(r"\[urn=urn:pulumi:[^\]]*::([^\]:]+)\]")


@dataclass(frozen=True)
class Change:
    symbol: str
    type: str
    op: str
    name: str


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def change_counts(preview: str) -> list[str]:
    """The `Resources:` block's lines ('+ 2 to create', '40 unchanged'), as printed."""
    lines = preview.splitlines()
    try:
        start = max(i for i, line in enumerate(lines) if line.strip() == "Resources:")
    except ValueError:
        return []
    counts = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        for part in line.split(". "):
            if _COUNT.match(part.strip()):
                counts.append(part.strip().rstrip("."))
    return counts


def changed_resources(preview: str) -> list[Change]:
    """Every resource step other than `same`, with its logical name from the next urn line."""
    changes: list[Change] = []
    lines = preview.splitlines()
    for i, line in enumerate(lines):
        match = _STEP.match(line)
        if not match:
            continue
        name = "?"
        for following in lines[i + 1 : i + 4]:
            urn = _URN.search(following)
            if urn:
                name = urn.group(1)
                break
        changes.append(Change(match.group(1), match.group(2), match.group(3), name))
    return changes


def render(stack: str, preview: str, full_output_url: str, budget: int = DEFAULT_BUDGET) -> str:
    """The comment: marker, counts, changed resources, the diff cut to fit ``budget``."""
    preview = strip_ansi(preview)
    counts = change_counts(preview)
    changes = changed_resources(preview)
    head = [
        MARKER.format(stack=stack),
        f"### `pulumi preview` of stack **{stack}**",
        "",
        "**Resources:** " + (" · ".join(counts) if counts else "no summary found (see below)"),
        "",
    ]
    if changes:
        head.append(f"Changed resources ({len(changes)}):")
        head.append("")
        head += [f"- `{c.symbol}` {c.op} `{c.name}` ({c.type})" for c in changes[:MAX_LISTED]]
        if len(changes) > MAX_LISTED:
            head.append(f"- ... and {len(changes) - MAX_LISTED} more")
        head.append("")
    link = f"The full output ({len(preview):,} characters): {full_output_url}"
    opening = "<details><summary>Diff</summary>\n\n```diff\n"
    closing = "\n```\n</details>\n\n" + link + "\n"
    fixed = "\n".join(head) + "\n" + opening + closing
    room = budget - len(fixed)
    if room <= 0:  # not even the list fits: drop it, keep counts and link
        return "\n".join(head[:5]) + "\n" + link + "\n"
    diff = preview if len(preview) <= room else _cut(preview, room)
    return "\n".join(head) + "\n" + opening + diff.replace("```", "ˋˋˋ") + closing


def _cut(text: str, room: int) -> str:
    note = "\n... cut here to fit a GitHub comment: follow the link below for the rest ..."
    kept = text[: max(0, room - len(note))]
    return kept[: kept.rfind("\n") + 1 or len(kept)] + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m batchscore.preview_comment",
        description="Summarise a `pulumi preview --diff` output into a comment that fits "
        "GitHub's 65,536-character limit, linking the full output.",
    )
    parser.add_argument("--stack", required=True, help="stack name shown in the comment")
    parser.add_argument("--preview", required=True, type=Path, help="the preview's text output")
    parser.add_argument(
        "--full-output-url", required=True, help="where the full output is (the run's page)"
    )
    parser.add_argument("--out", required=True, type=Path, help="the comment, as Markdown")
    parser.add_argument(
        "--budget", type=int, default=DEFAULT_BUDGET, help="maximum characters of the comment"
    )
    args = parser.parse_args(argv)
    if not args.preview.is_file():
        print(f"error: --preview {args.preview}: no such file", file=sys.stderr)
        return 2
    if not 1_000 <= args.budget <= GITHUB_COMMENT_LIMIT:
        print(f"error: --budget {args.budget}: between 1000 and 65536", file=sys.stderr)
        return 2
    text = args.preview.read_text(encoding="utf-8", errors="replace")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(args.stack, text, args.full_output_url, args.budget), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
