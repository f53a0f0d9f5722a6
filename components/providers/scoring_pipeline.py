"""The ScoringPipeline component's dynamic provider: registers the Azure ML components and keeps
the scoring JobSchedule in step.

A Pulumi dynamic provider over azure-ai-ml v2 (there is no Pulumi resource for AML components
and schedules that resolves local code and pipelines the way the SDK does):

* **create / update** register the versioned components ``batchscore_extract``,
  ``batchscore_score`` (parallel) and ``batchscore_publish``, each version derived from its
  content (the SDK's own dict of the component, which holds the image digest and every
  setting, plus the hash of the ``scoring/`` files). A version that already exists is not
  registered again. Then the schedule is upserted by name with the pipeline job built from
  those registered components. Everything is in place: only a different workspace or schedule
  name replaces the resource.
* **delete** disables the schedule, waits for the disable to finish (Azure ML refuses to
  delete an enabled schedule), then deletes it. Components stay: Azure ML keeps component
  versions for the history of past runs (they can only be archived).
* **read** (``pulumi refresh``) reports drift: a schedule disabled or whose trigger was
  edited outside Pulumi comes back with the cloud's cron, time zone and enabled state, so the
  next ``pulumi up`` shows the difference and puts the declared values back.

Registering a component uploads its code to the workspace's default (identity-based) datastore
*as the deploying identity* (azure-ai-ml ``_artifacts/_artifact_utilities.py``), which needs
Storage Blob Data Contributor on the storage account (``storageAccountName``). The stack
grants it in the same deployment, so a storage 403 there is retried for a bounded time while
the assignment takes effect (:func:`~components.providers.common.retry_while_forbidden`).

Credentials: ``DefaultAzureCredential`` is created inside every method by ``CLIENT_FACTORY``,
never taken from inputs or kept in state. Azure errors become one clear message (not found,
forbidden naming the role ``AzureML Data Scientist on workspace <name>``); throttling
(HTTP 429/503) is retried with bounded exponential backoff that honors ``Retry-After``.

Pickling: Pulumi serializes the provider object with dill into the state, and runs it later in
a separate provider process. dill pickles the class *by reference*, under the name deployed
stacks know (:func:`~components.providers.common.pickled_as`); the provider process uses this
module's hooks as they are (the real factory). Nothing unpicklable (credential, client, lock)
is ever stored on the provider instance; tests replace the module-level hooks instead.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN  # a value known only after the deployment

from components.config.errors import ConfigError
from components.config.pipeline import PipelineSettings, PipelineTarget
from components.providers import common
from components.providers.azure_errors import AzureCallError, is_storage_forbidden
from components.providers.common import (
    DEFAULT_RETRY,
    RetryPolicy,
    call_azure,
    default_credential,
    diff_result,
    pickled_as,
    run_operation,
)

log = logging.getLogger(__name__)

SCORING_DIR = Path(__file__).resolve().parents[2] / "scoring"

# The resource's inputs (camelCase, as stored in the state).
INPUT_KEYS = (
    "subscriptionId",
    "resourceGroupName",
    "workspaceName",
    "scheduleName",
    "image",
    "settings",
    "codeHash",
    "modelsDatastore",
    "predictionsDatastore",
    "sqlServer",
    "sqlDatabase",
    "computeName",
    "identityClientId",
    "storageAccountName",
    "telemetryConnectionString",
)
# A schedule lives in one workspace under one name: moving it means a new one.
REPLACE_KEYS = ("subscriptionId", "resourceGroupName", "workspaceName", "scheduleName")
OUTPUT_KEYS = ("componentVersions", "scheduleId", "cronExpression", "timeZone", "enabled")
_SCHEDULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
WAIT_SECONDS = 600.0


def _default_ml_client(props: Mapping[str, Any]) -> Any:
    """An ``MLClient`` for the resource's workspace with ``DefaultAzureCredential``."""
    from azure.ai.ml import MLClient

    return MLClient(
        credential=default_credential(),
        subscription_id=props["subscriptionId"],
        resource_group_name=props["resourceGroupName"],
        workspace_name=props["workspaceName"],
    )


# Module-level hooks (see "Pickling" above): tests swap them for fakes.
CLIENT_FACTORY: Callable[[Mapping[str, Any]], Any] = _default_ml_client
RETRY: RetryPolicy = DEFAULT_RETRY


def required_role(props: Mapping[str, Any]) -> str:
    return (
        f"AzureML Data Scientist on workspace {props.get('workspaceName')} "
        f"(resource group {props.get('resourceGroupName')})"
    )


UPLOAD_ROLE = "Storage Blob Data Contributor"


def upload_scope(props: Mapping[str, Any]) -> str:
    """Where the component code goes: the workspace's storage account."""
    account = props.get("storageAccountName")
    if account:
        return f"storage account {account}"
    return f"the storage account of workspace {props.get('workspaceName')}"


