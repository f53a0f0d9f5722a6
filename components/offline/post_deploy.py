"""The post-deploy T-SQL of a planned stack, as text for review.

`make plan` writes it beside the plan JSON (`build/post-deploy-<stack>.sql`) and
`--update-snapshot` into tests/snapshots/, so a pull request that changes the SQL bootstrap
shows the statements it will run. The text is exactly what the SqlBootstrap resource executes
at `pulumi up` (:func:`components.providers.sql_bootstrap_script.script_text` of the planned
inputs), with the offline mocks' names and client ids, batches separated by `GO` as sqlcmd
and SSMS read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.providers.sql_bootstrap import users_of
from components.providers.sql_bootstrap_script import bootstrap_steps, script_text

SQL_BOOTSTRAP_TYPE = "pulumi-python:dynamic/batchscore:SqlBootstrap"


def render(plan: Mapping[str, Any]) -> str:
    """The T-SQL the plan's SqlBootstrap resource runs, with a header naming where."""
    found = [r for r in plan["resources"] if r["type"] == SQL_BOOTSTRAP_TYPE]
    if len(found) != 1:
        raise ValueError(f"stack {plan['stack']}: expected one SqlBootstrap, found {len(found)}")
    inputs = found[0]["inputs"]
    job, cluster = users_of(inputs)
    header = (
        f"-- Post-deploy T-SQL of stack {plan['stack']}: run by {found[0]['name']} as the SQL\n"
        f"-- server's Entra admin in database {inputs['database']} on {inputs['serverFqdn']}.\n"
        "-- Offline plan: names and client ids come from the mocks. Every batch is idempotent.\n"
    )
    return header + script_text(bootstrap_steps(job, cluster))
