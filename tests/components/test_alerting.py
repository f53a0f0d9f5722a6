"""Alerting under mocks, dev and prod: the action group with the configured receivers, every
alert rule on the right scope calling that group, severities and windows from config, rules
that resolve themselves; plus the rules' own logic (cron gaps, windows, ARM operators)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from components.alerting import Alerting, AlertingArgs
from components.config import StackConfig
from components.config.alerts import AlertSettings, longest_cron_gap_minutes
from components.config.pipeline import PipelineSettings
from components.config.stack import LOG_ALERT_WINDOWS
from components.offline import mocks
from components.offline.plan import load_project, plan_in_subprocess, stack_config
from components.offline.plan_view import PlanView
from components.shared.alert_rules import alert_rules, iso_minutes
from components.shared.monitoring_queries import QueryScope
from components.shared.placement import Placement

ROOT = Path(__file__).resolve().parents[2]
ACTION_GROUP = "azure-native:monitor:ActionGroup"
LOG_RULE = "azure-native:monitor:ScheduledQueryRule"
METRIC_RULE = "azure-native:monitor:MetricAlert"
ACTIVITY_RULE = "azure-native:monitor:ActivityLogAlert"
LOGS = "azure-native:operationalinsights:Workspace"
JOB = "azure-native:streamanalytics:StreamingJob"
ARM_OPERATORS = {"GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual", "Equals"}


def engine_values(stack: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    namespace = load_project()["name"] + ":"
    values = stack_config(stack, overrides)
    return {k[len(namespace) :]: v for k, v in values.items() if k.startswith(namespace)}


def settings_of(stack: str, overrides: dict[str, str] | None = None) -> AlertSettings:
    values = engine_values(stack, overrides)
    pipeline = PipelineSettings.from_mapping(values)
    return AlertSettings.from_config(StackConfig.from_mapping(values), pipeline)


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request) -> PlanView:
    return PlanView(plan_in_subprocess(request.param))


# --- the program under mocks, both stacks -----------------------------------------------------
def test_one_action_group_with_the_configured_receivers(plan: PlanView) -> None:
    group = plan.one(ACTION_GROUP)
    emails = StackConfig.from_mapping(engine_values(plan.stack)).alert_emails
    receivers = group.get("emailReceivers")
    assert [r["emailAddress"] for r in receivers] == list(emails)
    assert all(r["useCommonAlertSchema"] for r in receivers)
    assert group.get("enabled") is True and len(group.get("groupShortName")) <= 12
    assert group.get("webhookReceivers") is None, "neither stack file sets a webhook"
    if plan.stack == "prod":
        assert receivers, "prod alerts must reach at least one person"


def test_every_rule_watches_its_scope_and_calls_the_action_group(plan: PlanView) -> None:
    rules = alert_rules(settings_of(plan.stack))
    group, logs, job = plan.one(ACTION_GROUP).id, plan.one(LOGS).id, plan.one(JOB).id
    declared = {r.name for r in plan.children("alerting")} - {"alerting-action-group"}
    assert declared == {f"alerting-{key}" for key in rules.keys()}
    for rule in rules.log:
        resource = plan.one(LOG_RULE, f"alerting-{rule.key}")
        assert resource.get("scopes") == [logs], f"{resource}: log rules read the workspace"
        assert resource.get("actions.actionGroups") == [group], resource
    for rule in rules.metric:
        resource = plan.one(METRIC_RULE, f"alerting-{rule.key}")
        assert resource.get("scopes") == [job], resource
        assert resource.get("actions") == [{"actionGroupId": group}], resource
    for rule in rules.activity:
        resource = plan.one(ACTIVITY_RULE, f"alerting-{rule.key}")
        assert resource.get("scopes") == [job], resource
        assert resource.get("actions.actionGroups") == [{"actionGroupId": group}], resource


def test_severities_windows_and_thresholds_come_from_config(plan: PlanView) -> None:
    settings = settings_of(plan.stack)
    for rule in alert_rules(settings).log:
        resource = plan.one(LOG_RULE, f"alerting-{rule.key}")
        condition = resource.get("criteria.allOf.0")
        assert resource.get("severity") == rule.severity, resource
        assert resource.get("windowSize") == iso_minutes(rule.window_minutes), resource
        assert resource.get("evaluationFrequency") == iso_minutes(rule.frequency_minutes)
        assert condition["operator"] in ARM_OPERATORS, f"{resource}: {condition['operator']}"
        assert condition["timeAggregation"] == rule.time_aggregation
        assert condition.get("metricMeasureColumn") == rule.measure
        assert condition["query"] == rule.query.render(_scope_in(plan), **rule.values), (
            f"{resource}: the plan holds the query a reviewer sees"
        )
    failed_pairs = plan.one(LOG_RULE, "alerting-scoring-failed-pairs").get("criteria.allOf.0")
    assert f"Pairs * {settings.failed_pairs_percent}\n" in failed_pairs["query"]
    drifted = plan.one(LOG_RULE, "alerting-scoring-drifted-pairs")
    assert (
        f"DriftPairs * {settings.drifted_pairs_percent}\n"
        in drifted.get("criteria.allOf.0")["query"]
    )
    assert (
        drifted.get("enabled") is True and drifted.get("severity") == settings.severity_run_quality
    )


def test_log_rules_skip_the_query_check_a_new_workspace_fails(plan: PlanView) -> None:
    # Azure/bicep#11378: SEM0100 on tables without rows yet; the Kusto parser checks instead.
    for resource in plan.of_type(LOG_RULE):
        assert resource.get("skipQueryValidation") is True, resource


def test_stateful_rules_resolve_themselves(plan: PlanView) -> None:
    for resource in plan.of_type(LOG_RULE) + plan.of_type(METRIC_RULE):
        assert resource.get("autoMitigate") is True, f"{resource} must auto-resolve"
    for resource in plan.of_type(METRIC_RULE):
        assert resource.get("criteria.allOf.0.operator") in ARM_OPERATORS


def _scope_in(plan: PlanView) -> QueryScope:
    return QueryScope(
        plan.one("azure-native:machinelearningservices:Workspace").id,
        plan.one("azure-native:applicationinsights:Component").id,
        plan.one(JOB).id,
        plan.one("azure-native:machinelearningservices:Compute").get("computeName"),
    )


def test_changed_config_changes_the_rules_and_a_disabled_schedule_is_not_watched() -> None:
    sets = {
        "alertSeverityStream": "3",
        "alertNoInputMinutes": "45",
        "alertEvaluationMinutes": "10",
        "scheduleEnabled": "false",
    }
    argv = [sys.executable, "-m", "components.offline.plan", "--stack", "dev", "--json-only"]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    plan = PlanView(json.loads(done.stdout))
    no_input = plan.one(LOG_RULE, "alerting-stream-no-input")
    assert (no_input.get("severity"), no_input.get("windowSize")) == (3, "PT45M")
    assert no_input.get("evaluationFrequency") == "PT10M"
    assert plan.one(METRIC_RULE).get("severity") == 3
    assert plan.one(LOG_RULE, "alerting-scoring-run-missing").get("enabled") is False
    assert plan.one(LOG_RULE, "alerting-scoring-run-failed").get("enabled") is True


# --- the webhook stays secret -----------------------------------------------------------------
PLACE = Placement("rg-unit", "westeurope", {"project": "batchscore", "environment": "unit"})


@pytest.fixture
def recorder():
    yield mocks.install("batchscore", "unit", {})
    pulumi.runtime.set_all_config({})


def test_a_webhook_receiver_is_a_secret_in_the_state(recorder) -> None:
    @pulumi.runtime.test
    def declare():
        alerting = Alerting(
            "alerting",
            AlertingArgs(
                PLACE,
                AlertSettings(emails=("ops@corp.example",)),
                log_analytics_workspace_id="/law",
                query_scope=QueryScope.of("/mlw", "/ai", "/job", "cpu-cluster"),
                stream_job_id="/job",
                webhook_url="https://hooks.example.com/T0K3N",  # plain: the component hides it
            ),
        )
        return alerting.action_group_id

    declare()
    (group,) = [r for r in recorder.registrations if r.type == ACTION_GROUP]
    assert group.inputs["webhookReceivers"][0]["serviceUri"] == mocks.SECRET_MARKER
    assert "T0K3N" not in json.dumps([r.inputs for r in recorder.registrations])


# --- the rules' own logic ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cron", "gap"),
    [("0 * * * *", 60), ("*/15 * * * *", 15), ("0 6,18 * * *", 720), ("0 6 * * 1-5", 4320)],
)
def test_the_longest_gap_between_scheduled_runs(cron: str, gap: int) -> None:
    assert longest_cron_gap_minutes(cron) == gap


def test_the_missed_run_window_is_the_gap_plus_grace_or_off_beyond_two_days() -> None:
    config = StackConfig(alert_run_grace_minutes=30)
    hourly = AlertSettings.from_config(config, PipelineSettings(schedule_cron="0 * * * *"))
    # 60 + 30 = 90 minutes, which Azure refuses as a window: the next one it takes
    assert (hourly.missed_run_window_minutes, hourly.watch_schedule) == (120, True)
    assert hourly.schedule_unwatched is None
    weekdays = AlertSettings.from_config(config, PipelineSettings(schedule_cron="0 6 * * 1-5"))
    assert weekdays.watch_schedule is False
    assert "alertRunGraceMinutes (30) is 4350 minutes" in weekdays.schedule_unwatched
    off = AlertSettings.from_config(config, PipelineSettings(schedule_enabled=False))
    assert off.watch_schedule is False and off.schedule_unwatched is None


def test_without_run_summaries_the_rules_that_read_them_are_off() -> None:
    settings = AlertSettings.from_config(StackConfig(), PipelineSettings(append_rows=False))
    enabled = {rule.key: rule.enabled for rule in alert_rules(settings).log}
    assert enabled["scoring-empty-window"] is enabled["scoring-failed-pairs"] is False
    assert enabled["scoring-drifted-pairs"] is False
    assert enabled["scoring-run-failed"] is enabled["stream-no-input"] is True


@pytest.mark.parametrize(
    ("cron", "grace", "window"),
    [
        ("*/15 * * * *", 5, 30),  # 20 minutes
        ("0 */2 * * *", 60, 180),  # exactly a window Azure takes: kept
        ("0 */4 * * *", 61, 360),  # 301 minutes
        ("0 0,12 * * *", 30, 1440),  # 750 minutes
    ],
)
def test_the_missed_run_window_rounds_up_to_a_window_azure_takes(cron, grace, window) -> None:
    settings = AlertSettings.from_config(
        StackConfig(alert_run_grace_minutes=grace), PipelineSettings(schedule_cron=cron)
    )
    assert settings.missed_run_window_minutes == window


def test_every_log_rule_window_and_frequency_is_one_azure_takes() -> None:
    odd = AlertSettings(
        evaluation_minutes=7, missed_run_window_minutes=90, no_input_minutes=20
    )  # settings built in code, past the config's own check
    for rule in alert_rules(odd).log:
        assert rule.window_minutes in LOG_ALERT_WINDOWS, (rule.key, rule.window_minutes)
        assert rule.frequency_minutes in LOG_ALERT_WINDOWS, (rule.key, rule.frequency_minutes)
    windows = {rule.key: rule.window_minutes for rule in alert_rules(odd).log}
    assert (windows["scoring-run-missing"], windows["stream-no-input"]) == (120, 30)
    assert windows["scoring-run-failed"] == 10


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(5, "PT5M"), (15, "PT15M"), (90, "PT1H30M"), (1440, "P1D"), (1500, "P1DT1H"), (2880, "P2D")],
)
def test_iso_durations(minutes: int, text: str) -> None:
    assert iso_minutes(minutes) == text


def test_metric_windows_and_frequencies_are_values_arm_takes() -> None:
    for every, window, frequency in ((5, 5, 5), (10, 15, 5), (15, 15, 15), (45, 60, 30)):
        (rule,) = alert_rules(AlertSettings(evaluation_minutes=every)).metric
        assert (rule.window_minutes, rule.frequency_minutes) == (window, frequency), every


def test_no_rule_runs_less_often_than_its_window() -> None:
    rules = alert_rules(AlertSettings(evaluation_minutes=60, no_input_minutes=20))
    for rule in rules.log:
        assert rule.frequency_minutes <= rule.window_minutes, rule.key


def test_the_drifted_pairs_share_comes_from_config() -> None:
    config = StackConfig(alert_drifted_pairs_percent=35)
    rules = {
        r.key: r for r in alert_rules(AlertSettings.from_config(config, PipelineSettings())).log
    }
    drifted = rules["scoring-drifted-pairs"]
    assert drifted.values == {"drifted_pairs_percent": 35} and "35%" in drifted.description
    scope = QueryScope("ws", "ai", "job", "cluster")
    assert "DriftedPairs * 100.0 > DriftPairs * 35\n" in drifted.query.render(
        scope, **drifted.values
    )
