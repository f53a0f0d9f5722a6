"""``batchscore pipeline export|run``: the Azure ML pipeline definitions, and one run of them.

``run`` submits the deployed schedule's job now and follows it (:mod:`batchscore.aml.run`).
``export`` writes the components, the pipeline job and the schedule of the scoring pipeline
(or, with ``--entry-script``, a parallel job for any entry script) and validates every file offline
with azure-ai-ml. Settings come from ``Pulumi.yaml`` (+ ``Pulumi.<stack>.yaml`` with
``--stack``); what only a deployment knows (image, cluster, SQL server, identity) comes from
flags or stays a clearly marked PLACEHOLDER.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from scoring.data.files import require_output_folder
from scoring.errors import UsageError
from scoring.work_folder import AML_FOLDER

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="pipeline_action", metavar="<action>")
    export = actions.add_parser(
        "export",
        help="write the Azure ML YAML (components, pipeline job, schedule) and validate it",
        description="Write the Azure ML YAML and validate it offline with azure-ai-ml.",
    )
    export.add_argument(
        "--out", type=Path, default=AML_FOLDER, help=f"folder to write into (default: {AML_FOLDER})"
    )
    export.add_argument("--stack", help="read Pulumi.<stack>.yaml over the Pulumi.yaml defaults")
    export.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="folder of Pulumi.yaml (default: this folder or the nearest one above it with one)",
    )
    target = export.add_argument_group("deployment (PLACEHOLDER values unless given)")
    target.add_argument("--image", help="scoring image by digest: registry/repo@sha256:<hex>")
    target.add_argument("--compute", help="AmlCompute cluster name")
    target.add_argument("--sql-server", help="Azure SQL server (name or FQDN)")
    target.add_argument("--sql-database", help="Azure SQL database")
    target.add_argument("--identity-client-id", help="client id of the cluster's identity")
    target.add_argument("--models-datastore", help="datastore of the model store")
    target.add_argument("--predictions-datastore", help="datastore of the predictions")
    export.add_argument("--schedule-name", default="batchscore-scoring", help="schedule name")
    export.add_argument(
        "--trigger-time",
        help="window end of the standalone pipeline job (a backfill), ISO 8601; default: now "
        "(the schedule passes ${{creation_context.trigger_time}} instead)",
    )
    export.add_argument("--version", help="version of every component (default: from content)")
    generic = export.add_argument_group("generic batch inference (any entry script)")
    generic.add_argument("--entry-script", type=Path, help="entry script with init()/run()")
    generic.add_argument(
        "--input-type", choices=["mltable", "uri_folder"], help="input of the parallel job"
    )
    generic.add_argument("--mini-batch-size", help="files per mini-batch, or a size like 10mb")
    generic.add_argument("--input-path", help="input data URI (azureml://datastores/...)")
    generic.add_argument("--program-arguments", default="", help="arguments for the script")
    generic.add_argument(
        "--model-input",
        help="URI of the script's model (azureml://datastores/...); the script gets it as "
        "--model <local path>",
    )
    generic.add_argument(
        "--model-input-type",
        default="uri_file",
        help="input type of --model-input: uri_file (default), uri_folder, custom_model, "
        "mlflow_model",
    )
    export.add_argument(
        "--no-validate", action="store_true", help="skip the offline validation (not advised)"
    )
    _add_run_arguments(actions)


def _deployment_arguments() -> argparse.ArgumentParser:
    """Which deployment, and how long to follow: the flags ``run`` and ``backfill`` share."""
    parent = argparse.ArgumentParser(add_help=False)
    where = parent.add_argument_group("which deployment (one of)")
    where.add_argument(
        "--stack", help="a deployed Pulumi stack: reads its outputs with `pulumi stack output`"
    )
    where.add_argument("--workspace-id", help="the workspace's resource id (stack output)")
    where.add_argument("--schedule-name", help="the scoring schedule's name (stack output)")
    parent.add_argument(
        "--poll-seconds", type=float, default=15.0, help="status poll interval (default 15)"
    )
    parent.add_argument(
        "--timeout-minutes", type=float, default=240.0, help="stop waiting after (default 240)"
    )
    return parent


def _add_run_arguments(actions) -> None:
    deployment = _deployment_arguments()
    run_now = actions.add_parser(
        "run",
        parents=[deployment],
        help="submit one run of the deployed scoring pipeline now and follow it",
        description="Submit the job the stack's schedule submits (read from the workspace), "
        "for the window ending --end, and with --wait follow it: on failure the first real "
        "error of the failing step (from its logs), on success where the predictions landed. "
        "Signs in with DefaultAzureCredential (AzureML Data Scientist on the workspace).",
    )
    run_now.add_argument(
        "--pipeline",
        choices=tuple(PIPELINES),
        default="scoring",
        help="which deployed pipeline: scoring (default) or training (retrain, gate, the model "
        "store's next generation; --end is the training window's end)",
    )
    run_now.add_argument(
        "--end",
        default="now",
        help="window end: ISO 8601, 'now' (default), or 'latest' (the last TS in the table, "
        "resolved by the extract step)",
    )
    run_now.add_argument("--wait", action="store_true", help="follow the run until it ends")
    backfill = actions.add_parser(
        "backfill",
        parents=[deployment],
        help="close a gap: one run per window of the schedule between --from and --to",
        description="Submit the schedule's job once for every window end its cron fires at "
        "in [--from, --to] (its time zone), at most --max-parallel at a time, skipping windows "
        "whose run summary is already in the predictions container (unless --force); follow "
        "them and print every window's status, rows published and first real error. Exit 0 "
        "when every window is closed (succeeded, empty, or already published), 1 otherwise. "
        "Signs in with DefaultAzureCredential (AzureML Data Scientist on the workspace, "
        "Storage Blob Data Reader on the predictions container).",
    )
    backfill.add_argument(
        "--from", dest="start", required=True, metavar="T1", help="first window end, ISO 8601"
    )
    backfill.add_argument(
        "--to", dest="end", required=True, metavar="T2", help="last window end, ISO 8601 or 'now'"
    )
    backfill.add_argument(
        "--force", action="store_true", help="re-run windows already published (replaces them)"
    )
    backfill.add_argument(
        "--max-parallel", type=int, default=2, metavar="N", help="runs at a time (default 2)"
    )
    store = backfill.add_argument_group(
        "where the run summaries are (default: the workspace's predictions datastore)"
    )
    from batchscore.commands.blob_source import add_blob_auth

    add_blob_auth(store.add_mutually_exclusive_group())
    store.add_argument(
        "--predictions-datastore",
        default="predictions",
        help="the datastore of the predictions (default: predictions)",
    )
    store.add_argument(
        "--container", default=None, help="the predictions container (with --account-url ...)"
    )


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "pipeline_action", None)
    if action == "run":
        return _run_now(args)
    if action == "backfill":
        return _backfill(args)
    if action != "export":
        raise UsageError(
            "pipeline: choose an action: export, run or backfill (e.g. `batchscore pipeline "
            "export --out DIR`)"
        )
    require_output_folder("--out", args.out)
    if args.trigger_time is not None:
        from scoring.steps.extract import check_end

        check_end(args.trigger_time)  # the extract step would refuse it only on the cluster
    from batchscore.aml import export
    from components.config.pipeline import PipelineTarget, stack_settings

    settings = stack_settings(args.stack, args.project_dir)
    target = PipelineTarget(**_target_overrides(args))

    out_dir: Path = args.out
    try:
        if args.entry_script is not None:
            rendered = _render_generic(args, settings, target, out_dir)
        else:
            if args.input_type or args.mini_batch_size or args.input_path:
                raise UsageError("--input-type/--mini-batch-size/--input-path need --entry-script")
            rendered = export.render_scoring(
                settings,
                target,
                base_dir=out_dir,
                schedule_name=args.schedule_name,
                trigger_time=args.trigger_time or export.STANDALONE_TRIGGER_TIME,
                version=args.version,
            )
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc).replace("\n ", "")) from exc

    written = export.write(rendered, out_dir)
    for path in written:
        print(f"wrote {path}")
    placeholders = _warn_of_placeholders(target, written)
    if args.no_validate:
        print("offline validation skipped (--no-validate)")
        return 0
    try:
        export.validate_folder(out_dir, rendered.kinds)
    except export.ExportValidationError as exc:
        print(f"validation failed: {exc}")
        return 1
    verdict = "ok"
    if placeholders:
        verdict += f", but not deployable until {', '.join(placeholders)} replace the placeholders"
    print(f"validated {len(written)} file(s) offline with azure-ai-ml: {verdict}")
    return 0


#: PipelineTarget field -> the flag that gives it (the flag's dest is the field's name)
TARGET_FLAGS = {
    "image": "--image",
    "compute": "--compute",
    "sql_server": "--sql-server",
    "sql_database": "--sql-database",
    "identity_client_id": "--identity-client-id",
    "models_datastore": "--models-datastore",
    "predictions_datastore": "--predictions-datastore",
}


#: what each stand-in holds the place of, and where a deployed stack has the real value
PLACEHOLDER_MEANING = {
    "--image": "the scoring image by digest (stack output scoringImageRef)",
    "--compute": "the AmlCompute cluster (stack output computeClusterName)",
    "--sql-server": "the Azure SQL server (stack output sqlServerFqdn)",
    "--sql-database": "the readings database (stack output sqlDatabaseName)",
    "--identity-client-id": "the client id of the cluster's user-assigned identity",
    "--input-path": "the data the job reads (azureml://datastores/<store>/paths/<folder>/)",
}


def _warn_of_placeholders(target, written: list[Path]) -> list[str]:
    """One warning per stand-in value the written files hold, naming the flag that replaces
    it; the flags, in order."""
    from batchscore.aml.export import DEFAULT_GENERIC_INPUT

    text = "".join(path.read_text(encoding="utf-8") for path in written)
    stand_ins = {TARGET_FLAGS[field]: value for field, value in target.placeholders().items()}
    stand_ins["--input-path"] = DEFAULT_GENERIC_INPUT
    flags = [flag for flag, value in stand_ins.items() if value in text]
    for flag in flags:
        log.warning(
            "%s not given: wrote the placeholder %s for %s",
            flag,
            stand_ins[flag],
            PLACEHOLDER_MEANING[flag],
        )
    return flags


#: --pipeline -> (its schedule's stack output, the step whose summary output tells the outcome)
PIPELINES = {
    "scoring": ("scoringScheduleName", "publish"),
    "training": ("trainingScheduleName", "promote"),
}


def _deployment(args: argparse.Namespace) -> tuple[str, str]:
    """(workspace id, schedule name) from the flags, or from the stack's outputs."""
    if args.workspace_id or args.schedule_name:
        if not (args.workspace_id and args.schedule_name):
            raise UsageError("--workspace-id and --schedule-name go together (or use --stack)")
        return args.workspace_id, args.schedule_name
    if not args.stack:
        raise UsageError("pipeline run needs --stack STACK, or --workspace-id and --schedule-name")
    outputs = stack_outputs(args.stack)
    schedule_output = PIPELINES[getattr(args, "pipeline", "scoring")][0]
    missing = [key for key in ("mlWorkspaceId", schedule_output) if not outputs.get(key)]
    if missing:
        raise UsageError(f"stack {args.stack}: no output {', '.join(missing)} (deployed yet?)")
    return outputs["mlWorkspaceId"], outputs[schedule_output]


