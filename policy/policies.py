"""Thin adapter: each pure rule of `rules.py` as a pulumi-policy `ResourceValidationPolicy`.

The stack name comes from the resource's URN, so the rules see the same stack name in
`pulumi preview --policy-pack policy` as in the offline plan check. Building these
objects starts nothing; only `PolicyPack(...)` in `__main__.py` starts the analyzer.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

try:  # imported as `policy.policies` (tests, tooling)
    from .rules import RULES, Rule, stack_from_urn
except ImportError:  # run by the Pulumi policy host: the pack folder is on sys.path
    from rules import RULES, Rule, stack_from_urn  # type: ignore[no-redef]


def validator(rule: Rule):
    """A `ResourceValidation` callback that reports every message of `rule` for a resource."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        stack = stack_from_urn(args.urn)
        for message in rule(args.resource_type, args.props, stack, args.get_config()):
            report_violation(f"{args.name}: {message}", None)

    validate.__name__ = f"validate_{rule.name.replace('-', '_')}"
    return validate


def to_policy(
    rule: Rule, enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY
) -> ResourceValidationPolicy:
    schema = PolicyConfigSchema(properties=dict(rule.config_schema)) if rule.config_schema else None
    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validator(rule),
        enforcement_level=enforcement_level,
        config_schema=schema,
    )


def build_policies() -> list[ResourceValidationPolicy]:
    """Every rule of the baseline, mandatory: a violation fails the preview and the update."""
    return [to_policy(rule) for rule in RULES]
