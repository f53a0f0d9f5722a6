"""PipelineSettings / PipelineTarget: read from the stack config, validated with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.config.errors import ConfigError
from components.config.keyed import read_stack_config
from components.config.pipeline import PipelineSettings, PipelineTarget

# azure-ai-ml's own schemas raise marshmallow deprecation warnings on import; not ours.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

ROOT = Path(__file__).resolve().parents[3]
DIGEST = "reg.azurecr.io/batchscore@sha256:" + "ab" * 32


def test_defaults_come_from_pulumi_yaml_and_every_key_is_declared_there():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key in PipelineSettings.config_keys():
        assert key in declared, f"Pulumi.yaml lacks the pipeline key {key}"
        assert declared[key].get("description"), f"Pulumi.yaml key {key} has no description"
    from_file = PipelineSettings.from_stack(None, ROOT)
    expected = {k: declared[k]["default"] for k in PipelineSettings.config_keys()}
    assert from_file.to_mapping() == expected
    # Under Pulumi mocks Pulumi.yaml defaults are not applied: the dataclass must agree.
    assert PipelineSettings() == from_file


def test_stack_file_overrides_defaults_and_ignores_other_keys(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(
        "name: batchscore\nconfig:\n  scheduleCron:\n    type: string\n    default: '0 * * * *'\n"
        "  lookbackMinutes:\n    type: integer\n    default: 60\n"
    )
    (tmp_path / "Pulumi.test.yaml").write_text(
        "config:\n"
        "  batchscore:lookbackMinutes: '30'\n"  # Pulumi stores strings
        "  batchscore:scoringInstanceCount: 4\n"
        "  batchscore:location: westeurope\n"  # an infrastructure key: not ours
        "  azure-native:location: westeurope\n"  # another namespace
        "  batchscore:appendRows: 'false'\n"
    )
    settings = PipelineSettings.from_stack("test", tmp_path)
    assert settings.lookback_minutes == 30
    assert settings.instance_count == 4
    assert settings.append_rows is False
    assert settings.schedule_cron == "0 * * * *"
    assert read_stack_config("test", tmp_path)["location"] == "westeurope"


def test_missing_stack_file_names_the_file(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: batchscore\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.nope\.yaml"):
        PipelineSettings.from_stack("nope", tmp_path)


def test_pulumi_state_round_trip_coerces_floats_back_to_ints():
    # Values come back from the Pulumi engine as floats; they must read back equal.
    mapping = {
        k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
        for k, v in PipelineSettings().to_mapping().items()
    }
    assert PipelineSettings.from_mapping(mapping) == PipelineSettings()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("scheduleCron", "0 * * * * *", "5 fields"),
        ("scheduleCron", "61 * * * *", "5 fields"),
        ("scheduleCron", "0 3 1 * *", "ignores the day-of-month"),
        ("scheduleTimeZone", "Europe/Berlin", "Windows time zone"),
        ("scheduleTimeZone", "", "Windows time zone"),
        ("scoringInstanceCount", 0, "scoringInstanceCount: must be an integer >= 1"),
        ("maxConcurrencyPerInstance", -2, "maxConcurrencyPerInstance: must be an integer >= 1"),
        ("errorThreshold", -2, "errorThreshold: must be -1 (ignore) or more"),
        ("miniBatchErrorThreshold", -5, "miniBatchErrorThreshold: must be -1"),
        ("maxRetries", -1, "maxRetries: must be an integer >= 0"),
        ("miniBatchTimeoutSeconds", 0, "miniBatchTimeoutSeconds: must be an integer >= 1"),
        ("lookbackMinutes", 0, "lookbackMinutes: must be an integer >= 1"),
        ("scoringLoggingLevel", "VERBOSE", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("miniBatchSize", "lots", "miniBatchSize"),
        ("appendRows", "maybe", "appendRows: must be true or false"),
        ("scoringInstanceCount", "two", "scoringInstanceCount: must be an integer"),
        ("scoringInstanceCount", True, "scoringInstanceCount: must be an integer"),
    ],
)
def test_bad_values_are_rejected_naming_key_and_allowed_values(key, value, expected):
    with pytest.raises(ConfigError) as info:
        PipelineSettings.from_mapping({key: value})
    assert expected in str(info.value)
    assert key in str(info.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        PipelineSettings.from_mapping({"scoringInstanceCount": 0, "scoringLoggingLevel": "LOUD"})
    text = str(info.value)
    assert "scoringInstanceCount" in text and "scoringLoggingLevel" in text


def test_valid_edge_values_are_accepted():
    settings = PipelineSettings.from_mapping(
        {
            "batchscore:scheduleCron": "15 */2 * * 1-5",
            "scheduleTimeZone": "W. Europe Standard Time",
            "errorThreshold": -1,
            "miniBatchErrorThreshold": 0,
            "maxRetries": 0,
            "miniBatchSize": "10mb",
        }
    )
    assert settings.schedule_cron == "15 */2 * * 1-5"
    assert settings.max_retries == 0


def test_target_requires_an_image_by_digest():
    with pytest.raises(ConfigError, match="by digest"):
        PipelineTarget(image="reg.azurecr.io/batchscore:latest")
    assert PipelineTarget(image=DIGEST).image == DIGEST


def test_target_rejects_bad_datastore_and_empty_names():
    with pytest.raises(ConfigError) as info:
        PipelineTarget(image=DIGEST, models_datastore="my-models", compute=" ")
    assert "models_datastore" in str(info.value) and "compute" in str(info.value)


def test_sql_url_carries_no_credentials_and_names_the_server():
    target = PipelineTarget(image=DIGEST, sql_server="sql-dev-1", sql_database="sensors")
    url = target.sql_url()
    assert url.startswith("mssql+pyodbc://@sql-dev-1.database.windows.net/sensors?")
    assert "password" not in url.lower() and "pwd" not in url.lower()
    # scoring.data.db turns a URL without user and authentication into an Entra token login.
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    assert not parsed.username and parsed.password is None
    assert parsed.query["driver"] == "ODBC Driver 18 for SQL Server"
