"""The one reader of Pulumi.yaml and Pulumi.<stack>.yaml: typed values, engine strings, errors
that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config.files import (
    StackFileError,
    engine_config,
    load_project,
    read_stack_config,
)

ROOT = Path(__file__).resolve().parents[3]

PROJECT = """\
name: demo
config:
  count:
    type: integer
    default: 60
  enabled:
    type: boolean
    default: true
  ranges:
    type: array
    items: {type: string}
    default: []
  label:
    type: string
    default: "10"
  bare: plain default
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(PROJECT)
    return tmp_path


def stack(folder: Path, name: str, text: str) -> None:
    (folder / f"Pulumi.{name}.yaml").write_text(text)


def test_defaults_alone_without_a_stack(project: Path) -> None:
    assert read_stack_config(None, project) == {
        "count": 60,
        "enabled": True,
        "ranges": [],
        "label": "10",
        "bare": "plain default",
    }


def test_stack_values_take_the_declared_types(project: Path) -> None:
    stack(
        project,
        "dev",
        "config:\n"
        "  demo:count: '30'\n"  # what `pulumi config set` writes
        "  demo:enabled: 'false'\n"
        "  demo:ranges: '[\"203.0.113.0/24\"]'\n"
        "  demo:label: 20\n"
        "  other: kept as written\n"  # no namespace: the project's
        "  azure-native:location: westeurope\n",
    )
    values = read_stack_config("dev", project)
    assert values["count"] == 30 and values["enabled"] is False
    assert values["ranges"] == ["203.0.113.0/24"] and values["label"] == "20"
    assert values["other"] == "kept as written"
    assert "location" not in values and "azure-native:location" not in values


def test_engine_strings_keep_other_namespaces(project: Path) -> None:
    stack(project, "dev", "config:\n  demo:count: 5\n  azure-native:location: westeurope\n")
    assert engine_config("dev", project) == {
        "demo:count": "5",
        "demo:enabled": "true",
        "demo:ranges": "[]",
        "demo:label": "10",
        "demo:bare": "plain default",
        "azure-native:location": "westeurope",
    }


def test_engine_config_refuses_keys_the_project_does_not_declare(project: Path) -> None:
    stack(project, "dev", "config:\n  demo:cuont: 5\n")
    assert read_stack_config("dev", project)["cuont"] == 5
    with pytest.raises(StackFileError, match=r"Pulumi\.dev\.yaml: demo:cuont is not declared"):
        engine_config("dev", project)


def test_every_wrongly_typed_value_is_named_in_one_error(project: Path) -> None:
    stack(project, "dev", "config:\n  demo:count: many\n  demo:enabled: maybe\n")
    with pytest.raises(StackFileError) as caught:
        read_stack_config("dev", project)
    assert str(caught.value).splitlines() == [
        "Pulumi.dev.yaml: demo:count: must be of type integer (got 'many')",
        "Pulumi.dev.yaml: demo:enabled: must be of type boolean (got 'maybe')",
    ]


def test_secrets_are_left_out_so_the_default_applies(project: Path) -> None:
    stack(project, "dev", "config:\n  demo:label:\n    secure: v1:abc\n")
    assert read_stack_config("dev", project)["label"] == "10"
    assert engine_config("dev", project)["demo:label"] == "10"


def test_missing_and_broken_files_are_named(project: Path) -> None:
    stack(project, "dev", "config: {}\n")
    with pytest.raises(
        StackFileError, match=r"no stack file Pulumi\.prod\.yaml; known stacks: dev"
    ):
        read_stack_config("prod", project)
    stack(project, "bad", "config: [unclosed\n")
    with pytest.raises(StackFileError, match=r"Pulumi\.bad\.yaml: not valid YAML"):
        read_stack_config("bad", project)
    (project / "Pulumi.yaml").unlink()
    with pytest.raises(StackFileError, match=r"Pulumi\.yaml: not found"):
        load_project(project)


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_the_repositorys_stacks_read_the_same_both_ways(name: str) -> None:
    namespace = load_project(ROOT)["name"]
    typed = read_stack_config(name, ROOT)
    engine = engine_config(name, ROOT)
    assert set(engine) == {f"{namespace}:{key}" for key in typed}
    assert all(isinstance(value, str) for value in engine.values())
