"""README's "Configuration reference" documents exactly the config keys of `Pulumi.yaml`.

Every key of `Pulumi.yaml` has a row (type and default as declared there) and every row
names a key that exists. When you add a key, `python tests/components/test_readme_config.py` prints
the table rows from `Pulumi.yaml` to paste into the README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Configuration reference"
ROW = re.compile(r"^\|\s*`(?P<key>[^`]+)`\s*\|(?P<rest>.*)\|\s*$")


def declared_config(text: str | None = None) -> dict[str, dict[str, Any]]:
    """Key -> spec (type, default, description) of the `config:` block of Pulumi.yaml."""
    project = yaml.safe_load(text if text is not None else (ROOT / "Pulumi.yaml").read_text())
    config = project.get("config") or {}
    return {str(k): (v if isinstance(v, dict) else {"default": v}) for k, v in config.items()}


def section(readme: str, heading: str = SECTION) -> str:
    """The text under `heading` up to the next level-2 heading ('' if absent)."""
    start = readme.find(f"\n{heading}\n")
    if start < 0:
        return ""
    body = readme[start + len(heading) + 2 :]
    end = re.search(r"^## ", body, re.MULTILINE)
    return body[: end.start()] if end else body


def cells(row_rest: str) -> list[str]:
    """Table cells after the key cell, `\\|` kept as a literal bar."""
    parts = re.split(r"(?<!\\)\|", row_rest)
    return [p.strip().replace("\\|", "|") for p in parts]


def documented(readme: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in section(readme).splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[match["key"]] = cells(match["rest"])
    return rows


def type_text(spec: dict[str, Any]) -> str:
    kind = str(spec.get("type", "string"))
    if kind == "array":
        return f"array of {(spec.get('items') or {}).get('type', 'string')}"
    return kind


def default_text(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return "(required)" if not spec.get("secret") else "(required, secret)"
    value = spec["default"]
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = value if value else '""'
    else:
        shown = json.dumps(value)
    return f"`{shown}`"


def render_rows(config: dict[str, dict[str, Any]]) -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, spec in config.items():
        meaning = " ".join(str(spec.get("description", "")).split()).replace("|", "\\|")
        lines.append(f"| `{key}` | {type_text(spec)} | {default_text(spec)} | {meaning} |")
    return "\n".join(lines)


def reference_problems(readme: str, config: dict[str, dict[str, Any]]) -> list[str]:
    """Every way the README's reference and Pulumi.yaml disagree, one line each."""
    if not section(readme):
        return [f"README has no '{SECTION}' section"]
    rows = documented(readme)
    problems = [
        f"{key}: in Pulumi.yaml, missing from the README" for key in config if key not in rows
    ]
    problems += [f"{key}: in the README, not in Pulumi.yaml" for key in rows if key not in config]
    for key in (k for k in config if k in rows):
        row, spec = rows[key], config[key]
        if len(row) < 3 or not row[2]:
            problems.append(f"{key}: row needs type, default and meaning")
            continue
        if row[0] != type_text(spec):
            problems.append(f"{key}: README type {row[0]!r}, Pulumi.yaml {type_text(spec)!r}")
        if row[1] != default_text(spec):
            problems.append(f"{key}: README default {row[1]!r}, Pulumi.yaml {default_text(spec)!r}")
    return problems


def test_readme_reference_matches_pulumi_yaml() -> None:
    readme = (ROOT / "README.md").read_text()
    config = declared_config()
    assert config, "Pulumi.yaml declares no config keys"
    problems = reference_problems(readme, config)
    assert not problems, (
        "\n".join(problems) + "\n(see `python tests/components/test_readme_config.py`)"
    )


def test_every_declared_key_has_type_default_and_description() -> None:
    for key, spec in declared_config().items():
        assert spec.get("type"), f"Pulumi.yaml: {key} has no type"
        assert str(spec.get("description", "")).strip(), f"Pulumi.yaml: {key} has no description"


SAMPLE_YAML = """
name: x
config:
  alpha: {type: integer, default: 3, description: first}
  beta: {type: array, items: {type: string}, default: [], description: second}
  gamma: {type: string, description: third}
"""


def sample_readme(rows: str) -> str:
    header = "| key | type | default | meaning |\n|---|---|---|---|"
    return f"# x\n\n{SECTION}\n\n{header}\n{rows}\n## Next\n"


def test_the_check_accepts_a_matching_reference() -> None:
    config = declared_config(SAMPLE_YAML)
    rows = render_rows(config).split("\n", 2)[2]
    assert reference_problems(sample_readme(rows), config) == []


def test_the_check_names_missing_stale_and_wrong_rows() -> None:
    config = declared_config(SAMPLE_YAML)
    readme = sample_readme(
        "| `alpha` | string | `3` | first |\n"
        "| `beta` | array of string | `[1]` | second |\n"
        "| `delta` | string | `x` | gone |\n"
    )
    assert reference_problems(readme, config) == [
        "gamma: in Pulumi.yaml, missing from the README",
        "delta: in the README, not in Pulumi.yaml",
        "alpha: README type 'string', Pulumi.yaml 'integer'",
        "beta: README default '`[1]`', Pulumi.yaml '`[]`'",
    ]
    assert reference_problems("# x\n", config) == [f"README has no '{SECTION}' section"]


def test_runbook_and_troubleshooting_sections_exist_and_link_the_outputs() -> None:
    readme = (ROOT / "README.md").read_text()
    runbook = section(readme, "## Deploying to Azure")
    trouble = section(readme, "## Troubleshooting")
    assert runbook and trouble
    steps = (
        "pulumi stack init",
        "make preflight STACK=<env>",
        "pulumi up --stack",
        "models upload",
        "pipeline run",
        "pulumi destroy",
    )
    place = 0
    for step in steps:  # each one after the one before
        place = runbook.find(step, place)
        assert place >= 0, f"the runbook lacks {step!r} after the steps before it"
    assert "(#stack-outputs)" in runbook, "the runbook must link the outputs reference"
    assert "post-deploy steps itself" in runbook, "the post-deploy steps are no manual step"
    for pain in ("job_error", "disable", "systemDatastoresAuthMode", "empty_window"):
        assert pain in trouble, f"troubleshooting lacks {pain!r}"


if __name__ == "__main__":
    print(render_rows(declared_config()))