def stack_outputs(stack: str) -> dict:
    """``pulumi stack output --json`` of a stack (the Pulumi CLI, logged in to its backend)."""
    import json
    import shutil
    import subprocess

    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UsageError(
            "--stack needs the Pulumi CLI on PATH; or pass --workspace-id and --schedule-name "
            "(`pulumi stack output mlWorkspaceId` / `scoringScheduleName`)"
        )
    done = subprocess.run(
        [pulumi, "stack", "output", "--json", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise UsageError(f"pulumi stack output --stack {stack}: {reason[-1] if reason else '?'}")
    return json.loads(done.stdout or "{}")


def _run_now(args: argparse.Namespace) -> int:
    from batchscore.aml import run as aml_run
    from scoring.errors import EXIT_EMPTY, EXIT_FAILED, EXIT_OK

    if args.poll_seconds <= 0 or args.timeout_minutes <= 0:
        raise UsageError("--poll-seconds and --timeout-minutes must be above 0")
    from scoring.steps.extract import check_end

    check_end(args.end)  # a bad time is a usage error before anything is submitted; 'latest'
    # is resolved by the extract step against Azure SQL, where the table is
    workspace_id, schedule_name = _deployment(args)
    workspace = aml_run.Workspace.from_id(workspace_id)
    client = CLIENT_FACTORY(workspace)
    report = aml_run.run_now(
        client,
        schedule_name,
        args.end,
        wait=args.wait,
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_minutes * 60,
        summary_step=PIPELINES[args.pipeline][1],
    )
    if report.studio_url:
        print(f"studio: {report.studio_url}")
    if not args.wait:
        print("not waiting: pass --wait to follow the run here")
        return EXIT_OK
    if report.status != aml_run.SUCCEEDED:
        print(f"run {report.job_name} {report.status}", file=sys.stderr)
        if report.error_text:
            where = f"step {report.error_step}"
            if report.error_file:
                where += f", {report.error_file}"
            print(f"first error ({where}):\n{report.error_text}", file=sys.stderr)
        return EXIT_FAILED
    summary = report.summary or {}
    if args.pipeline == "training":
        return _training_outcome(report.job_name, summary)
    print(
        f"run {report.job_name} completed: {summary.get('status', '?')}, window "
        f"{summary.get('window', '?')}, {summary.get('rows_published', '?')} rows published "
        f"({summary.get('rows_missing', '?')} missing, {summary.get('anomalies', '?')} anomalies)"
    )
    if summary.get("window"):
        print(f"predictions: azureml://datastores/predictions/paths/scored/{summary['window']}/")
    for failure in summary.get("failed_mini_batches") or []:
        print(f"  failed mini-batch {failure.get('label')}: {failure.get('reason')}")
    return EXIT_EMPTY if summary.get("status") == "empty_window" else EXIT_OK


def _training_outcome(job_name: str, summary: dict) -> int:
    """What a training run did (its promote step's summary); ``failed`` exits 1."""
    from scoring.errors import EXIT_FAILED, EXIT_OK

    counts = ", ".join(
        f"{summary.get(k, '?')} {k}" for k in ("promoted", "added", "rejected", "failed", "kept")
    )
    generation = summary.get("generation") or "unchanged"
    print(
        f"run {job_name} completed: {summary.get('status', '?')}, generation {generation} "
        f"({counts})"
    )
    return EXIT_FAILED if summary.get("status") == "failed" else EXIT_OK


def _backfill(args: argparse.Namespace) -> int:
    from batchscore.aml import backfill
    from scoring.errors import EXIT_FAILED, EXIT_OK
    from scoring.steps.publish import window_folder

    if args.poll_seconds <= 0 or args.timeout_minutes <= 0:
        raise UsageError("--poll-seconds and --timeout-minutes must be above 0")
    if args.max_parallel < 1:
        raise UsageError(f"--max-parallel {args.max_parallel}: must be at least 1")
    start, end = (
        _window_end(flag, text) for flag, text in (("--from", args.start), ("--to", args.end))
    )
    workspace_id, schedule_name = _deployment(args)
    client = CLIENT_FACTORY(aml_workspace(workspace_id))
    expression, zone = backfill.schedule_cadence(client, schedule_name)
    ends = backfill.window_ends(expression, zone, start, end)
    if not ends:
        print(f"no window of '{expression}' ({zone}) ends in [{args.start}, {args.end}]")
        return EXIT_OK
    folders = {window_folder(end) for end in ends}
    published = set() if args.force else _published(args, client, folders)
    windows = backfill.plan(ends, published, force=args.force)
    skipped = sum(1 for w in windows if w.status == backfill.SKIPPED)
    print(
        f"{len(windows)} window(s) of '{expression}' ({zone}): {len(windows) - skipped} to run, "
        f"{skipped} already published" + (" (--force: none skipped)" if args.force else "")
    )
    backfill.run_windows(
        client,
        schedule_name,
        windows,
        max_parallel=args.max_parallel,
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_minutes * 60,
    )
    print(backfill.table(windows))
    return EXIT_OK if all(w.closed for w in windows) else EXIT_FAILED


def _window_end(flag: str, text: str):
    """A fixed window end (naive UTC) from ``flag``; 'latest' has no place in a backfill."""
    from scoring.steps.extract import parse_end

    if text.strip().lower() == "latest":
        raise UsageError(f"{flag} latest: give a time (a backfill needs fixed window ends)")
    try:
        return parse_end(text)
    except UsageError as exc:
        raise UsageError(f"{flag} {text!r} is not an ISO 8601 time or 'now'") from exc


def _published(args: argparse.Namespace, client, folders: set[str]) -> set[str]:
    """The windows already published: from the container the flags name, else from the
    workspace's predictions datastore (Entra auth)."""
    from batchscore.aml import backfill
    from batchscore.commands.blob_source import open_container, uses_blob
    from components.config.pipeline import PREDICTIONS_PATH

    if uses_blob(args):
        if not args.container:
            raise UsageError("--container NAME goes with --account-url/--connection-string")
        container = open_container(args, args.container)
    else:
        from batchscore.cloud.blob_sync import container_client

        url, name = backfill.datastore_account(client, args.predictions_datastore)
        container = container_client(name, account_url=url)
    with container:
        return backfill.published_in(container, PREDICTIONS_PATH, folders)


def aml_workspace(workspace_id: str):
    from batchscore.aml.run import Workspace

    return Workspace.from_id(workspace_id)


def _default_client(workspace):
    from batchscore.aml.run import default_client

    return default_client(workspace)


#: how the command gets its MLClient (tests swap in a recording fake)
CLIENT_FACTORY = _default_client


def _render_generic(args, settings, target, out_dir: Path):
    from batchscore.aml import export

    if not args.input_type:
        raise UsageError("--entry-script needs --input-type mltable|uri_folder")
    if not args.entry_script.is_file():
        raise UsageError(f"--entry-script {args.entry_script}: no such file")
    return export.render_generic(
        settings,
        target,
        base_dir=out_dir,
        entry_script=args.entry_script,
        input_type=args.input_type,
        mini_batch_size=args.mini_batch_size,
        input_path=args.input_path or export.DEFAULT_GENERIC_INPUT,
        program_arguments=args.program_arguments,
        version=args.version,
        model_input=(args.model_input_type, args.model_input) if args.model_input else None,
    )


def _target_overrides(args: argparse.Namespace) -> dict[str, str]:
    return {field: getattr(args, field) for field in TARGET_FLAGS if getattr(args, field)}
