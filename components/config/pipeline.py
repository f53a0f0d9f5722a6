"""Typed, validated settings of the scoring pipeline, read from the Pulumi stack configuration.

Two halves:

* :class:`PipelineSettings`: the knobs of the schedule and of the parallel job, one per
  ``Pulumi.yaml`` config key (``scheduleCron`` ... ``appendRows``). Defaults come from
  ``Pulumi.yaml``, per-stack overrides from ``Pulumi.<stack>.yaml`` (``batchscore:<key>``).
* :class:`PipelineTarget`: where the pipeline runs (the image by digest, the cluster, the
  datastores, the SQL database, the cluster identity). The Pulumi program fills it from
  other components' outputs; ``pipeline export`` uses marked placeholders unless given.

Every validation error names the config key and the allowed values; all errors are
reported at once. This module imports neither Pulumi nor azure-ai-ml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from components.config.errors import ConfigError
from components.config.files import find_project_dir
from components.config.keyed import KeyedSettings
from scoring.log_config import LOG_LEVELS
from scoring.partitioning import LAYOUTS as PARTITIONINGS

PROJECT = "batchscore"
PLACEHOLDER_IMAGE = (
    "PLACEHOLDER-registry.azurecr.io/batchscore-scoring@sha256:" + "0" * 64
)  # marked placeholder: `pipeline export --image REF` or the stack's image replaces it
PLACEHOLDER = "PLACEHOLDER"
#: the folder of the predictions datastore under which each run writes its window folder
PREDICTIONS_PATH = "scored"
PLACEHOLDER_CLIENT_ID = "00000000-0000-0000-0000-000000000000"

_MINI_BATCH_SIZE = re.compile(r"^\s*\d+\s*$|^\s*\d+(\.\d+)?\s*(kb|mb|gb)\s*$", re.IGNORECASE)
_DIGEST_REF = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
_DATASTORE_NAME = re.compile(r"^[A-Za-z0-9_]{1,255}$")


@dataclass(frozen=True)
class PipelineSettings(KeyedSettings):
    """The scoring pipeline's knobs. ``metadata["key"]`` is the Pulumi.yaml config key."""

    WHAT: ClassVar[str] = "scoring pipeline settings"

    schedule_cron: str = field(default="0 * * * *", metadata={"key": "scheduleCron"})
    schedule_time_zone: str = field(default="UTC", metadata={"key": "scheduleTimeZone"})
    schedule_enabled: bool = field(default=True, metadata={"key": "scheduleEnabled"})
    lookback_minutes: int = field(default=60, metadata={"key": "lookbackMinutes"})
    instance_count: int = field(default=1, metadata={"key": "scoringInstanceCount"})
    max_concurrency_per_instance: int = field(
        default=2, metadata={"key": "maxConcurrencyPerInstance"}
    )
    error_threshold: int = field(default=-1, metadata={"key": "errorThreshold"})
    mini_batch_error_threshold: int = field(default=5, metadata={"key": "miniBatchErrorThreshold"})
    max_retries: int = field(default=2, metadata={"key": "maxRetries"})
    timeout_seconds: int = field(default=300, metadata={"key": "miniBatchTimeoutSeconds"})
    logging_level: str = field(default="INFO", metadata={"key": "scoringLoggingLevel"})
    append_rows: bool = field(default=True, metadata={"key": "appendRows"})
    mini_batch_size: str = field(default="10", metadata={"key": "miniBatchSize"})
    partitioning: str = field(default="shard", metadata={"key": "scoringPartitioning"})
    shard_rows: int = field(default=200_000, metadata={"key": "shardRows"})

    def __post_init__(self) -> None:
        problems = _check_settings(self)
        if problems:
            raise ConfigError.listing(self.WHAT, problems)

    def parallel_job_knobs(self) -> dict[str, Any]:
        """The v2 parallel job's knobs (``parallel_run_function`` keywords), from this config:
        the one mapping of config keys to the job. The local runner reads the same mapping
        (:meth:`local_runner_knobs`) so ``batchscore score --stack`` runs as the cluster does."""
        return {
            "instance_count": self.instance_count,
            "max_concurrency_per_instance": self.max_concurrency_per_instance,
            "error_threshold": self.error_threshold,
            "mini_batch_error_threshold": self.mini_batch_error_threshold,
            "retry_settings": {"max_retries": self.max_retries, "timeout": self.timeout_seconds},
            "logging_level": self.logging_level,
        }

    def local_runner_knobs(self) -> dict[str, Any]:
        """The same knobs for the local runner: as many workers as the job runs processes
        (nodes x processes per node), the mini-batch size and the append-or-summary output."""
        job = self.parallel_job_knobs()
        return {
            "workers": job["instance_count"] * job["max_concurrency_per_instance"],
            "mini_batch_size": self.mini_batch_size,
            "error_threshold": job["error_threshold"],
            "mini_batch_error_threshold": job["mini_batch_error_threshold"],
            "max_retries": job["retry_settings"]["max_retries"],
            "timeout": float(job["retry_settings"]["timeout"]),
            "append_rows": self.append_rows,
            "log_level": job["logging_level"],
        }


