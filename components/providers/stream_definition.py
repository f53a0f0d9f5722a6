"""What changes on a deployed Stream Analytics job, patched in place: its event policies, its
query and its streaming units.

The azure-native provider updates a ``StreamingJob`` with a PUT of the whole job, whose body
has no inputs or outputs here (they are separate resources), and Azure answers "422 The
streaming job should have at least one input defined." (pulumi-azure-native#688). So the job
is created with its settings and transformation, then ignores changes to them
(``ignore_changes``, :data:`JOB_PATCHED_PROPERTIES`), and this dynamic resource carries them:
an update PATCHes only what changed, with the two calls Azure documents for partial updates,
neither of which touches inputs or outputs:

* ``streaming_jobs.update`` (REST ``PATCH .../streamingjobs/{job}``): "Updates an existing
  streaming job. This can be used to partially update (ie. update one or two properties) a
  streaming job without affecting the rest the job definition";
* ``transformations.update`` (``PATCH .../transformations/{name}``): the same for the query and
  the streaming units.

Lifecycle:

* create: the job was just created with these very values; they are read back and patched only
  where they differ (a stack deployed before this resource existed adopts its job the same way).
* update: stops the job (Azure refuses to change a running job, pulumi-azure-native#785), then
  patches; the StreamJobStart resource, which runs after this one, restarts the job from
  ``LastOutputEventTime`` because the same change altered its ``configHash``.
* read: the values as Azure has them, so a query changed in the portal shows as drift.
* delete: nothing; the settings go with their job.

Credentials: built inside each call (:func:`components.providers.stream_job.management_client`
uses :func:`components.providers.common.default_credential`), never an input or state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN

from components.providers import stream_job as sj
from components.providers.azure_errors import AzureCallError
from components.providers.common import call_azure, diff_result

log = logging.getLogger(__name__)

#: job settings patched here: this resource's input key -> the SDK model's attribute
JOB_SETTINGS = {
    "eventsOutOfOrderPolicy": "events_out_of_order_policy",
    "eventsOutOfOrderMaxDelayInSeconds": "events_out_of_order_max_delay_in_seconds",
    "eventsLateArrivalMaxDelayInSeconds": "events_late_arrival_max_delay_in_seconds",
    "outputErrorPolicy": "output_error_policy",
}
#: the StreamingJob properties the job resource ignores changes of (patched here instead)
JOB_PATCHED_PROPERTIES = (*JOB_SETTINGS, "transformation")
IDENTITY_KEYS = ("subscriptionId", "resourceGroupName", "jobName", "transformationName")
DEFINITION_KEYS = ("settings", "query", "streamingUnits")
INPUT_KEYS = IDENTITY_KEYS + DEFINITION_KEYS


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        return current is not None and float(current) == float(wanted)
    return str(current or "").strip() == str(wanted or "").strip()


def _job(client: Any, job: sj.JobRef) -> Any:
    return call_azure(
        client.streaming_jobs.get,
        job.resource_group,
        job.job_name,
        action="read the settings of",
        target=job.target,
        required_role=sj.REQUIRED_ROLE,
        retry=sj.RETRY,
    )


def _transformation(client: Any, job: sj.JobRef, name: str) -> Any:
    return call_azure(
        client.transformations.get,
        job.resource_group,
        job.job_name,
        name,
        action=f"read transformation {name}",
        target=job.target,
        required_role=sj.REQUIRED_ROLE,
        retry=sj.RETRY,
    )


def changed_settings(current_job: Any, props: Mapping[str, Any]) -> dict[str, Any]:
    """SDK attribute -> wanted value, for each job setting Azure holds differently."""
    wanted = props.get("settings") or {}
    return {
        attribute: wanted[key]
        for key, attribute in JOB_SETTINGS.items()
        if key in wanted and not _same(getattr(current_job, attribute, None), wanted[key])
    }


def transformation_changed(current: Any, props: Mapping[str, Any]) -> bool:
    return not _same(current.query, props["query"]) or not _same(
        current.streaming_units, props["streamingUnits"]
    )


def apply_definition(client: Any, props: Mapping[str, Any]) -> list[str]:
    """Patch what differs (the job stopped first); returns what was patched."""
    from azure.mgmt.streamanalytics.models import StreamingJob, Transformation

    job, name = sj.JobRef.from_props(props), props["transformationName"]
    settings = changed_settings(_job(client, job), props)
    query_or_units = transformation_changed(_transformation(client, job, name), props)
    if not settings and not query_or_units:
        log.info("%s already runs with this definition", job.target)
        return []
    sj.ensure_stopped(client, job)
    patched = []
    if settings:
        call_azure(
            client.streaming_jobs.update,
            job.resource_group,
            job.job_name,
            StreamingJob(**settings),
            action="update the settings of",
            target=job.target,
            required_role=sj.REQUIRED_ROLE,
            retry=sj.RETRY,
        )
        patched += sorted(settings)
    if query_or_units:
        call_azure(
            client.transformations.update,
            job.resource_group,
            job.job_name,
            name,
            Transformation(query=props["query"], streaming_units=int(props["streamingUnits"])),
            action=f"update transformation {name}",
            target=job.target,
            required_role=sj.REQUIRED_ROLE,
            retry=sj.RETRY,
        )
        patched.append("transformation")
    log.info("%s: patched %s", job.target, ", ".join(patched))
    return patched


class StreamJobDefinitionProvider(dynamic.ResourceProvider):
    """Patch the job's settings and transformation; never PUT the job (module docstring)."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = []
        for key in (*IDENTITY_KEYS, "query"):
            value = news.get(key)
            if value != UNKNOWN and (not isinstance(value, str) or not value.strip()):
                failures.append(dynamic.CheckFailure(key, f"{key} must be a non-empty string"))
        units = news.get("streamingUnits")
        if units != UNKNOWN and (isinstance(units, bool) or not isinstance(units, int | float)):
            failures.append(dynamic.CheckFailure("streamingUnits", "must be a number"))
        unknown = sorted(set(news.get("settings") or {}) - set(JOB_SETTINGS))
        if unknown:
            failures.append(dynamic.CheckFailure("settings", f"not patched here: {unknown}"))
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        return diff_result(olds, news, keys=INPUT_KEYS, replace_keys=IDENTITY_KEYS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        job = sj.JobRef.from_props(props)
        apply_definition(sj.management_client(job.subscription_id), props)
        return dynamic.CreateResult(
            f"/subscriptions/{job.subscription_id}/resourceGroups/{job.resource_group}/providers/"
            f"Microsoft.StreamAnalytics/streamingjobs/{job.job_name}/definition",
            {k: props.get(k) for k in INPUT_KEYS},
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        job = sj.JobRef.from_props(news)
        apply_definition(sj.management_client(job.subscription_id), news)
        return dynamic.UpdateResult({k: news.get(k) for k in INPUT_KEYS})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        job = sj.JobRef.from_props(props)
        client = sj.management_client(job.subscription_id)
        try:
            current_job = _job(client, job)
            current = _transformation(client, job, props["transformationName"])
        except AzureCallError as exc:
            if exc.kind == "not_found":
                return dynamic.ReadResult("", {})
            raise
        outs = {k: props.get(k) for k in IDENTITY_KEYS}
        outs.update(
            settings={
                key: getattr(current_job, attribute, None)
                for key, attribute in JOB_SETTINGS.items()
            },
            query=current.query,
            streamingUnits=current.streaming_units,
        )
        return dynamic.ReadResult(id_, outs, dict(outs))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # the settings go with their job


class StreamJobDefinitionResource(
    dynamic.Resource, module="batchscore", name="StreamJobDefinition"
):
    """The job's patchable definition as a dynamic resource; declared only by
    StreamProcessing."""

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(StreamJobDefinitionProvider(), name, dict(props), opts)
