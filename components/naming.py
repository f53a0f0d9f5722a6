"""Cloud names Azure needs unique, derived from project and stack, within each service's rules.

Names Azure needs unique across all of Azure (storage account, registry, key vault, SQL
server, Event Hubs namespace; the workspace too, for readability) are built as
``<abbreviation><project><stack><suffix>``, with hyphens where the service allows them:

* project and stack make the name readable and keep two stacks of one project apart;
* the suffix is one `pulumi_random.RandomString` per stack (kept in the stack's state), so
  two organisations deploying this repository's `dev` stack do not collide either. A hash
  of project+stack alone would give everyone the same `stbatchscoredev...` name.

Everything else is auto-named by the provider (logical name + random suffix) or is a
child name scoped by its parent (a container in its account, a hub in its namespace).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

SUFFIX_LENGTH = 6


@dataclass(frozen=True)
class NameRule:
    """One service's naming rule (from the Azure resource-naming rules page)."""

    service: str
    abbreviation: str
    min_length: int
    max_length: int
    pattern: str
    hyphens: bool

    def problems(self, name: str) -> list[str]:
        """What is wrong with `name` for this service (empty when it is valid)."""
        found = []
        if not self.min_length <= len(name) <= self.max_length:
            found.append(
                f"{self.service} name {name!r} has {len(name)} characters; "
                f"allowed: {self.min_length}..{self.max_length}"
            )
        if not re.fullmatch(self.pattern, name):
            found.append(f"{self.service} name {name!r} does not match {self.pattern}")
        if "--" in name:
            found.append(f"{self.service} name {name!r} has consecutive hyphens")
        return found


RULES: dict[str, NameRule] = {
    "resource_group": NameRule("Resource group", "rg", 1, 90, r"[a-z0-9][a-z0-9-]*[a-z0-9]", True),
    "storage_account": NameRule("Storage account", "st", 3, 24, r"[a-z0-9]+", False),
    "container_registry": NameRule("Container registry", "cr", 5, 50, r"[a-z0-9]+", False),
    # Key Vault: starts with a letter, ends with a letter or digit, no "--".
    "key_vault": NameRule("Key Vault", "kv", 3, 24, r"[a-z][a-z0-9-]*[a-z0-9]", True),
    "sql_server": NameRule("SQL server", "sql", 1, 63, r"[a-z0-9][a-z0-9-]*[a-z0-9]", True),
    # Event Hubs namespace: starts with a letter, ends with a letter or digit; Azure also
    # refuses names ending in -sb or -mgmt (the random suffix never ends that way).
    "event_hubs_namespace": NameRule(
        "Event Hubs namespace", "evhns", 6, 50, r"[a-z][a-z0-9-]*[a-z0-9]", True
    ),
    "ml_workspace": NameRule("ML workspace", "mlw", 3, 33, r"[a-z0-9][a-z0-9_-]*", True),
}


def _clean(text: str, hyphens: bool) -> str:
    """Lowercase; anything but letters and digits becomes one hyphen (or nothing)."""
    text = re.sub(r"[^a-z0-9]+", "-" if hyphens else "", text.lower())
    return text.strip("-")


def unique_name(kind: str, project: str, stack: str, suffix: str) -> str:
    """The cloud name of a `kind` (a key of RULES) for this project, stack and random suffix.

    Project and stack are shortened to fit the service's maximum length (the stack is kept
    whole when it can be, the project is shortened first); abbreviation and suffix stay.
    """
    rule = RULES[kind]
    sep = "-" if rule.hyphens else ""
    suffix = _clean(suffix, False)
    project_part = _clean(project, rule.hyphens)
    stack_part = _clean(stack, rule.hyphens)
    # abbreviation + sep + project + sep + stack + sep + suffix
    budget = rule.max_length - len(rule.abbreviation) - len(suffix) - 3 * len(sep)
    stack_part = stack_part[: max(budget - 1, 1)].strip("-")
    project_part = project_part[: max(budget - len(stack_part), 0)].strip("-")
    parts = [rule.abbreviation, project_part, stack_part, suffix]
    name = sep.join(p for p in parts if p)
    problems = rule.problems(name)
    if problems:  # a programming error in the rules above, never the user's input
        raise ValueError("; ".join(problems))
    return name


def random_suffix(name: str, opts: pulumi.ResourceOptions | None = None):
    """The per-stack random suffix: 6 lowercase letters and digits, kept in the stack state."""
    import pulumi_random

    return pulumi_random.RandomString(
        name,
        length=SUFFIX_LENGTH,
        upper=False,
        special=False,
        numeric=True,
        min_lower=1,
        opts=opts,
    )


@dataclass(frozen=True)
class GlobalNames:
    """The globally unique cloud names of one stack (Outputs: they wait for the suffix)."""

    resource_group: pulumi.Output[str]
    storage_account: pulumi.Output[str]
    container_registry: pulumi.Output[str]
    key_vault: pulumi.Output[str]
    sql_server: pulumi.Output[str]
    event_hubs_namespace: pulumi.Output[str]
    ml_workspace: pulumi.Output[str]

    @classmethod
    def derive(cls, project: str, stack: str, suffix: pulumi.Input[str]) -> GlobalNames:
        suffix_output = pulumi.Output.from_input(suffix)

        def name(kind: str) -> pulumi.Output[str]:
            return suffix_output.apply(lambda s: unique_name(kind, project, stack, s))

        return cls(**{kind: name(kind) for kind in RULES})
