"""The scoring-pipeline dynamic provider against a recording fake ML client, and its helpers."""

from __future__ import annotations

import base64
import email.utils
import time
import warnings

import pulumi
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from components.config.pipeline import PipelineSettings
from components.providers import azure_errors, common
from components.providers.azure_errors import AzureCallError
from components.shared import hashing


class FakeResponse:
    """Just enough of an azure-core HTTP response for HttpResponseError."""

    def __init__(self, status: int, body: str = "", headers: dict | None = None):
        self.status_code = status
        self.reason = {403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        self.headers = headers or {}
        self._body = body

    def text(self) -> str:
        return self._body


def http_error(status: int, code: str = "", message: str = "", headers=None):
    body = f'{{"error": {{"code": "{code}", "message": "{message}"}}}}' if code else ""
    return HttpResponseError(response=FakeResponse(status, body, headers))


class RecordingSleep:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --- azure_errors / common / hashing ---------------------------------------------------------


def test_retry_after_header_forms():
    assert azure_errors.retry_after_seconds(http_error(429, headers={"Retry-After": "7"})) == 7
    ms = http_error(429, headers={"x-ms-retry-after-ms": "1500"})
    assert azure_errors.retry_after_seconds(ms) == 1.5
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    waited = azure_errors.retry_after_seconds(
        http_error(503, headers={"Retry-After": date}), now=now
    )
    assert 28 <= waited <= 31
    assert azure_errors.retry_after_seconds(http_error(429)) is None


def test_call_azure_retries_throttling_with_backoff_then_succeeds():
    sleep = RecordingSleep()
    policy = common.RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=10.0, sleep=sleep)
    outcomes = [http_error(429, headers={"Retry-After": "3"}), http_error(503), "ok"]

    def flaky():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert common.call_azure(flaky, action="get x", target="ws", retry=policy) == "ok"
    assert sleep.waits[0] == 3  # Retry-After honored
    assert 2.0 <= sleep.waits[1] <= 2.2  # exponential: base * 2**(2-1), plus jitter
    assert outcomes == []


def test_call_azure_gives_up_after_bounded_attempts():
    sleep = RecordingSleep()
    policy = common.RetryPolicy(max_attempts=3, base_delay=100.0, max_delay=5.0, sleep=sleep)
    calls = []

    def always_throttled():
        calls.append(1)
        raise http_error(429, "TooManyRequests", "slow down")

    with pytest.raises(AzureCallError) as info:
        common.call_azure(always_throttled, action="get x", target="ws", retry=policy)
    assert len(calls) == 3
    assert sleep.waits == [5.0, 5.0]  # capped by max_delay
    assert info.value.kind == "throttled"
    assert "after 3 attempts" in str(info.value)


def test_forbidden_names_the_missing_role_and_the_service_message():
    def forbidden():
        raise http_error(403, "AuthorizationFailed", "client abc has no authorization")

    with pytest.raises(AzureCallError) as info:
        common.call_azure(
            forbidden,
            action="create schedule s1",
            target="workspace mlw-dev",
            required_role="AzureML Data Scientist on workspace mlw-dev",
        )
    text = str(info.value)
    assert info.value.kind == "forbidden" and info.value.status == 403
    assert "AzureML Data Scientist on workspace mlw-dev" in text
    assert "create schedule s1 on workspace mlw-dev" in text
    assert "AuthorizationFailed" in text


def test_not_found_is_not_retried():
    calls = []

    def missing():
        calls.append(1)
        raise ResourceNotFoundError("schedule s1 not found")

    with pytest.raises(AzureCallError) as info:
        common.call_azure(missing, action="get schedule s1", target="ws")
    assert calls == [1]
    assert info.value.kind == "not_found"


def test_wait_for_refuses_an_unfinished_operation():
    class SlowPoller:
        def result(self, timeout=None):
            return None

        def done(self):
            return False

    with pytest.raises(AzureCallError, match="did not finish within 5 s"):
        common.wait_for(SlowPoller(), action="disable s1", target="ws", timeout_seconds=5)


