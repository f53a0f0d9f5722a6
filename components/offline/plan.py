"""Offline plan: run the Pulumi program under mocks for one stack and show what it declares.

    python -m components.offline.plan --stack dev                    # tree + build/plan-dev.json
                                                                     # + build/post-deploy-dev.sql
    python -m components.offline.plan --stack dev --json-only        # JSON on stdout only
    python -m components.offline.plan --stack dev --update-snapshot  # also tests/snapshots/
    python -m components.offline.plan --stack dev --set clusterMaxNodes=4

The stack's config is what `pulumi up` would see: the defaults of `Pulumi.yaml` overlaid
with `Pulumi.<stack>.yaml` (and any `--set`). The plan JSON is `{"stack", "project",
"resources": [...], "outputs"}`; each resource is `{"type", "name", "parent", "protect",
"id", "inputs"}` (plus `"dependsOn"`, the logical names of explicit dependencies, and
`"hooks"`, the names of bound resource hooks by kind, and `"ignoreChanges"`, when there are
any) with inputs
exactly as the engine receives them (camelCase), secrets and unknowns as markers, and `id`
the mocks' ARM id (None for components). Random values and ids come from deterministic mocks
and resources are sorted by logical name and type, so the snapshot in tests/snapshots/ diffs
cleanly in a pull request.

Exit codes: 0 plan written, 2 bad usage or invalid stack config (nothing declared),
1 the program failed under mocks.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

from components.config import files as stack_files
from components.offline import post_deploy

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "tests" / "snapshots"
BUILD = ROOT / "build"
REFRESH_HINT = "python -m components.offline.plan --stack {stack} --update-snapshot"

# Inputs left out of the printed tree (still in the JSON): noise for a reader.
_QUIET_INPUTS = {"resourceGroupName", "location", "tags", "query"}


class PlanError(Exception):
    """Bad usage or an invalid stack config: one clear message, exit code 2."""


# --- config ------------------------------------------------------------------------------------
def load_project() -> dict[str, Any]:
    return stack_files.load_project(ROOT)


def stack_config(stack: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """`<namespace>:<key>` -> engine string: the stack's config as `pulumi up` would pass it
    (:func:`components.config.files.engine_config`), then the `--set` overrides."""
    try:
        values = stack_files.engine_config(stack, ROOT)
        project = load_project()
    except stack_files.StackFileError as error:
        raise PlanError(str(error)) from None
    schema = project.get("config") or {}
    for key, value in (overrides or {}).items():
        if key not in schema:
            raise PlanError(f"--set {key}: not a config key of Pulumi.yaml")
        values[f"{project['name']}:{key}"] = value
    return values


# --- running the program under mocks -----------------------------------------------------------
def build_plan(stack: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Run __main__.py under the offline mocks; the plan as a JSON-ready dict."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from components.config import ConfigError
    from components.offline import mocks
    from components.shared import registry_auth

    project = load_project()["name"]
    config = stack_config(stack, overrides)
    monitor = mocks.install(project, stack, config)
    os.chdir(ROOT)  # the program's paths (build context, Dockerfile) are project-relative
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    def offline_exchange(login_server: str, tenant: str, token: str) -> str:
        return mocks.OFFLINE_ACR_REFRESH_TOKEN

    with registry_auth.use_exchanger(offline_exchange):
        try:
            _sync_await(
                run_pulumi_func(
                    lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
                )
            )
        except pulumi.RunError as error:
            declared = len(monitor.registrations)
            raise PlanError(f"{error}\n({declared} resources declared)") from None
        except ConfigError as error:  # pragma: no cover - __main__ converts it to RunError
            raise PlanError(str(error)) from None
        outputs = _resolved_outputs()
    return {
        "stack": stack,
        "project": project,
        "resources": _resources(monitor),
        "outputs": outputs,
    }


PROVIDER_KEY = "__provider"


def _resources(monitor) -> list[dict[str, Any]]:
    names = {r.urn: r.name for r in monitor.registrations}
    resources = []
    for r in monitor.registrations:
        resource = {
            "type": r.type,
            "name": r.name,
            "parent": names.get(r.parent_urn),
            "protect": r.protect,
            "id": r.id,
            "inputs": _readable_inputs(r.inputs),
        }
        if r.depends_on:
            resource["dependsOn"] = r.depends_on
        if r.hooks:
            resource["hooks"] = r.hooks
        if r.ignore_changes:
            resource["ignoreChanges"] = r.ignore_changes
        resources.append(resource)
    return sorted(resources, key=lambda r: (r["name"], r["type"]))


def _readable_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """A dynamic resource carries its provider pickled in ``__provider``; a reviewer needs the
    provider's class, not the base64 blob."""
    if PROVIDER_KEY not in inputs:
        return inputs
    provider = _provider_name(inputs[PROVIDER_KEY])
    readable = {**inputs, PROVIDER_KEY: f"<dynamic provider {provider}>"}
    if "codeHash" in readable:
        # The hash of scoring/ changes with every edit of the scoring code, which the pull
        # request's code diff already shows; the plan shows that the hash is an input.
        readable["codeHash"] = "<content hash of scoring/>"
    return readable