@dataclass(frozen=True)
class PipelineTarget:
    """Where and as whom the pipeline runs: filled from the other components' outputs.

    ``image`` must be a reference by digest (``registry/repo@sha256:<64 hex>``) so a
    component version always means the same bits. ``identity_client_id`` is the client id
    of the cluster's user-assigned identity: the steps run as it (SQL, datastores).
    ``telemetry_connection_string`` is the Application Insights connection string the publish
    step sends the run's summary with (empty: no telemetry). It names the resource, not a
    credential: ingestion takes the identity's Entra token (:mod:`scoring.telemetry`).
    """

    image: str = PLACEHOLDER_IMAGE
    compute: str = f"{PLACEHOLDER}-cluster"
    models_datastore: str = "models"
    #: folder of the model store in the models container (`batchscore models upload --prefix`)
    models_path: str = "store"
    predictions_datastore: str = "predictions"
    sql_server: str = f"{PLACEHOLDER}-sql-server"
    sql_database: str = f"{PLACEHOLDER}-database"
    identity_client_id: str = PLACEHOLDER_CLIENT_ID
    telemetry_connection_string: str = ""

    def __post_init__(self) -> None:
        problems = []
        telemetry = self.telemetry_connection_string
        if telemetry and "InstrumentationKey=" not in telemetry:
            problems.append(
                "telemetry_connection_string: an Application Insights connection string "
                "names its InstrumentationKey= and IngestionEndpoint= (got something else)"
            )
        if not _DIGEST_REF.match(self.image or ""):
            problems.append(
                f"image: must be a reference by digest like registry/repo@sha256:<64 hex> "
                f"(got {self.image!r})"
            )
        for name in ("models_datastore", "predictions_datastore"):
            value = getattr(self, name)
            if not _DATASTORE_NAME.match(value or ""):
                problems.append(
                    f"{name}: a datastore name has letters, digits and underscores (got {value!r})"
                )
        if not self.models_path.strip("/") or "//" in self.models_path:
            problems.append(
                f"models_path: a folder inside the models container, e.g. store "
                f"(got {self.models_path!r})"
            )
        for name in ("compute", "sql_server", "sql_database", "identity_client_id"):
            if not str(getattr(self, name) or "").strip():
                problems.append(f"{name}: must not be empty")
        if problems:
            raise ConfigError.listing("scoring pipeline target", problems)

    def placeholders(self) -> dict[str, str]:
        """``{field: value}`` of every field still holding its stand-in, which no deployment
        runs with: the image, the cluster, the SQL server and database, the identity."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) == f.default
            and (PLACEHOLDER in str(f.default) or f.default == PLACEHOLDER_CLIENT_ID)
        }

    @property
    def sql_host(self) -> str:
        """The server's host name (a bare server name gets the Azure SQL suffix)."""
        server = self.sql_server.strip()
        return server if "." in server else f"{server}.database.windows.net"

    def sql_url(self) -> str:
        """SQLAlchemy URL of the readings database, with no user and no password.

        ``scoring.data.db`` authenticates such a URL with an Entra token from
        ``DefaultAzureCredential``; the step sets ``AZURE_CLIENT_ID`` to this target's
        ``identity_client_id`` so the token is the cluster's user-assigned identity's.
        """
        return (
            f"mssql+pyodbc://@{self.sql_host}/{self.sql_database}"
            "?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes"
        )

    def models_uri(self) -> str:
        """The model store folder in the ``models`` container. Not the container's root:
        azure-ai-ml's own datastore path parser (``AzureMLDatastorePathUri``) rejects
        ``azureml://datastores/<name>/paths/`` with nothing after ``paths/``."""
        return f"azureml://datastores/{self.models_datastore}/paths/{self.models_path.strip('/')}/"

    def predictions_uri(self) -> str:
        """Root under which the publish step writes one ``window=<end>/`` folder per run."""
        return f"azureml://datastores/{self.predictions_datastore}/paths/{PREDICTIONS_PATH}/"


