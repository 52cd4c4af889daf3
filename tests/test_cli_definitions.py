"""`chameleon workflow validate|import` on hostile, empty and dead-ended definitions."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from tests.conftest import EXAMPLES
from tests.test_cli_workflow import _listed, cli  # noqa: F401  (the fixture)
from tests.unit.test_yaml_budget import HOSTILE

BOMB = HOSTILE / "billion_laughs.yml"
BUNDLED_INVOICE = Path(
    str(resources.files("chameleon_workflow.examples").joinpath("invoice_processing_workflow.yml"))
)


@pytest.mark.parametrize("command", ["validate", "import"])
def test_the_billion_laughs_is_refused_naming_the_setting(cli: CliRunner, command: str) -> None:  # noqa: F811
    result = cli.invoke(app, ["workflow", command, str(BOMB)])
    assert result.exit_code == 2
    assert "CHAMELEON_YAML_MAX_NODES" in result.stderr
    assert "Traceback" not in result.output
    assert _listed(cli) == []


@pytest.mark.parametrize("command", ["validate", "import"])
def test_the_budget_is_read_from_the_environment(
    cli: CliRunner,  # noqa: F811
    command: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAMELEON_YAML_MAX_NODES", "40")
    result = cli.invoke(app, ["workflow", command, str(EXAMPLES / "mixed_agent_workflow.yaml")])
    assert result.exit_code == 2
    assert "the limit is 40 nodes, setting CHAMELEON_YAML_MAX_NODES" in result.stderr


@pytest.mark.parametrize("command", ["validate", "import"])
def test_an_empty_file_says_it_is_empty(cli: CliRunner, tmp_path: Path, command: str) -> None:  # noqa: F811
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    result = cli.invoke(app, ["workflow", command, str(empty)])
    assert result.exit_code == 2
    assert "the document is empty" in result.stderr
    assert _listed(cli) == []


def test_validate_prints_dead_ends_as_warnings_and_exits_0(cli: CliRunner) -> None:  # noqa: F811
    result = cli.invoke(
        app, ["workflow", "validate", str(EXAMPLES / "invoice_processing_workflow.yml")]
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: W1: EPSILON role 'Error_Handler' has no path back")
    assert "valid workflow 'Invoice_Processing'" in result.stdout


def test_the_bundled_invoice_example_has_no_warnings(cli: CliRunner) -> None:  # noqa: F811
    result = cli.invoke(app, ["workflow", "validate", str(BUNDLED_INVOICE)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_import_reports_the_warnings_in_its_json(cli: CliRunner) -> None:  # noqa: F811
    original = cli.invoke(
        app, ["workflow", "import", str(EXAMPLES / "invoice_processing_workflow.yml")]
    )
    assert original.exit_code == 0, original.output
    imported = json.loads(original.stdout)
    assert [w["code"] for w in imported["warnings"]] == ["W1", "W1"]
    bundled = json.loads(cli.invoke(app, ["workflow", "import", str(BUNDLED_INVOICE)]).stdout)
    assert (bundled["version"], bundled["warnings"]) == (2, [])
