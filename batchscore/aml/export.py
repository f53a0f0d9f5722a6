"""Azure ML YAML of the scoring pipeline (or a generic parallel job), validated offline.

Each file carries its ``$schema`` and is what ``az ml component create -f`` /
``az ml job create -f`` / ``az ml schedule create -f`` would submit. The content comes from
the SDK's own ``_to_dict()``; only two things are rewritten so the files are portable:
``code`` becomes a path relative to the YAML file, and pipeline steps reference the sibling
component files instead of repeating them inline. The schedule's ``create_job`` references
the pipeline job file and overrides ``trigger_time`` with ``${{creation_context.trigger_time}}``
(the SDK cannot load back a schedule with an inline pipeline).

:func:`validate_folder` loads every file back with ``load_component`` / ``load_job`` /
``load_schedule`` (schema validation) and runs the entity's ``_validate()`` (the SDK's
client-side checks: bindings, required inputs, parallel settings), all without a workspace.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.aml import components as comps
from components.aml.pipeline import (
    STANDALONE_TRIGGER_TIME,
    TRIGGER_TIME_MACRO,
    build_components,
    generic_pipeline_job,
    scoring_pipeline_job,
)
from components.config.pipeline import PipelineSettings, PipelineTarget
from scoring.errors import RunFailed

SCHEMA_BASE = "https://azuremlschemas.azureedge.net/latest"
SCHEMAS = {
    "command": f"{SCHEMA_BASE}/commandComponent.schema.json",
    "parallel": f"{SCHEMA_BASE}/parallelComponent.schema.json",
    "pipeline": f"{SCHEMA_BASE}/pipelineJob.schema.json",
    "schedule": f"{SCHEMA_BASE}/schedule.schema.json",
}
COMPONENT_SUFFIX = ".component.yml"
JOB_FILE = "pipeline.job.yml"
SCHEDULE_FILE = "schedule.yml"
GENERIC_JOB_FILE = "batch_inference.job.yml"
DEFAULT_GENERIC_INPUT = "azureml://datastores/workspaceblobstore/paths/PLACEHOLDER-input/"


class ExportValidationError(RunFailed, ValueError):
    """An exported file did not pass azure-ai-ml's offline validation (message names it)."""


@dataclass
class Rendered:
    """Exported files: name -> YAML text, in writing order, and their kinds."""

    files: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, kind: str, data: dict[str, Any]) -> None:
        self.files[name] = to_yaml(data)
        self.kinds[name] = kind


def render_scoring(
    settings: PipelineSettings,
    target: PipelineTarget,
    *,
    base_dir: Path,
    schedule_name: str,
    trigger_time: str = STANDALONE_TRIGGER_TIME,
    version: str | None = None,
    code_dir: Path = comps.SCORING_DIR,
) -> Rendered:
    """Components, pipeline job and schedule of the scoring pipeline, as YAML texts.

    ``base_dir`` is where the files will live (relative ``code`` paths start there).
    ``trigger_time`` is the standalone job's window end (``now`` unless a backfill; the
    schedule file overrides it with the trigger-time macro, which only a schedule fills in);
    ``version`` overrides the content versions (stable snapshots).
    """
    from components.aml.schedule import scoring_schedule

    built = build_components(settings, target, code_dir=code_dir, version=version)
    rendered = Rendered()
    file_of: dict[str, str] = {}
    for item in built.all():
        component = comps.component_of(item)
        name = component.name.removeprefix("batchscore_") + COMPONENT_SUFFIX
        file_of[component.name] = name
        rendered.add(name, "component", component_dict(component, base_dir))

    job = scoring_pipeline_job(settings, target, built, trigger_time=trigger_time)
    rendered.add(JOB_FILE, "job", pipeline_dict(job, file_of))

    schedule = scoring_schedule(schedule_name, settings, job)
    rendered.add(SCHEDULE_FILE, "schedule", schedule_dict(schedule, JOB_FILE))
    return rendered


