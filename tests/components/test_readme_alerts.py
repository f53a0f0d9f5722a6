"""README's "Monitoring and alerts" has a runbook entry for exactly the alert rules the stack
declares, each saying what the alert means and what to do first, at the anchor the rule's
`runbook` property points to."""

from __future__ import annotations

import re
from pathlib import Path

from components.config.alerts import AlertSettings
from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView
from components.shared.alert_rules import alert_rules
from tests.components.test_readme_config import section

ROOT = Path(__file__).resolve().parents[2]
HEADING = re.compile(r"^#### Alert (?P<key>[a-z0-9-]+)$", re.MULTILINE)


def runbook_entries(readme: str) -> dict[str, str]:
    """Alert key -> the text of its `#### Alert <key>` entry."""
    text = section(readme, "## Monitoring and alerts")
    marks = list(HEADING.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return {m["key"]: text[m.end() : end] for m, end in zip(marks, ends, strict=True)}


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_entry_and_no_entry_is_stale() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    keys = alert_rules(AlertSettings()).keys()
    entries = runbook_entries(readme)
    assert sorted(entries) == sorted(keys), "README runbook entries differ from the rules"
    table = section(readme, "## Monitoring and alerts")
    for key in keys:
        assert f"| `{key}` |" in table, f"{key} is missing from the alerts table"
        assert "**Means:**" in entries[key] and "**First:**" in entries[key], key


def test_the_log_rules_point_at_their_entry() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = {github_anchor(f"Alert {key}") for key in runbook_entries(readme)}
    rules = PlanView(plan_in_subprocess("dev")).of_type("azure-native:monitor:ScheduledQueryRule")
    assert rules
    for rule in rules:
        target = rule.get("actions.customProperties.runbook")
        assert target.startswith("README.md#") and target.split("#")[1] in anchors, rule


def test_the_check_notices_a_missing_entry() -> None:
    readme = "# x\n\n## Monitoring and alerts\n\n#### Alert stream-no-input\n\n**Means:** x\n"
    assert sorted(runbook_entries(readme)) == ["stream-no-input"]
