"""Globally unique cloud names: derived from project and stack, valid for each service."""

from __future__ import annotations

import pytest

from components.naming import RULES, unique_name

STACKS = ["dev", "prod", "x", "feature-login_rework.2", "A-VERY-LONG-STACK-NAME-FOR-A-REVIEW-APP"]


@pytest.mark.parametrize("kind", sorted(RULES))
@pytest.mark.parametrize("stack", STACKS)
def test_names_fit_the_service_rules(kind: str, stack: str) -> None:
    name = unique_name(kind, "batchscore", stack, "k3x9q2")
    assert RULES[kind].problems(name) == [], name
    assert name.endswith("k3x9q2"), f"{kind}: the random suffix must survive shortening: {name}"
    assert name.startswith(RULES[kind].abbreviation), name


@pytest.mark.parametrize("kind", sorted(RULES))
def test_names_carry_project_and_stack(kind: str) -> None:
    name = unique_name(kind, "batchscore", "dev", "k3x9q2").replace("-", "")
    assert "dev" in name and "batchsco" in name, name


@pytest.mark.parametrize("kind", sorted(RULES))
def test_two_stacks_or_two_suffixes_never_share_a_name(kind: str) -> None:
    names = {
        unique_name(kind, "batchscore", stack, suffix)
        for stack in ("dev", "prod", "test")
        for suffix in ("k3x9q2", "a0b1c2")
    }
    assert len(names) == 6


@pytest.mark.parametrize(
    ("kind", "name", "problem"),
    [
        ("storage_account", "st-has-hyphens", "does not match"),
        ("storage_account", "s" * 25, "25 characters"),
        ("key_vault", "kv--double", "consecutive hyphens"),
        ("key_vault", "1kv", "does not match"),
        ("event_hubs_namespace", "evh", "3 characters"),
        ("container_registry", "cr-x-y", "does not match"),
        ("sql_server", "sql-", "does not match"),
    ],
)
def test_rules_reject_bad_names(kind: str, name: str, problem: str) -> None:
    problems = RULES[kind].problems(name)
    assert any(problem in p for p in problems), problems
    assert RULES[kind].service in problems[0]