def render_generic(
    settings: PipelineSettings,
    target: PipelineTarget,
    *,
    base_dir: Path,
    entry_script: Path,
    input_type: str,
    mini_batch_size: str | None = None,
    input_path: str = DEFAULT_GENERIC_INPUT,
    program_arguments: str = "",
    version: str | None = None,
    model_input: tuple[str, str] | None = None,
) -> Rendered:
    """A parallel component for any entry script plus the pipeline job that runs it.
    ``model_input`` = (input type, URI) of the script's model, passed as ``--model <path>``."""
    builder = comps.generic_parallel_component(
        settings,
        target,
        entry_script=entry_script,
        input_type=input_type,
        mini_batch_size=mini_batch_size,
        program_arguments=program_arguments,
        model_input_type=model_input[0] if model_input else None,
    )
    component = comps.component_of(builder)
    component.version = version or comps.content_version(
        component, comps.hash_code_folder(Path(entry_script).resolve().parent)
    )
    rendered = Rendered()
    component_file = component.name.removeprefix("batchscore_") + COMPONENT_SUFFIX
    rendered.add(component_file, "component", component_dict(component, base_dir))
    job = generic_pipeline_job(
        settings,
        target,
        builder,
        input_type=input_type,
        input_path=input_path,
        model_input=model_input,
    )
    rendered.add(GENERIC_JOB_FILE, "job", pipeline_dict(job, {component.name: component_file}))
    return rendered


def component_dict(component: Any, base_dir: Path) -> dict[str, Any]:
    """The SDK's dict of ``component`` with ``$schema`` and a ``code`` relative to base_dir."""
    data = _relative_code(component._to_dict(), base_dir)
    return {"$schema": SCHEMAS[data["type"]], **data}


def pipeline_dict(job: Any, component_files: dict[str, str]) -> dict[str, Any]:
    """The SDK's dict of the pipeline job, steps pointing at the component files."""
    data = job._to_dict()
    for name, step in data.get("jobs", {}).items():
        # The SDK's dict leaves out a node's display name (its REST body keeps it): put it
        # back, so a job created from this file names its child jobs as the deployed one does.
        display_name = getattr(job.jobs.get(name), "display_name", None)
        if display_name:
            step["display_name"] = display_name
        component = step.get("component")
        if isinstance(component, dict) and component.get("name") in component_files:
            step["component"] = f"./{component_files[component['name']]}"
            # Parallel steps repeat their component's task; the file carries it already.
            step.pop("task", None)
    return {"$schema": SCHEMAS["pipeline"], **data}


def schedule_dict(schedule: Any, job_file: str) -> dict[str, Any]:
    """The schedule with ``create_job`` pointing at ``job_file`` plus the trigger override."""
    data = copy.deepcopy(schedule._to_dict())
    data.pop("create_job", None)
    data.pop("is_enabled", None)  # read-only in the YAML schema; the provider sets it
    data.pop("provisioning_state", None)
    data["create_job"] = {
        "type": "pipeline",
        "job": f"./{job_file}",
        "inputs": {"trigger_time": TRIGGER_TIME_MACRO},
    }
    return {"$schema": SCHEMAS["schedule"], **data}


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=4096, allow_unicode=True)