def stack_settings(stack: str | None, project_dir: Path | None = None) -> PipelineSettings:
    """:meth:`PipelineSettings.from_stack` for a command line: Pulumi.yaml found as
    :func:`find_project_dir` does unless given."""
    return PipelineSettings.from_stack(stack, project_dir or find_project_dir())


def _azure_ml_time_zones() -> frozenset[str]:
    """The time zone names Azure ML schedules accept (empty if azure-ai-ml is absent)."""
    try:
        from azure.ai.ml.constants import TimeZone
    except ImportError:  # the scoring image has no azure-ai-ml; nothing schedules there
        return frozenset()
    return frozenset(zone.value for zone in TimeZone)


def _check_settings(s: PipelineSettings) -> list[str]:
    """Every problem with ``s``, each naming the config key and what is allowed."""
    from croniter import croniter  # light, but only needed here

    problems: list[str] = []
    cron_fields = str(s.schedule_cron).split()
    if len(cron_fields) != 5 or not croniter.is_valid(s.schedule_cron):
        problems.append(
            "scheduleCron: must be a cron expression of 5 fields 'minute hour day month weekday' "
            f"(got {s.schedule_cron!r})"
        )
    elif cron_fields[2] != "*" or cron_fields[3] != "*":
        problems.append(
            "scheduleCron: Azure ML ignores the day-of-month and month fields; set them to '*' "
            f"and use minute, hour and weekday (got {s.schedule_cron!r})"
        )
    zones = _azure_ml_time_zones()
    if not str(s.schedule_time_zone).strip() or (zones and s.schedule_time_zone not in zones):
        problems.append(
            "scheduleTimeZone: must be a Windows time zone name that Azure ML accepts, e.g. UTC, "
            f"'W. Europe Standard Time', 'Pacific Standard Time' (got {s.schedule_time_zone!r})"
        )
    for name, key, minimum in (
        ("lookback_minutes", "lookbackMinutes", 1),
        ("instance_count", "scoringInstanceCount", 1),
        ("max_concurrency_per_instance", "maxConcurrencyPerInstance", 1),
        ("error_threshold", "errorThreshold", -1),
        ("mini_batch_error_threshold", "miniBatchErrorThreshold", -1),
        ("max_retries", "maxRetries", 0),
        ("timeout_seconds", "miniBatchTimeoutSeconds", 1),
        ("shard_rows", "shardRows", 1),
    ):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            allowed = "-1 (ignore) or more" if minimum == -1 else f"an integer >= {minimum}"
            problems.append(f"{key}: must be {allowed} (got {value!r})")
    if s.logging_level not in LOG_LEVELS:
        problems.append(
            f"scoringLoggingLevel: must be one of {', '.join(LOG_LEVELS)} (got {s.logging_level!r})"
        )
    if not _MINI_BATCH_SIZE.match(str(s.mini_batch_size)):
        problems.append(
            "miniBatchSize: must be a file count like '10' or a size like '100kb', '5mb', '1gb' "
            f"(got {s.mini_batch_size!r})"
        )
    if s.partitioning not in PARTITIONINGS:
        problems.append(
            f"scoringPartitioning: must be one of {', '.join(PARTITIONINGS)} "
            f"(got {s.partitioning!r})"
        )
    for name, key in (("schedule_enabled", "scheduleEnabled"), ("append_rows", "appendRows")):
        if not isinstance(getattr(s, name), bool):
            problems.append(f"{key}: must be true or false (got {getattr(s, name)!r})")
    return problems
