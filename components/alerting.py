"""Alerting: who is told, and the rules that tell them when scoring fails, data stops, or the
stream job dies.

* An action group: one email receiver per address of ``alertEmails`` and, when set, the
  ``alertWebhookUrl`` webhook (kept secret in the state), all with the common alert schema.
  A stack without receivers (dev) still gets the group: its alerts show in the portal.
* The rules of :func:`components.shared.alert_rules.alert_rules`: log search rules scoped to
  the Log Analytics workspace, the metric rule and the activity log rules scoped to the
  Stream Analytics job. Every rule calls the action group.

Log rules skip the service's query validation (see ``_log_rule``): their queries are parsed and
bound offline with Kusto.Language in the test suite instead.

pulumi-azure-native 3.29.0: the log rule's ``operator`` is the ARM string (``GreaterThan``);
``monitor.ConditionOperator`` is another resource's enum (``gt``) and must not be used here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import monitor

from components.config.alerts import AlertSettings
from components.shared.alert_rules import (
    ActivityLogAlertRule,
    AlertRules,
    LogAlertRule,
    MetricAlertRule,
    alert_rules,
    iso_minutes,
)
from components.shared.monitoring_queries import QueryScope
from components.shared.placement import Placement, child_options

#: what receivers see as the sender (at most 12 characters)
SHORT_NAME_PREFIX = "scoring"


@dataclass
class AlertingArgs:
    placement: Placement
    settings: AlertSettings
    log_analytics_workspace_id: pulumi.Input[str]
    query_scope: pulumi.Output[QueryScope]  # the resources the log rules look at
    stream_job_id: pulumi.Input[str]  # the metric and activity log rules' scope
    webhook_url: pulumi.Input[str] | None = None  # a secret Output, or None


class Alerting(pulumi.ComponentResource):
    """The action group and every alert rule (see the module docstring)."""

    action_group_id: pulumi.Output[str]
    rules: AlertRules

    def __init__(
        self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:Alerting", name, None, opts)
        self.rules = alert_rules(args.settings)
        if args.settings.schedule_unwatched:
            pulumi.log.warn(args.settings.schedule_unwatched, resource=self)
        self.action_group = self._action_group(name, args)
        self.action_group_id = self.action_group.id
        self.log_rules = [self._log_rule(name, args, rule) for rule in self.rules.log]
        self.metric_rules = [self._metric_rule(name, args, rule) for rule in self.rules.metric]
        self.activity_rules = [
            self._activity_rule(name, args, rule) for rule in self.rules.activity
        ]
        self.register_outputs({"actionGroupId": self.action_group_id})

    def _action_group(self, name: str, args: AlertingArgs) -> monitor.ActionGroup:
        emails = [
            monitor.MicrosoftCommonEmailReceiverArgs(
                name=f"email-{index}", email_address=address, use_common_alert_schema=True
            )
            for index, address in enumerate(args.settings.emails, start=1)
        ]
        hooks = None
        if args.webhook_url is not None:
            hooks = [
                monitor.WebhookReceiverArgs(
                    name="webhook",
                    service_uri=pulumi.Output.secret(args.webhook_url),
                    use_common_alert_schema=True,
                )
            ]
        return monitor.ActionGroup(
            f"{name}-action-group",
            resource_group_name=args.placement.resource_group_name,
            location="Global",
            group_short_name=f"{SHORT_NAME_PREFIX}-{pulumi.get_stack()}"[:12],
            enabled=True,
            email_receivers=emails,
            webhook_receivers=hooks,
            tags=dict(args.placement.tags),
            opts=child_options(self),
        )

    def _log_rule(
        self, name: str, args: AlertingArgs, rule: LogAlertRule
    ) -> monitor.ScheduledQueryRule:
        place = args.placement
        query = args.query_scope.apply(lambda scope: rule.query.render(scope, **rule.values))
        return monitor.ScheduledQueryRule(
            f"{name}-{rule.key}",
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind="LogAlert",
            display_name=rule.title,
            description=rule.description,
            severity=rule.severity,
            enabled=rule.enabled,
            scopes=[args.log_analytics_workspace_id],
            evaluation_frequency=iso_minutes(rule.frequency_minutes),
            window_size=iso_minutes(rule.window_minutes),
            auto_mitigate=True,
            # A new workspace has no AmlRunStatusChangedEvent, AmlComputeClusterEvent, AppEvents
            # or AzureMetrics table until its first row, and the service's query check refuses a
            # rule over a missing table (SEM0100, Azure/bicep#11378). The queries are checked
            # instead by Microsoft's Kusto parser in the test suite, against the tables' schemas.
            skip_query_validation=True,
            criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                all_of=[
                    monitor.ConditionArgs(
                        query=query,
                        time_aggregation=rule.time_aggregation,
                        metric_measure_column=rule.measure,
                        operator=rule.operator,
                        threshold=rule.threshold,
                        failing_periods=monitor.ConditionFailingPeriodsArgs(
                            number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                        ),
                    )
                ]
            ),
            actions=monitor.ActionsArgs(
                action_groups=[self.action_group.id],
                custom_properties={"runbook": f"README.md#alert-{rule.key}"},
            ),
            tags=dict(place.tags),
            opts=child_options(self),
        )

    def _metric_rule(
        self, name: str, args: AlertingArgs, rule: MetricAlertRule
    ) -> monitor.MetricAlert:
        return monitor.MetricAlert(
            f"{name}-{rule.key}",
            resource_group_name=args.placement.resource_group_name,
            location="global",
            description=rule.description,
            severity=rule.severity,
            enabled=True,
            scopes=[args.stream_job_id],
            evaluation_frequency=iso_minutes(rule.frequency_minutes),
            window_size=iso_minutes(rule.window_minutes),
            auto_mitigate=True,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    monitor.MetricCriteriaArgs(
                        name=rule.metric_name,
                        criterion_type="StaticThresholdCriterion",
                        metric_namespace=rule.metric_namespace,
                        metric_name=rule.metric_name,
                        operator=rule.operator,
                        threshold=rule.threshold,
                        time_aggregation=rule.aggregation,
                    )
                ],
            ),
            actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)],
            tags=dict(args.placement.tags),
            opts=child_options(self),
        )

    def _activity_rule(
        self, name: str, args: AlertingArgs, rule: ActivityLogAlertRule
    ) -> monitor.ActivityLogAlert:
        conditions = [
            monitor.AlertRuleAnyOfOrLeafConditionArgs(field=key, equals=value)
            for key, value in rule.all_of
        ]
        conditions.append(
            monitor.AlertRuleAnyOfOrLeafConditionArgs(
                field="resourceType", equals="Microsoft.StreamAnalytics/streamingjobs"
            )
        )
        if rule.any_field:
            conditions.append(
                monitor.AlertRuleAnyOfOrLeafConditionArgs(
                    any_of=[
                        monitor.AlertRuleLeafConditionArgs(field=rule.any_field, equals=value)
                        for value in rule.any_of
                    ]
                )
            )
        return monitor.ActivityLogAlert(
            f"{name}-{rule.key}",
            resource_group_name=args.placement.resource_group_name,
            location="Global",
            description=f"{rule.title}: {rule.description}",
            enabled=True,
            scopes=[args.stream_job_id],
            condition=monitor.AlertRuleAllOfConditionArgs(all_of=conditions),
            actions=monitor.ActionListArgs(
                action_groups=[monitor.ActionGroupArgs(action_group_id=self.action_group.id)]
            ),
            tags=dict(args.placement.tags),
            opts=child_options(self),
        )
