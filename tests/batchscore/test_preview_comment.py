"""The preview comment always fits GitHub's 65,536-character limit (pulumi/actions#482), keeps
the summary whole, and links the full output."""

from __future__ import annotations

from pathlib import Path

from batchscore import preview_comment
from batchscore.preview_comment import GITHUB_COMMENT_LIMIT, main, render

RUN = "https://github.com/acme/batchscore/actions/runs/42"
STACK_URN = "urn:pulumi:dev::batchscore::pulumi:pulumi:Stack::batchscore-dev"


def step(symbol: str, typ: str, op: str, name: str, body_lines: int = 3) -> str:
    urn = f"urn:pulumi:dev::batchscore::batchscore:index:Storage${typ}::{name}"
    body = "".join(f'        property{i}: "value {i} of {name}"\n' for i in range(body_lines))
    return f"    {symbol} {typ}: ({op})\n        [urn={urn}]\n{body}"


def preview(steps: list[str], counts: str) -> str:
    return (
        "Previewing update (dev):\n"
        f"  pulumi:pulumi:Stack: (same)\n    [urn={STACK_URN}]\n"
        + "".join(steps)
        + f"Resources:\n{counts}\n\n"
    )


SMALL = preview(
    [
        step("~", "azure-native:storage:StorageAccount", "update", "storage-account"),
        step("+", "azure-native:storage:BlobContainer", "create", "storage-stack-outputs"),
        step("+-", "azure-native:sql:Database", "replace", "database-db"),
    ],
    "    + 1 to create\n    ~ 1 to update\n    +-1 to replace\n    3 changes. 70 unchanged",
)


def test_a_small_preview_is_shown_whole_after_its_summary() -> None:
    body = render("dev", SMALL, RUN)
    assert body.startswith("<!-- batchscore-preview:dev -->\n### `pulumi preview` of stack **dev**")
    assert "**Resources:** + 1 to create · ~ 1 to update · +-1 to replace · 70 unchanged" in body
    assert "- `~` update `storage-account` (azure-native:storage:StorageAccount)" in body
    assert "- `+-` replace `database-db` (azure-native:sql:Database)" in body
    assert SMALL in body and "cut here" not in body
    assert body.rstrip().endswith(RUN)


def test_a_huge_preview_is_cut_to_fit_and_keeps_summary_and_link() -> None:
    steps = [
        step("~", "azure-native:network:PrivateEndpoint", "update", f"endpoint-{i}", 400)
        for i in range(300)
    ]
    huge = preview(steps, "    ~ 300 to update\n    300 changes. 12 unchanged")
    assert len(huge) > 10 * GITHUB_COMMENT_LIMIT  # what pulumi/actions#482 could not post
    body = render("prod", huge, RUN)
    assert len(body) <= preview_comment.DEFAULT_BUDGET < GITHUB_COMMENT_LIMIT
    assert "**Resources:** ~ 300 to update · 12 unchanged" in body
    assert "- ... and 240 more" in body
    assert "cut here to fit a GitHub comment" in body
    assert body.rstrip().endswith(RUN) and f"({len(huge):,} characters)" in body


def test_a_tiny_budget_still_keeps_the_counts_and_the_link() -> None:
    steps = [step("+", "azure-native:web:Site", "create", "x" * 200 + str(i)) for i in range(60)]
    body = render("dev", preview(steps, "    + 60 to create"), RUN, budget=2_000)
    assert "**Resources:** + 60 to create" in body and RUN in body
    assert len(body) <= 2_000


def test_colour_codes_and_code_fences_cannot_break_the_comment() -> None:
    coloured = SMALL.replace("(update)", "\x1b[33m(update)\x1b[0m") + "```\nescape\n```\n"
    body = render("dev", coloured, RUN)
    assert "\x1b" not in body
    assert body.count("```") == 2  # only the comment's own fence


def test_output_without_a_summary_says_so() -> None:
    body = render("dev", "error: the program failed\n", RUN)
    assert "no summary found" in body and "error: the program failed" in body


def test_the_command_writes_the_comment(tmp_path: Path) -> None:
    source = tmp_path / "preview-dev.txt"
    source.write_text(SMALL)
    out = tmp_path / "comment.md"
    argv = ["--stack", "dev", "--preview", str(source), "--full-output-url", RUN]
    assert main([*argv, "--out", str(out)]) == 0
    assert out.read_text() == render("dev", SMALL, RUN)


def test_the_command_refuses_a_missing_preview(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.txt"
    argv = ["--stack", "dev", "--preview", str(missing), "--full-output-url", RUN]
    assert main([*argv, "--out", str(tmp_path / "c.md")]) == 2
    assert capsys.readouterr().err == f"error: --preview {missing}: no such file\n"