def test_run_operation_retries_a_throttled_start_then_waits_for_the_end():
    """The one helper every provider uses for a begin_* call and its wait."""
    waits, starts, results = [], [], []

    class Poller:
        def result(self, timeout=None):
            results.append(timeout)
            return "enabled"

        def done(self):
            return True

    def begin(name, *, body):
        starts.append((name, body))
        if len(starts) == 1:
            raise http_error(429, headers={"Retry-After": "2"})
        return Poller()

    policy = common.RetryPolicy(sleep=waits.append)
    result = common.run_operation(
        begin,
        "s1",
        body={"x": 1},
        action="enable s1",
        target="ws",
        retry=policy,
        timeout_seconds=30,
    )
    assert result == "enabled"
    assert starts == [("s1", {"x": 1})] * 2 and waits == [2.0] and results == [30]


def test_run_operation_names_the_action_and_role_when_the_wait_fails():
    class FailingPoller:
        def result(self, timeout=None):
            raise http_error(409, "Conflict", "the job is stopping")

    with pytest.raises(AzureCallError) as info:
        common.run_operation(
            lambda: FailingPoller(),
            action="start",
            target="job j1",
            required_role="Contributor on job j1",
        )
    assert "start on job j1" in str(info.value) and info.value.action == "start"


def test_changed_keys_ignores_provider_key_and_int_float_round_trips():
    olds = {"a": 1, "b": {"x": 2}, "__provider": "old", "c": None}
    news = {"a": 1.0, "b": {"x": 3}, "__provider": "new"}
    assert common.changed_keys(olds, news) == ["b"]
    result = common.diff_result(olds, news, replace_keys=["a"])
    assert result.changes is True and result.replaces == []