def write(rendered: Rendered, out_dir: Path) -> list[Path]:
    """Write every file into ``out_dir`` (created if needed); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered.files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def validate_folder(out_dir: Path, kinds: dict[str, str]) -> None:
    """Load every exported file back and run azure-ai-ml's offline validation.

    Raises ExportValidationError naming the file and the SDK's messages.
    """
    from azure.ai.ml import load_component, load_job
    from azure.ai.ml.entities._load_functions import load_schedule

    loaders = {"component": load_component, "job": load_job, "schedule": load_schedule}
    for name, kind in kinds.items():
        path = out_dir / name
        try:
            entity = loaders[kind](source=str(path))
            result = entity._validate()
        except Exception as exc:  # the SDK raises several exception types on load
            raise ExportValidationError(f"{path.name}: azure-ai-ml rejected it: {exc}") from exc
        if not result.passed:
            raise ExportValidationError(f"{path.name}: azure-ai-ml validation failed: {result}")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        problems = _extra_problems(kind, data, out_dir)
        if problems:
            raise ExportValidationError(f"{path.name}: " + "; ".join(problems))


# --- checks the SDK does not make offline -------------------------------------------------

_PARENT_BINDING = re.compile(r"\$\{\{\s*parent\.(inputs|outputs|jobs)\.([\w-]+)(?:\.(\w+)\.(\w+))?")


def _extra_problems(kind: str, data: dict[str, Any], folder: Path) -> list[str]:
    """What azure-ai-ml's offline validation lets through but the service would reject
    (or that would fail at run time): a missing entry script, out-of-range parallel knobs,
    bindings to steps or outputs that do not exist, a bad cron expression."""
    if kind == "component" and data.get("type") == "parallel":
        return _parallel_problems(data, folder)
    if kind == "job":
        return _binding_problems(data, folder)
    if kind == "schedule":
        return _schedule_problems(data)
    return []


def _parallel_problems(data: dict[str, Any], folder: Path) -> list[str]:
    problems = []
    task = data.get("task") or {}
    code = folder / str(task.get("code", "."))
    if not (code / str(task.get("entry_script", ""))).is_file():
        problems.append(f"task.entry_script {task.get('entry_script')!r} is not in {code.name}/")
    retry = data.get("retry_settings") or {}
    if int(retry.get("max_retries", 0)) < 0:
        problems.append("retry_settings.max_retries must be >= 0")
    if int(retry.get("timeout", 1)) <= 0:
        problems.append("retry_settings.timeout must be > 0 seconds")
    for key in ("error_threshold", "mini_batch_error_threshold"):
        if int(data.get(key, -1)) < -1:
            problems.append(f"{key} must be -1 (ignore) or >= 0")
    if int(data.get("max_concurrency_per_instance", 1)) < 1:
        problems.append("max_concurrency_per_instance must be >= 1")
    if int((data.get("resources") or {}).get("instance_count", 1)) < 1:
        problems.append("resources.instance_count must be >= 1")
    if data.get("partition_keys"):
        source = str(data.get("input_data", "")).split("inputs.")[-1].strip(" }")
        if (data.get("inputs", {}).get(source) or {}).get("type") != "mltable":
            problems.append("partition_keys need an mltable input_data")
    return problems


def _binding_problems(data: dict[str, Any], folder: Path) -> list[str]:
    problems = []
    jobs = data.get("jobs") or {}
    step_outputs = {}
    for name, step in jobs.items():
        component = step.get("component")
        outputs = set((step.get("outputs") or {}).keys())
        if isinstance(component, str) and component.startswith("./"):
            path = folder / component
            if not path.is_file():
                problems.append(f"jobs.{name}.component {component} does not exist")
                continue
            outputs |= set(yaml.safe_load(path.read_text(encoding="utf-8")).get("outputs") or {})
        step_outputs[name] = outputs
    for name, step in jobs.items():
        text = yaml.safe_dump({"inputs": step.get("inputs"), "outputs": step.get("outputs")})
        for scope, ref, sub, item in _PARENT_BINDING.findall(text):
            if scope == "inputs" and ref not in (data.get("inputs") or {}):
                problems.append(
                    f"jobs.{name} binds to pipeline input {ref!r}, which is not defined"
                )
            elif scope == "outputs" and ref not in (data.get("outputs") or {}):
                problems.append(
                    f"jobs.{name} binds to pipeline output {ref!r}, which is not defined"
                )
            elif scope == "jobs" and (
                ref not in step_outputs or (sub == "outputs" and item not in step_outputs[ref])
            ):
                problems.append(f"jobs.{name} binds to {ref}.{sub}.{item}, which does not exist")
    return problems


def _schedule_problems(data: dict[str, Any]) -> list[str]:
    trigger = data.get("trigger") or {}
    if trigger.get("type") != "cron":
        return []
    try:
        PipelineSettings(
            schedule_cron=str(trigger.get("expression", "")),
            schedule_time_zone=str(trigger.get("time_zone", "UTC")),
        )
    except ValueError as exc:
        return [str(exc).replace("\n", " ")]
    return []


def _relative_code(value: Any, base_dir: Path) -> Any:
    if isinstance(value, dict):
        return {
            key: _relpath(item, base_dir)
            if key == "code" and isinstance(item, str)
            else _relative_code(item, base_dir)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_relative_code(item, base_dir) for item in value]
    return value


def _relpath(path: str, base_dir: Path) -> str:
    if "://" in path or path.startswith("azureml:"):
        return path
    return Path(os.path.relpath(Path(path).resolve(), Path(base_dir).resolve())).as_posix()
