"""``batchscore pipeline export``: the Azure ML pipeline definitions as YAML.

Writes the components, the pipeline job and the schedule of the scoring pipeline (or, with
``--entry-script``, a parallel job for any entry script) and validates every file offline
with azure-ai-ml. Settings come from ``Pulumi.yaml`` (+ ``Pulumi.<stack>.yaml`` with
``--stack``); what only a deployment knows (image, cluster, SQL server, identity) comes from
flags or stays a clearly marked PLACEHOLDER.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scoring.errors import UsageError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="pipeline_action", metavar="<action>")
    export = actions.add_parser(
        "export",
        help="write the Azure ML YAML (components, pipeline job, schedule) and validate it",
        description="Write the Azure ML YAML and validate it offline with azure-ai-ml.",
    )
    export.add_argument("--out", required=True, type=Path, help="folder to write into")
    export.add_argument("--stack", help="read Pulumi.<stack>.yaml over the Pulumi.yaml defaults")
    export.add_argument(
        "--project-dir", type=Path, default=None, help="folder of Pulumi.yaml (default: repo)"
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


def run(args: argparse.Namespace) -> int:
    if getattr(args, "pipeline_action", None) != "export":
        raise UsageError("pipeline: choose an action, e.g. `batchscore pipeline export --out DIR`")
    from batchscore.aml import export
    from batchscore.aml.settings import PipelineSettings, PipelineTarget, SettingsError

    project_dir = args.project_dir or _find_project_dir()
    try:
        settings = PipelineSettings.from_stack(args.stack, project_dir)
        target = PipelineTarget(**_target_overrides(args))
    except SettingsError as exc:
        raise UsageError(str(exc).replace("\n ", "")) from exc

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
    if target.is_placeholder:
        log.warning("the image is a PLACEHOLDER: pass --image registry/repo@sha256:<digest>")
    if args.no_validate:
        print("offline validation skipped (--no-validate)")
        return 0
    try:
        export.validate_folder(out_dir, rendered.kinds)
    except export.ExportValidationError as exc:
        print(f"validation failed: {exc}")
        return 1
    print(f"validated {len(written)} file(s) offline with azure-ai-ml: ok")
    return 0


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
    names = {
        "image": "image",
        "compute": "compute",
        "sql_server": "sql_server",
        "sql_database": "sql_database",
        "identity_client_id": "identity_client_id",
        "models_datastore": "models_datastore",
        "predictions_datastore": "predictions_datastore",
    }
    return {field: getattr(args, flag) for flag, field in names.items() if getattr(args, flag)}


def _find_project_dir() -> Path:
    """The folder holding Pulumi.yaml: the current folder or one above it, else the repo."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return REPO_ROOT