def test_hash_folder_changes_with_content_only(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    first = hashing.hash_folder(tmp_path)
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"other junk")
    assert hashing.hash_folder(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert hashing.hash_folder(tmp_path) != first


# --- the provider against a recording fake MLClient ------------------------------------------

with warnings.catch_warnings():  # azure-ai-ml's schemas warn about marshmallow 4 on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from azure.ai.ml.exceptions import ValidationException

    from components import scoring_pipeline as sp_component
    from components.config.pipeline import PipelineSettings
    from components.providers import scoring_pipeline as sp

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

IMAGE = "crdev.azurecr.io/batchscore-scoring:dev@sha256:" + "5e" * 32
WORKSPACE = "mlw-dev"


def props(**overrides):
    base = {
        "subscriptionId": "11111111-1111-4111-8111-111111111111",
        "resourceGroupName": "rg-dev",
        "workspaceName": WORKSPACE,
        "scheduleName": "scoring-dev-1a2b3c4d",
        "image": IMAGE,
        "settings": PipelineSettings().to_mapping(),
        "codeHash": "c0de",
        "modelsDatastore": "models",
        "predictionsDatastore": "predictions",
        "sqlServer": "sql-dev.database.windows.net",
        "sqlDatabase": "sensors",
        "computeName": "cpu-cluster",
        "identityClientId": "55555555-5555-4555-8555-555555555555",
    }
    base.update(overrides)
    return base


def with_settings(**changes):
    settings = PipelineSettings().to_mapping()
    settings.update(changes)
    return props(settings=settings)


class FakePoller:
    """An LRO poller whose effect happens only when someone waits for it."""

    def __init__(self, log, label, effect=lambda: None):
        self._log, self._label, self._effect, self._done = log, label, effect, False

    def result(self, timeout=None):
        self._log.append(("wait", self._label))
        value = self._effect()
        self._done = True
        return value

    def done(self):
        return self._done


class FakeComponents:
    def __init__(self, client):
        self.client, self.store = client, {}

    def get(self, name, version=None):
        self.client.record("components.get", name, version)
        self.client.maybe_fail("components.get")
        if (name, version) not in self.store:
            raise ResourceNotFoundError(f"component {name}:{version} not found")
        return self.store[(name, version)]

    def create_or_update(self, component):
        self.client.record("components.create_or_update", component.name, component.version)
        self.client.maybe_fail("components.create_or_update")
        self.client.upload_as_caller()
        self.store[(component.name, component.version)] = component
        return component


class FakeSchedules:
    def __init__(self, client):
        self.client, self.store = client, {}

    def get(self, name):
        self.client.record("schedules.get", name)
        self.client.maybe_fail("schedules.get")
        if name not in self.store:
            raise ResourceNotFoundError(f"schedule {name} not found")
        return self.store[name]

    def begin_create_or_update(self, schedule):
        self.client.record("schedules.begin_create_or_update", schedule.name)
        self.client.maybe_fail("schedules.begin_create_or_update")
        assert schedule._validate().passed, schedule._validate()

        def effect():
            self.store[schedule.name] = schedule
            return schedule

        return FakePoller(self.client.calls, f"upsert {schedule.name}", effect)

    def begin_disable(self, name):
        self.client.record("schedules.begin_disable", name)
        if name not in self.store:
            raise ResourceNotFoundError(f"schedule {name} not found")

        def effect():
            self.store[name]._is_enabled = False
            return self.store[name]

        return FakePoller(self.client.calls, f"disable {name}", effect)

    def begin_delete(self, name):
        self.client.record("schedules.begin_delete", name)
        if self.store[name].is_enabled is not False:
            raise HttpResponseError(
                message="Only disabled schedules can be deleted", response=FakeResponse(400)
            )
        return FakePoller(self.client.calls, f"delete {name}", lambda: self.store.pop(name))


class FakeMLClient:
    """Records every call; ``failures`` maps an operation to exceptions raised in turn."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.failures: dict[str, list[Exception]] = {}
        self.components = FakeComponents(self)
        self.schedules = FakeSchedules(self)
        # Component code goes to the identity-based datastore as the caller: refused (as
        # azure-ai-ml reports it) until the caller's blob data role has propagated.
        self.clock = lambda: 0.0
        self.blob_role_effective_at: float | None = 0.0

    def upload_as_caller(self):
        effective = self.blob_role_effective_at
        if effective is None or self.clock() < effective:
            self.record("upload refused")
            storage_error = http_error(403, "AuthorizationPermissionMismatch", "not authorized")
            storage_error.error_code = "AuthorizationPermissionMismatch"
            try:
                raise storage_error
            except HttpResponseError as exc:
                raise ValidationException(
                    message="You don't have permission to alter this storage account.",
                    no_personal_data_message="no permission",
                ) from exc

    def record(self, *call):
        self.calls.append(call)

    def maybe_fail(self, operation):
        pending = self.failures.get(operation)
        if pending:
            raise pending.pop(0)

    def named(self, operation):
        return [c for c in self.calls if c[0] == operation]


@pytest.fixture
def fake(monkeypatch):
    client = FakeMLClient()
    factory_args = []

    def factory(p):
        factory_args.append(dict(p))
        return client

    monkeypatch.setattr(sp, "CLIENT_FACTORY", factory)
    monkeypatch.setattr(sp, "RETRY", common.RetryPolicy(sleep=RecordingSleep()))
    client.factory_args = factory_args
    return client


@pytest.fixture
def provider():
    return sp.ScoringPipelineProvider()


def test_create_registers_components_then_schedules(fake, provider):
    result = provider.create(props())
    creates = fake.named("components.create_or_update")
    assert [c[1] for c in creates] == [
        "batchscore_extract",
        "batchscore_score",
        "batchscore_publish",
    ]
    assert fake.named("schedules.begin_create_or_update") == [
        ("schedules.begin_create_or_update", "scoring-dev-1a2b3c4d")
    ]
    assert ("wait", "upsert scoring-dev-1a2b3c4d") in fake.calls
    assert result.id.endswith("/workspaces/mlw-dev/schedules/scoring-dev-1a2b3c4d")
    assert result.outs["cronExpression"] == "0 * * * *"
    assert result.outs["enabled"] is True
    assert set(result.outs["componentVersions"]) == {c[1] for c in creates}
    schedule = fake.schedules.store["scoring-dev-1a2b3c4d"]
    job = schedule.create_job
    assert job.inputs["trigger_time"]._data == "${{creation_context.trigger_time}}"
    assert (
        job.jobs["score"].component.version == result.outs["componentVersions"]["batchscore_score"]
    )


def test_create_twice_with_the_same_inputs_registers_each_version_once(fake, provider):
    first = provider.create(props())
    second = provider.create(props())
    assert first.outs["componentVersions"] == second.outs["componentVersions"]
    assert len(fake.named("components.create_or_update")) == 3
    assert len(fake.components.store) == 3
    assert len(fake.schedules.store) == 1


def test_changed_cron_is_an_in_place_update_that_upserts_the_schedule(fake, provider):
    created = provider.create(props())
    news = with_settings(scheduleCron="15 */2 * * *")
    diff = provider.diff(created.id, created.outs, news)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(created.id, created.outs, news)
    assert updated.outs["cronExpression"] == "15 */2 * * *"
    assert fake.schedules.store["scoring-dev-1a2b3c4d"].trigger.expression == "15 */2 * * *"
    assert len(fake.named("schedules.begin_create_or_update")) == 2
    assert len(fake.named("components.create_or_update")) == 3  # components unchanged
    assert updated.outs["componentVersions"] == created.outs["componentVersions"]


def test_changed_knob_registers_only_the_new_score_version(fake, provider):
    created = provider.create(props())
    news = with_settings(maxRetries=4)
    assert provider.diff(created.id, created.outs, news).replaces == []
    updated = provider.update(created.id, created.outs, news)
    assert [c[1] for c in fake.named("components.create_or_update")[3:]] == ["batchscore_score"]
    before, after = created.outs["componentVersions"], updated.outs["componentVersions"]
    assert before["batchscore_score"] != after["batchscore_score"]
    assert before["batchscore_extract"] == after["batchscore_extract"]


def test_diff_names_exactly_the_changed_inputs_and_replaces_only_for_location(fake, provider):
    created = provider.create(props())
    assert provider.diff(created.id, created.outs, props()).changes is False
    moved = provider.diff(created.id, created.outs, props(workspaceName="mlw-other", image=IMAGE))
    assert moved.changes is True and moved.replaces == ["workspaceName"]
    new_image = IMAGE.replace("5e", "6f")
    retagged = provider.diff(created.id, created.outs, props(image=new_image, codeHash="beef"))
    assert retagged.changes is True and retagged.replaces == []
    assert common.changed_keys(created.outs, props(image=new_image), sp.INPUT_KEYS) == ["image"]


def test_delete_disables_waits_then_deletes(fake, provider):
    created = provider.create(props())
    fake.calls.clear()
    provider.delete(created.id, created.outs)
    order = [c for c in fake.calls if c[0] != "schedules.get"]
    assert order == [
        ("schedules.begin_disable", "scoring-dev-1a2b3c4d"),
        ("wait", "disable scoring-dev-1a2b3c4d"),
        ("schedules.begin_delete", "scoring-dev-1a2b3c4d"),
        ("wait", "delete scoring-dev-1a2b3c4d"),
    ]
    assert fake.schedules.store == {}


def test_delete_of_a_schedule_already_gone_succeeds(fake, provider):
    provider.delete("id", props())
    assert fake.named("schedules.begin_delete") == []


def test_read_reports_drift_made_outside_pulumi(fake, provider):
    created = provider.create(props())
    live = fake.schedules.store["scoring-dev-1a2b3c4d"]
    live._is_enabled = False  # someone disabled it in the studio
    live.trigger.expression = "0 6 * * *"  # and edited the trigger
    read = provider.read(created.id, created.outs)
    assert read.id == created.id
    assert read.outs["enabled"] is False and read.outs["cronExpression"] == "0 6 * * *"
    assert read.inputs["settings"]["scheduleCron"] == "0 6 * * *"
    assert read.inputs["settings"]["scheduleEnabled"] is False
    # The next `pulumi up` sees the difference and puts the declared schedule back, in place.
    diff = provider.diff(created.id, read.outs, props())
    assert diff.changes is True and diff.replaces == []


def test_read_of_a_deleted_schedule_drops_it_from_state(fake, provider):
    created = provider.create(props())
    fake.schedules.store.clear()
    assert provider.read(created.id, created.outs).id == ""


def test_throttling_is_retried_with_backoff_then_succeeds(fake, provider, monkeypatch):
    sleep = RecordingSleep()
    monkeypatch.setattr(sp, "RETRY", common.RetryPolicy(base_delay=1.0, sleep=sleep))
    fake.failures["schedules.begin_create_or_update"] = [
        http_error(429, "TooManyRequests", "slow down", headers={"Retry-After": "4"}),
        http_error(429, "TooManyRequests", "slow down"),
    ]
    result = provider.create(props())
    assert result.outs["enabled"] is True
    assert len(fake.named("schedules.begin_create_or_update")) == 3
    assert sleep.waits[0] == 4 and 2.0 <= sleep.waits[1] <= 2.2


def test_forbidden_names_the_missing_role_on_the_workspace(fake, provider):
    fake.failures["components.get"] = [
        http_error(403, "AuthorizationFailed", "The client 'x' has no authorization to perform")
    ]
    with pytest.raises(AzureCallError) as info:
        provider.create(props())
    text = str(info.value)
    assert "AzureML Data Scientist on workspace mlw-dev" in text
    assert "batchscore_extract" in text and "HTTP 403" in text


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_upload_waits_for_the_new_blob_role_then_registers(fake, provider, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(
        common, "ROLE_PROPAGATION", common.PropagationWait(sleep=clock.sleep, clock=clock)
    )
    fake.clock, fake.blob_role_effective_at = clock, 40.0
    result = provider.create(props(storageAccountName="stdev1a2b3c"))
    assert len(fake.named("upload refused")) == 3  # at 0, 15 and 30 s
    assert result.outs["componentVersions"], "nothing was registered"
    assert clock.now == 45.0


def test_upload_refused_past_the_wait_names_the_blob_role_and_account(fake, provider, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(
        common,
        "ROLE_PROPAGATION",
        common.PropagationWait(seconds=120, sleep=clock.sleep, clock=clock),
    )
    fake.clock, fake.blob_role_effective_at = clock, None
    with pytest.raises(AzureCallError) as info:
        provider.create(props(storageAccountName="stdev1a2b3c"))
    text = str(info.value)
    assert "Storage Blob Data Contributor on storage account stdev1a2b3c" in text
    assert "upload the code of component batchscore_extract" in text
    assert clock.now <= 120
    assert fake.named("schedules.begin_create_or_update") == [], "scheduled without components"


def test_a_workspace_403_is_not_mistaken_for_propagation(fake, provider, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(
        common, "ROLE_PROPAGATION", common.PropagationWait(sleep=clock.sleep, clock=clock)
    )
    fake.failures["components.create_or_update"] = [
        http_error(403, "AuthorizationFailed", "no workspace write")
    ]
    with pytest.raises(AzureCallError, match="AzureML Data Scientist on workspace mlw-dev"):
        provider.create(props())
    assert clock.now == 0.0, "waited for a role this deployment does not assign"


def test_credentials_never_come_from_inputs(fake, provider):
    provider.create(props())
    for args in fake.factory_args:
        assert not any(k.lower() in ("credential", "token", "password", "key") for k in args)


def test_check_auto_names_once_and_validates(provider):
    news = props(scheduleName=None, scheduleNamePrefix="scoring-dev")
    first = provider.check({}, news)
    name = first.inputs["scheduleName"]
    assert name.startswith("scoring-dev-") and first.failures == []
    again = provider.check(first.inputs, news)
    assert again.inputs["scheduleName"] == name
    bad = provider.check({}, with_settings(scheduleCron="every hour", scoringInstanceCount=0))
    assert [f.property for f in bad.failures] == ["settings"]
    assert "scheduleCron" in bad.failures[0].reason
    assert "scoringInstanceCount" in bad.failures[0].reason
    not_by_digest = provider.check({}, props(image="crdev.azurecr.io/x:latest"))
    assert not_by_digest.failures and "by digest" in not_by_digest.failures[0].reason


def test_provider_pickles_by_reference_without_state():
    """Pulumi pickles the provider with dill into the state; nothing live may ride along."""
    import dill
    from pulumi.dynamic.dynamic import serialize_provider

    blob = serialize_provider(sp.ScoringPipelineProvider())
    restored = dill.loads(base64.b64decode(blob))
    assert type(restored) is sp.ScoringPipelineProvider
    assert vars(restored) == {}
    assert len(blob) < 2000, "the provider should pickle by reference, not by value"


# --- the component under Pulumi mocks -------------------------------------------------------


def _args(**overrides):
    values = dict(
        subscription_id="11111111-1111-4111-8111-111111111111",
        resource_group_name="rg-dev",
        workspace_name=WORKSPACE,
        compute_name="cpu-cluster",
        identity_client_id="55555555-5555-4555-8555-555555555555",
        image=IMAGE,
        sql_server="sql-dev.database.windows.net",
        sql_database="sensors",
        storage_account_name="stdev1a2b3c",
        settings=PipelineSettings(schedule_cron="30 * * * *", instance_count=2),
    )
    values.update(overrides)
    return sp_component.ScoringPipelineArgs(**values)


@pulumi.runtime.test
def test_component_declares_the_dynamic_resource_with_its_inputs_and_no_secrets(mocks):
    component = sp_component.ScoringPipeline("scoring", _args())

    def check(_):
        (child,) = [r for r in mocks.resources if r.typ.startswith("pulumi-python:dynamic")]
        assert child.typ == "pulumi-python:dynamic/batchscore:ScoringPipeline", child.typ
        assert child.name == "scoring-schedule"
        inputs = dict(child.inputs)
        assert inputs["workspaceName"] == WORKSPACE
        assert inputs["image"] == IMAGE
        assert inputs["computeName"] == "cpu-cluster"
        assert inputs["modelsDatastore"] == "models"
        assert inputs["predictionsDatastore"] == "predictions"
        assert inputs["storageAccountName"] == "stdev1a2b3c"
        assert inputs["settings"]["scheduleCron"] == "30 * * * *"
        assert inputs["settings"]["scoringInstanceCount"] == 2
        assert inputs["scheduleNamePrefix"] == "scoring-test"
        assert inputs["codeHash"] == hashing.hash_folder(sp.SCORING_DIR)
        assert set(sp.INPUT_KEYS) - {"scheduleName"} <= set(inputs)
        assert not inputs.get("scheduleName")  # auto-named by the provider's check
        plain = " ".join(f"{k}={v}" for k, v in inputs.items() if k != "__provider")
        for word in ("password", "secret", "token", "accountkey", "sharedaccesskey"):
            assert word not in plain.lower(), f"{child.name} input mentions {word}"

    return component.pipeline.urn.apply(check)


@pulumi.runtime.test
def test_component_type_token_parenting_and_outputs(mocks):
    component = sp_component.ScoringPipeline(
        "scoring", _args(schedule_name="batchscore-scoring-dev")
    )

    def check(values):
        component_urn, child_urn, name = values
        assert component_urn.endswith("batchscore:index:ScoringPipeline::scoring"), component_urn
        assert child_urn.endswith(
            "batchscore:index:ScoringPipeline$pulumi-python:dynamic/batchscore:ScoringPipeline"
            "::scoring-schedule"
        ), child_urn
        assert name == "batchscore-scoring-dev"

    return pulumi.Output.all(component.urn, component.pipeline.urn, component.schedule_name).apply(
        check
    )


def test_settings_from_pulumi_config_fall_back_to_the_defaults(mocks):
    pulumi.runtime.set_all_config({"batchscore:lookbackMinutes": "15"})
    try:
        settings = PipelineSettings.from_pulumi(pulumi.Config("batchscore"))
    finally:
        pulumi.runtime.set_all_config({})
    assert settings.lookback_minutes == 15
    assert settings.schedule_cron == PipelineSettings().schedule_cron