def schedule_id(props: Mapping[str, Any]) -> str:
    return (
        f"/subscriptions/{props['subscriptionId']}/resourceGroups/{props['resourceGroupName']}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{props['workspaceName']}"
        f"/schedules/{props['scheduleName']}"
    )


def settings_of(props: Mapping[str, Any]) -> PipelineSettings:
    return PipelineSettings.from_mapping(props.get("settings") or {})


def target_of(props: Mapping[str, Any]) -> PipelineTarget:
    return PipelineTarget(
        image=props["image"],
        compute=props["computeName"],
        models_datastore=props["modelsDatastore"],
        predictions_datastore=props["predictionsDatastore"],
        sql_server=props["sqlServer"],
        sql_database=props["sqlDatabase"],
        identity_client_id=props["identityClientId"],
        telemetry_connection_string=_telemetry(props),
    )


def _telemetry(props: Mapping[str, Any]) -> str:
    """Stacks deployed before telemetry have no such input (no telemetry, as before); in a
    preview the value may be unknown (checked when it is known)."""
    value = props.get("telemetryConnectionString") or ""
    return "" if value == UNKNOWN else str(value)


@pickled_as("components.scoring_pipeline")  # re-exported there
class ScoringPipelineProvider(dynamic.ResourceProvider):
    """CRUD of the scoring components and schedule (see the module docstring)."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods
    input_keys = INPUT_KEYS

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        inputs = dict(news)
        if not inputs.get("scheduleName"):
            # Auto-naming: keep the name once chosen, else prefix + random suffix, so several
            # stacks can share a workspace.
            inputs["scheduleName"] = olds.get("scheduleName") or (
                f"{inputs.get('scheduleNamePrefix') or 'batchscore-scoring'}-{secrets.token_hex(4)}"
            )
        failures = []
        name = inputs["scheduleName"]
        if name != UNKNOWN and not _SCHEDULE_NAME.match(str(name)):
            failures.append(
                dynamic.CheckFailure(
                    "scheduleName",
                    f"{name!r}: starts with a letter, then letters, digits, '-' or '_'",
                )
            )
        if UNKNOWN not in str(inputs.get("settings")):
            try:
                settings_of(inputs)
            except ConfigError as exc:
                failures.append(dynamic.CheckFailure("settings", str(exc)))
        target_keys = ("image", "computeName", "modelsDatastore", "predictionsDatastore")
        target_keys += ("sqlServer", "sqlDatabase", "identityClientId")
        if all(inputs.get(k) not in (None, UNKNOWN) for k in target_keys):
            try:
                target_of(inputs)
            except ConfigError as exc:
                failures.append(dynamic.CheckFailure("image", str(exc)))
        return dynamic.CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        return diff_result(olds, news, keys=self.input_keys, replace_keys=REPLACE_KEYS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        outs = self._apply(props)
        return dynamic.CreateResult(outs["scheduleId"], outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(self._apply(news))

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Register the components and upsert the schedule (the training pipeline's provider
        builds other components around the same machinery)."""
        return _apply(props)

    def _from_cloud(self, props: Mapping[str, Any], cloud: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs the schedule as read from Azure implies (its cron, zone, state)."""
        settings = dict(props.get("settings") or {})
        settings.update(
            scheduleCron=cloud["cronExpression"],
            scheduleTimeZone=cloud["timeZone"],
            scheduleEnabled=cloud["enabled"],
        )
        return {"settings": settings}

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        client = CLIENT_FACTORY(props)
        name = props["scheduleName"]
        where = _where(props)
        role = required_role(props)
        try:
            # Only a disabled schedule can be deleted: the disable must have finished first.
            run_operation(
                client.schedules.begin_disable,
                name=name,
                action=f"disable schedule {name}",
                target=where,
                required_role=role,
                retry=RETRY,
                timeout_seconds=WAIT_SECONDS,
            )
        except AzureCallError as exc:
            if exc.kind == "not_found":
                log.info("schedule %s is already gone from %s", name, where)
                return
            raise
        run_operation(
            client.schedules.begin_delete,
            name=name,
            action=f"delete schedule {name}",
            target=where,
            required_role=role,
            retry=RETRY,
            timeout_seconds=WAIT_SECONDS,
        )

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        client = CLIENT_FACTORY(props)
        name = props["scheduleName"]
        try:
            schedule = call_azure(
                client.schedules.get,
                name=name,
                action=f"read schedule {name}",
                target=_where(props),
                required_role=required_role(props),
                retry=RETRY,
            )
        except AzureCallError as exc:
            if exc.kind == "not_found":
                return dynamic.ReadResult("", {})  # deleted outside Pulumi: gone from state
            raise
        cloud = _schedule_state(schedule)
        changed = self._from_cloud(props, cloud)
        inputs = {k: props[k] for k in self.input_keys if k in props}
        inputs.update(changed)
        drift = {
            k: (props.get(k), cloud[k])
            for k in ("cronExpression", "timeZone", "enabled")
            if props.get(k) is not None and props.get(k) != cloud[k]
        }
        if drift:
            log.warning("schedule %s drifted outside Pulumi: %s", name, drift)
        return dynamic.ReadResult(id_, {**props, **cloud, **changed}, inputs)


def _apply(props: Mapping[str, Any]) -> dict[str, Any]:
    """Register missing component versions, then upsert the schedule; returns the outputs."""
    from components.aml import components as comps
    from components.aml.pipeline import ScoringComponents, build_components, scoring_pipeline_job
    from components.aml.schedule import scoring_schedule

    settings = settings_of(props)
    target = target_of(props)
    built = build_components(settings, target, code_dir=SCORING_DIR, code_hash=props["codeHash"])

    def schedule_of(registered: Mapping[str, Any]) -> Any:
        # The schedule's job points at the registered versions (by id), never re-uploading code.
        from_registry = ScoringComponents(
            extract=registered[comps.EXTRACT_NAME],
            score=registered[comps.SCORE_NAME],
            publish=registered.get(comps.PUBLISH_NAME),
        )
        job = scoring_pipeline_job(settings, target, from_registry)
        return scoring_schedule(props["scheduleName"], settings, job)

    return register_and_schedule(props, built.all(), schedule_of, input_keys=INPUT_KEYS)


def register_and_schedule(
    props: Mapping[str, Any],
    items: list[Any],
    schedule_of: Callable[[Mapping[str, Any]], Any],
    *,
    input_keys: tuple[str, ...],
) -> dict[str, Any]:
    """Register every component of ``items`` whose content version is missing (retrying a
    storage 403 while the deployer's blob role propagates), then upsert the schedule
    ``schedule_of(registered components by name)`` builds; returns the resource's outputs.
    The one implementation for every pipeline the stack schedules."""
    from components.aml import components as comps

    client = CLIENT_FACTORY(props)
    where = _where(props)
    role = required_role(props)
    registered = {}
    for item in items:
        component_name = comps.component_of(item).name
        registered[component_name] = common.retry_while_forbidden(
            lambda item=item: _ensure_component(client, item, where, role),
            role=UPLOAD_ROLE,
            scope=upload_scope(props),
            action=f"upload the code of component {component_name}",
            target=where,
            wait=common.ROLE_PROPAGATION,
            refused=is_storage_forbidden,
        )
    versions = {name: c.version for name, c in registered.items()}
    schedule = schedule_of(registered)
    name = props["scheduleName"]
    result = run_operation(
        client.schedules.begin_create_or_update,
        schedule,
        action=f"create or update schedule {name}",
        target=where,
        required_role=role,
        retry=RETRY,
        timeout_seconds=WAIT_SECONDS,
    )
    state = _schedule_state(result if result is not None else schedule)
    outs = {k: props[k] for k in input_keys if k in props}
    outs.update(state, componentVersions=versions, scheduleId=schedule_id(props))
    return outs


def _ensure_component(client: Any, item: Any, where: str, role: str) -> Any:
    """The registered component for ``item``'s name and content version, created if missing."""
    from components.aml.components import component_of

    component = component_of(item)
    label = f"component {component.name} version {component.version}"
    try:
        return call_azure(
            client.components.get,
            name=component.name,
            version=component.version,
            action=f"read {label}",
            target=where,
            required_role=role,
            retry=RETRY,
        )
    except AzureCallError as exc:
        if exc.kind != "not_found":
            raise
    log.info("registering %s in %s", label, where)
    return call_azure(
        client.components.create_or_update,
        component,
        action=f"register {label}",
        target=where,
        required_role=role,
        retry=RETRY,
    )


def _schedule_state(schedule: Any) -> dict[str, Any]:
    """Trigger expression, time zone and enabled state of a schedule entity."""
    trigger = getattr(schedule, "trigger", None)
    zone = getattr(trigger, "time_zone", None)
    enabled = getattr(schedule, "is_enabled", None)
    return {
        "cronExpression": getattr(trigger, "expression", None),
        "timeZone": getattr(zone, "value", zone),
        "enabled": True if enabled is None else bool(enabled),
    }


def _where(props: Mapping[str, Any]) -> str:
    return (
        f"workspace {props.get('workspaceName')} in resource group {props.get('resourceGroupName')}"
    )


# ------------------------------------------------------------------------ the dynamic resource


class ScoringPipelineResource(dynamic.Resource, module="batchscore", name="ScoringPipeline"):
    """The schedule as a dynamic resource; declared only by the ScoringPipeline component."""

    scheduleName: pulumi.Output[str]  # noqa: N815 (dynamic outputs keep their state key)
    scheduleId: pulumi.Output[str]  # noqa: N815
    componentVersions: pulumi.Output[dict]  # noqa: N815
    cronExpression: pulumi.Output[str]  # noqa: N815
    timeZone: pulumi.Output[str]  # noqa: N815
    enabled: pulumi.Output[bool]

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        outputs = {k: None for k in OUTPUT_KEYS}
        super().__init__(ScoringPipelineProvider(), name, {**outputs, **props}, opts)
