"""Pulumi's project and stack files, read the way the engine reads them; no Pulumi import.

The one reader for every tool that needs a stack's config without running `pulumi up`: the
offline plan (the engine's strings) and the scoring pipeline's settings (typed values).

* `Pulumi.yaml` names the project (the config namespace) and declares its keys under
  `config:`, each with `type`, `default` and `description` (or a bare default value).
* `Pulumi.<stack>.yaml` sets values under `config:` as `<namespace>:<key>`; a key without a
  namespace belongs to the project.

:func:`read_stack_config` gives the project's keys without the namespace, the `Pulumi.yaml`
defaults overlaid with the stack file, each value of the type `Pulumi.yaml` declares for it
(`pulumi config set` writes `"30"`; an integer key reads 30). :func:`engine_config` gives what
the engine hands the program: `<namespace>:<key>` -> string, other namespaces included.

Secrets (`secure:` values) cannot be decrypted offline: they are left out, so the default
applies. Every error is a :class:`StackFileError` that names the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components.config.errors import ConfigError

PROJECT_FILE = "Pulumi.yaml"


class StackFileError(ConfigError):
    """A project or stack file is missing, unreadable or holds a value of the wrong type."""


def load_project(project_dir: str | Path) -> dict[str, Any]:
    """`Pulumi.yaml` of `project_dir` as a mapping (it must name the project)."""
    project = _load_yaml(Path(project_dir) / PROJECT_FILE)
    if not isinstance(project.get("name"), str) or not project["name"]:
        raise StackFileError(f"{PROJECT_FILE}: no project name")
    return project


#: the checkout this package was installed from in place (editable), if it is one
_CHECKOUT = Path(__file__).resolve().parents[2]


def find_project_dir() -> Path:
    """The folder holding Pulumi.yaml: the current folder or the nearest one above it, else
    the checkout this package runs from. Raises StackFileError when there is none (an
    installed package used outside the project)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents, _CHECKOUT):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise StackFileError(
        f"{PROJECT_FILE}: not in {here} or any folder above it: run this from the project "
        "folder (the one with Pulumi.yaml), or pass --project-dir"
    )


def stack_names(project_dir: str | Path) -> list[str]:
    """The stacks that have a `Pulumi.<stack>.yaml` in `project_dir`, sorted."""
    return sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in Path(project_dir).glob("Pulumi.*.yaml")
    )


def read_stack_config(stack: str | None, project_dir: str | Path) -> dict[str, Any]:
    """`{key: typed value}` of the project's namespace: `Pulumi.yaml` defaults, then the values
    of `Pulumi.<stack>.yaml` (none when `stack` is None).

    Values of declared keys take the declared type; keys `Pulumi.yaml` does not declare are
    kept as written. Raises StackFileError naming the file.
    """
    namespace, values = _read(stack, Path(project_dir), declared_only=False)
    return {key: value for (space, key), value in values.items() if space == namespace}


def engine_config(stack: str, project_dir: str | Path) -> dict[str, str]:
    """`{"<namespace>:<key>": string}`: the stack's config as the engine passes it to the
    program (`true`/`false`, JSON for arrays), keys of other namespaces included.

    A project key that `Pulumi.yaml` does not declare is an error, as is a missing stack file.
    """
    _, values = _read(stack, Path(project_dir), declared_only=True)
    return {f"{space}:{key}": engine_string(value) for (space, key), value in values.items()}


def engine_string(value: Any) -> str:
    """A config value the way the engine passes it to the program (all strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


# --- reading -------------------------------------------------------------------------------------
def _read(
    stack: str | None, root: Path, *, declared_only: bool
) -> tuple[str, dict[tuple[str, str], Any]]:
    """The project's namespace and `(namespace, key) -> typed value`, defaults first."""
    project = load_project(root)
    namespace = project["name"]
    schema = project.get("config") or {}
    if not isinstance(schema, Mapping):
        raise StackFileError(f"{PROJECT_FILE}: `config` must be a mapping of keys")
    declared: dict[str, Any] = {}
    for raw_key, spec in schema.items():
        space, key = _split(raw_key, namespace)
        if space == namespace:
            declared[key] = spec
    problems: list[str] = []
    values: dict[tuple[str, str], Any] = {}
    for key, spec in declared.items():
        if not isinstance(spec, Mapping):
            values[(namespace, key)] = spec  # the short form: the default itself
        elif "default" in spec:
            values[(namespace, key)] = _typed(spec["default"], spec, key, problems)
    if stack is not None:
        stack_file = root / f"Pulumi.{stack}.yaml"
        if not stack_file.is_file():
            known = ", ".join(stack_names(root)) or "none"
            raise StackFileError(
                f"stack {stack!r}: no stack file {stack_file.name}; known stacks: {known}"
            )
        config = _load_yaml(stack_file).get("config") or {}
        if not isinstance(config, Mapping):
            raise StackFileError(f"{stack_file.name}: `config` must be a mapping of keys")
        for raw_key, value in config.items():
            space, key = _split(raw_key, namespace)
            if isinstance(value, Mapping) and "secure" in value:
                continue  # encrypted: not readable offline
            if space == namespace:
                if key not in declared and declared_only:
                    problems.append(f"{space}:{key} is not declared in {PROJECT_FILE}")
                    continue
                value = _typed(value, declared.get(key), f"{space}:{key}", problems)
            values[(space, key)] = value
        where = stack_file.name
    else:
        where = PROJECT_FILE
    if problems:
        raise StackFileError(f"{where}: " + f"\n{where}: ".join(problems))
    return namespace, values


def _split(raw_key: Any, namespace: str) -> tuple[str, str]:
    space, sep, key = str(raw_key).partition(":")
    return (space, key) if sep else (namespace, space)


_INTEGER = re.compile(r"\s*-?\d+\s*")


def coerce(value: Any, kind: str | None) -> Any:
    """A config value as the type Pulumi declares (``boolean``, ``integer``, ``array``,
    ``string``; anything else is returned as it is): the engine hands every value as a
    string, a stack file as YAML's own type. Raises ``ValueError`` saying what it must be. The
    one coercion of config values: the stack config, the pipeline settings and this reader
    all use it."""
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"must be true or false (got {value!r})")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return int(value)
        raise ValueError(f"must be an integer (got {value!r})")
    if kind == "array":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        if isinstance(value, list | tuple):
            return list(value)
        raise ValueError(f"must be a list (got {value!r})")
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return engine_string(value)
        raise ValueError(f"must be a string (got {value!r})")
    return value


def _typed(value: Any, spec: Any, key: str, problems: list[str]) -> Any:
    """`value` as the type `spec` declares; a problem line naming `key` when it is not one."""
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    try:
        return coerce(value, kind)
    except ValueError:
        problems.append(f"{key}: must be of type {kind} (got {value!r})")
        return value


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StackFileError(f"{path.name}: not found in {path.parent}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise StackFileError(f"{path.name}: expected a mapping at the top level")
    return data
