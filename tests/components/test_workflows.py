"""The GitHub workflows: actionlint-clean, and wired the way the delivery process needs.

PR: offline tests, offline plan diff, `pulumi preview` per stack posted on the PR (summary
first, cut to fit GitHub's comment limit, linking the full output).
Merge to main: per stack a preview saving its update plan, then `pulumi up --plan` applying
that very plan; dev, then prod behind the `prod` environment's approval.
Schedule: a refresh + preview with --expect-no-changes that fails loudly.
Azure through OIDC only; no secret is ever echoed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
STACKS = ["dev", "prod"]


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).split("@")[0] == action]


def one_step(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = steps_using(job, action)
    assert len(found) == 1, f"expected one {action} step, found {len(found)}"
    return found[0]


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make venv` (requirements.txt pins it)")
    return found


# --- linters ---------------------------------------------------------------------------------
def test_actionlint_is_clean() -> None:
    command = [tool("actionlint"), "-no-color"]
    shellcheck = BIN / "shellcheck"
    if shellcheck.exists():  # lint the `run:` scripts too
        command += ["-shellcheck", str(shellcheck)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The lint test can fail: an unknown input of pulumi/actions is reported."""
    original = (WORKFLOWS / "deploy.yml").read_text()
    broken = original.replace("plan: build/plan-dev.json", "plann: build/plan-dev.json")
    assert broken != original
    target = tmp_path / "broken.yml"
    target.write_text(broken)
    result = subprocess.run(
        [tool("actionlint"), "-no-color", str(target)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "plann" in result.stdout


# --- pull request -----------------------------------------------------------------------------
def test_pull_request_runs_offline_checks_plan_diff_and_previews() -> None:
    wf = load("pull-request.yml")
    assert "pull_request" in wf["on"]
    jobs = wf["jobs"]
    assert any(".ci/run" in str(s.get("run", "")) for s in jobs["offline-tests"]["steps"])
    plan_script = "\n".join(str(s.get("run", "")) for s in jobs["plan-diff"]["steps"])
    for stack in STACKS:
        assert f"make plan STACK={stack}" in plan_script
    assert 'for file in "plan-${stack}.json" "post-deploy-${stack}.sql"' in plan_script
    assert "tests/snapshots/${file}" in plan_script

    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == STACKS
    assert preview["strategy"]["fail-fast"] is False
    script = "\n".join(str(s.get("run", "")) for s in preview["steps"])
    assert 'pulumi preview --stack "$STACK" --policy-pack policy --diff' in script
    assert "python -m batchscore.preview_comment" in script
    assert preview["permissions"]["pull-requests"] == "write"
    post = one_step(preview, "actions/github-script")
    assert post["if"] == "always()"  # a failed preview (a policy violation) is shown too
    assert "build/preview-comment-${process.env.STACK}.md" in post["with"]["script"]


def test_the_preview_comment_links_the_full_output_kept_as_an_artifact() -> None:
    """pulumi/actions#482: the comment is cut to fit, so the whole output must be one click away."""
    job = load("pull-request.yml")["jobs"]["preview"]
    steps = job["steps"]
    (full,) = [s for s in steps if s.get("id") == "full"]
    assert full["uses"].startswith("actions/upload-artifact@")
    assert full["with"]["path"] == "build/preview-${{ matrix.stack }}.txt"
    (comment,) = [s for s in steps if "batchscore.preview_comment" in str(s.get("run", ""))]
    assert "steps.full.outputs.artifact-url" in comment["env"]["FULL_OUTPUT_URL"]
    post = one_step(job, "actions/github-script")
    order = [steps.index(full), steps.index(comment), steps.index(post)]
    assert order == sorted(order)


def test_deploy_goes_dev_then_prod_behind_environments() -> None:
    wf = load("deploy.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["concurrency"]["cancel-in-progress"] is False
    jobs = wf["jobs"]
    assert jobs["plan-dev"]["needs"] == "offline-tests"
    assert jobs["up-dev"]["needs"] == "plan-dev"
    assert jobs["plan-prod"]["needs"] == "up-dev", "prod's plan waits for dev"
    assert jobs["up-prod"]["needs"] == "plan-prod"
    for stack in STACKS:
        plan, up = jobs[f"plan-{stack}"], jobs[f"up-{stack}"]
        # Same environment, so same deploy identity: the program reads who deploys.
        assert plan["environment"].split()[0] == up["environment"] == stack
        assert plan["env"]["STACK"] == up["env"]["STACK"] == stack
        pulumi = one_step(up, "pulumi/actions")["with"]
        assert pulumi["command"] == "up"
        assert pulumi["policyPacks"] == "policy"
        assert pulumi["stack-name"] == "${{ env.STACK }}"
        outputs = "\n".join(str(s.get("run", "")) for s in up["steps"])
        assert "pulumi stack output" in outputs and "--show-secrets" not in outputs


@pytest.mark.parametrize("stack", STACKS)
def test_up_applies_the_very_plan_its_preview_saved(stack: str) -> None:
    jobs = load("deploy.yml")["jobs"]
    plan, up = jobs[f"plan-{stack}"], jobs[f"up-{stack}"]
    saved = f"build/plan-{stack}.json"
    preview = "\n".join(str(s.get("run", "")) for s in plan["steps"])
    assert '--save-plan "build/plan-${STACK}.json"' in preview and "--policy-pack policy" in preview
    assert "set -o pipefail" in preview, "a failed preview must fail the job, not the tee"
    (upload,) = steps_using(plan, "actions/upload-artifact")
    assert saved in upload["with"]["path"] and upload["with"]["if-no-files-found"] == "error"
    (download,) = steps_using(up, "actions/download-artifact")
    assert download["with"] == {"name": upload["with"]["name"], "path": "build"}
    apply = one_step(up, "pulumi/actions")
    assert apply["with"]["plan"] == saved
    assert not {"upsert", "refresh", "target", "replace"} & set(apply["with"]), (
        "anything that changes what `up` does beyond the plan"
    )
    assert up["steps"].index(download) < up["steps"].index(apply)


def test_only_the_prod_jobs_can_reach_the_prod_identity() -> None:
    """Prod's environment (required reviewers) guards its preview and, again, its apply."""
    jobs = load("deploy.yml")["jobs"]
    in_prod = sorted(
        n for n, j in jobs.items() if str(j.get("environment", "")).split()[:1] == ["prod"]
    )
    assert in_prod == ["plan-prod", "up-prod"]


def test_drift_check_is_scheduled_and_fails_on_any_change() -> None:
    wf = load("drift.yml")
    for entry in wf["on"]["schedule"]:
        assert croniter.is_valid(entry["cron"]), entry["cron"]
    job = wf["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    check = one_step(job, "pulumi/actions")
    assert check["with"]["command"] == "preview"
    assert check["with"]["refresh"] is True
    assert check["with"]["expect-no-changes"] is True
    assert not check.get("continue-on-error"), "drift must fail the run"
    alarm = one_step(job, "actions/github-script")
    assert alarm["if"] == "failure()"
    assert "core.setFailed" in alarm["with"]["script"]
    assert job["permissions"]["issues"] == "write"


# --- the stack's secrets (the registry token kept in the state) ----------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_pulumi_run_uses_the_secrets_provider_recorded_for_the_stack(name: str) -> None:
    """Pulumi.<stack>.yaml has no secretsprovider line, so without this the CLI would fall
    back to a passphrase provider and fail on the registry token (pulumi/pulumi#17236)."""
    text = (WORKFLOWS / name).read_text()
    assert "PULUMI_CONFIG_PASSPHRASE" not in text, f"{name}: no passphrase secrets provider"
    for job_name, job in load(name)["jobs"].items():
        if steps_using(job, "pulumi/actions"):
            env = job.get("env", {})
            assert env.get("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER") == "true", (
                f"{name}:{job_name} may pick a default secrets provider"
            )


def test_each_deploy_runs_the_preflight_after_login_and_before_up() -> None:
    for job_name in ("up-dev", "up-prod"):
        steps = load("deploy.yml")["jobs"][job_name]["steps"]
        order = [
            "login" if str(s.get("uses", "")).startswith("azure/login")
            else "preflight" if 'make preflight STACK="$STACK"' in str(s.get("run", ""))
            else "up" if str(s.get("uses", "")).startswith("pulumi/actions")
            else None
            for s in steps
        ]  # fmt: skip
        assert [o for o in order if o] == ["login", "preflight", "up"], f"{job_name}: {order}"


def test_a_stack_ci_creates_gets_the_key_vault_secrets_provider() -> None:
    for stack in STACKS:
        job = load("deploy.yml")["jobs"][f"plan-{stack}"]
        script = "\n".join(str(s.get("run", "")) for s in job["steps"])
        create = 'pulumi stack select --create --secrets-provider "$PULUMI_SECRETS_PROVIDER"'
        assert create in script, f"plan-{stack}: the first run must create the stack"
        assert script.index(create) < script.index("pulumi preview")
        assert job["env"]["PULUMI_SECRETS_PROVIDER"] == "${{ vars.PULUMI_SECRETS_PROVIDER }}"


# --- security, across every workflow ----------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_azure_login_is_oidc_only(name: str) -> None:
    wf = load(name)
    text = (WORKFLOWS / name).read_text()
    for forbidden in ("creds:", "client-secret", "ARM_CLIENT_SECRET", "AZURE_CLIENT_SECRET"):
        assert forbidden not in text, f"{name} uses {forbidden}: log in with OIDC instead"
    assert "pull_request_target" not in wf["on"], "pull_request_target exposes secrets to forks"
    assert wf.get("permissions") == {"contents": "read"}, f"{name}: least-privilege default"
    for job_name, job in wf["jobs"].items():
        logins = steps_using(job, "azure/login")
        if not logins:
            continue
        assert job["permissions"]["id-token"] == "write", f"{name}:{job_name} needs an OIDC token"
        assert job["env"]["ARM_USE_OIDC"] == "true", f"{name}:{job_name}: provider not on OIDC"
        for login in logins:
            assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_no_secret_reaches_a_shell_or_the_log(name: str) -> None:
    wf = load(name)
    for job_name, job in wf["jobs"].items():
        for step in job.get("steps", []):
            script = str(step.get("run", ""))
            assert "${{ secrets." not in script, f"{name}:{job_name} expands a secret in a script"
            assert "--show-secrets" not in script, f"{name}:{job_name} prints secrets"
            assert "set -x" not in script, f"{name}:{job_name} traces commands (and values)"


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_actions_are_pinned_to_a_release(name: str) -> None:
    for job in load(name)["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                ref = step["uses"].split("@")[-1]
                assert re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", ref), step["uses"]


def test_workflows_cover_exactly_the_stacks_of_the_repository() -> None:
    """A new Pulumi.<stack>.yaml must be added to the previews, deploys and drift check."""
    stacks = sorted(path.name.split(".")[1] for path in ROOT.glob("Pulumi.*.yaml"))
    assert stacks == sorted(STACKS), f"stack files {stacks}, workflows {STACKS}"
    deploy = load("deploy.yml")["jobs"]
    assert (
        sorted({job["env"]["STACK"] for job in deploy.values() if "STACK" in job.get("env", {})})
        == stacks
    )