def _provider_name(serialized: str) -> str:
    import base64
    import pickletools

    # Read the pickle's opcodes, never unpickle: the class is named by its module and name.
    strings = [
        arg
        for op, arg, _ in pickletools.genops(base64.b64decode(serialized))
        if isinstance(arg, str)
    ]
    return ".".join(strings[:2]) if len(strings) >= 2 else "?"


def _resolved_outputs() -> dict[str, Any]:
    import pulumi
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.sync_await import _sync_await

    from components.offline.mocks import SECRET_MARKER

    outputs: dict[str, Any] = {}
    for name, value in sorted(get_root_resource().outputs.items()):
        output = pulumi.Output.from_input(value)
        secret = _sync_await(output.is_secret())
        outputs[name] = SECRET_MARKER if secret else _sync_await(output.future())
    return outputs


# --- showing and writing -----------------------------------------------------------------------
def _summary(inputs: dict[str, Any], width: int = 110) -> str:
    parts = []
    for key in sorted(inputs):
        if key in _QUIET_INPUTS:
            continue
        value = inputs[key]
        shown = value if isinstance(value, str | int | float | bool) else json.dumps(value)
        parts.append(f"{key}={shown}")
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 3] + "..."


def render_tree(plan: dict[str, Any]) -> str:
    """One line per resource, children indented under their component."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in plan["resources"]:
        children.setdefault(resource["parent"], []).append(resource)
    lines = [f"stack {plan['stack']} of {plan['project']}: {len(plan['resources'])} resources"]

    def walk(parent: str | None, depth: int) -> None:
        for resource in children.get(parent, []):
            lock = " [protect]" if resource["protect"] else ""
            lines.append(f"{'  ' * depth}{resource['type']}  {resource['name']}{lock}")
            summary = _summary(resource["inputs"])
            if summary:
                lines.append(f"{'  ' * depth}    {summary}")
            walk(resource["name"], depth + 1)

    walk(None, 1)
    lines.append("outputs:")
    lines += [f"  {name} = {value}" for name, value in plan["outputs"].items()]
    return "\n".join(lines)


def plan_json(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=2, sort_keys=True) + "\n"


_Key = tuple[str, tuple[tuple[str, str], ...]]
_RUNNING: dict[_Key, subprocess.Popen] = {}
_FINISHED: dict[_Key, tuple[int, str, str]] = {}


def _launch(key: _Key) -> subprocess.Popen:
    if key not in _RUNNING:
        stack, sets = key
        command = [sys.executable, "-m", "components.offline.plan", "--stack", stack, "--json-only"]
        for name, value in sets:
            command += ["--set", f"{name}={value}"]
        _RUNNING[key] = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return _RUNNING[key]


def plan_in_subprocess(
    stack: str,
    prefetch: tuple[str, ...] = ("dev", "prod"),
    overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The plan of `stack` (with `--set` `overrides`) from a fresh interpreter (the mock
    runtime is process-global).

    Runs once per process, stack and overrides; the stacks in `prefetch` start at the same
    time, so a test session waits for them once.
    """
    key: _Key = (stack, tuple(sorted((overrides or {}).items())))
    if key not in _FINISHED:
        for other in (stack, *prefetch):
            if (ROOT / f"Pulumi.{other}.yaml").exists():
                _launch((other, ()))
        process = _launch(key)
        stdout, stderr = process.communicate()
        _FINISHED[key] = (process.returncode, stdout, stderr)
    code, stdout, stderr = _FINISHED[key]
    if code != 0:
        raise RuntimeError(f"plan of stack {stack} {dict(key[1])} failed (exit {code}):\n{stderr}")
    return json.loads(stdout)


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PlanError(f"--set {pair!r}: expected key=value")
        overrides[key] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.offline.plan", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument("--json-only", action="store_true", help="print the JSON, write nothing")
    parser.add_argument(
        "--out", type=Path, help="where to write the JSON (build/plan-<stack>.json)"
    )
    parser.add_argument(
        "--update-snapshot",
        action="store_true",
        help="also write tests/snapshots/plan-<stack>.json and post-deploy-<stack>.sql",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    args = parser.parse_args(argv)
    try:
        plan = build_plan(args.stack, _parse_sets(args.set))
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = plan_json(plan)
    if args.json_only:
        sys.stdout.write(text)
        return 0
    print(render_tree(plan))
    plan_file = args.out or BUILD / f"plan-{args.stack}.json"
    sql_name = f"post-deploy-{args.stack}.sql"
    writes = [(plan_file, text), (plan_file.with_name(sql_name), post_deploy.render(plan))]
    if args.update_snapshot:
        writes += [
            (SNAPSHOTS / f"plan-{args.stack}.json", text),
            (SNAPSHOTS / sql_name, writes[1][1]),
        ]
    for target, content in writes:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
