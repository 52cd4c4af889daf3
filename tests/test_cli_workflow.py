"""`chameleon db upgrade` and `chameleon workflow validate|import|list|export|graph`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from tests.conftest import EXAMPLES, FIXTURES

ROUTING = FIXTURES / "routing_workflow.yml"
INVALID = {
    "invalid_no_alpha.yml": ["R1", "R7"],
    "invalid_beta_no_strategy.yml": ["R5", "R7"],
    "invalid_omega_no_cerberus.yml": ["R9"],
    "constitutional_zero_agent.yaml": ["R6", "unknown type 'STANDARD'"],
    "complete_workflow_example.yaml": ["R7", "R8", "R10", "R13"],
}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner on a fresh, migrated SQLite file."""
    monkeypatch.setenv("CHAMELEON_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    return runner


def _listed(cli: CliRunner) -> list[tuple[str, str]]:
    result = cli.invoke(app, ["workflow", "list"])
    assert result.exit_code == 0, result.output
    return [tuple(line.split("\t")[:2]) for line in result.stdout.splitlines()]  # type: ignore[misc]


# --- unhappy paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "import"])
def test_missing_file_is_exit_2_with_a_message(
    cli: CliRunner, tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "nope.yml"
    result = cli.invoke(app, ["workflow", command, str(missing)])
    assert result.exit_code == 2
    assert f"no such file: {missing}" in result.stderr
    assert _listed(cli) == []


@pytest.mark.parametrize("command", ["validate", "import"])
def test_a_directory_or_non_utf8_file_is_exit_2(
    cli: CliRunner, tmp_path: Path, command: str
) -> None:
    assert cli.invoke(app, ["workflow", command, str(tmp_path)]).exit_code == 2
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00workflow")
    result = cli.invoke(app, ["workflow", command, str(binary)])
    assert result.exit_code == 2 and "cannot read" in result.stderr
    assert _listed(cli) == []


@pytest.mark.parametrize(("example", "expected"), sorted(INVALID.items()))
def test_validate_invalid_examples_lists_the_rules(
    cli: CliRunner, example: str, expected: list[str]
) -> None:
    result = cli.invoke(app, ["workflow", "validate", str(EXAMPLES / example)])
    assert result.exit_code == 2
    assert f"{EXAMPLES / example}: invalid" in result.stderr
    for rule in expected:
        assert rule in result.stderr
    violations = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert violations and all(line[4:].startswith("R") for line in violations)


@pytest.mark.parametrize("example", sorted(INVALID))
def test_import_of_an_invalid_example_imports_nothing(cli: CliRunner, example: str) -> None:
    result = cli.invoke(app, ["workflow", "import", str(EXAMPLES / example)])
    assert result.exit_code == 2
    assert "workflow definition is invalid" in result.stderr
    for rule in INVALID[example]:
        assert rule in result.stderr
    assert result.stdout == ""
    assert _listed(cli) == []


def test_validate_reports_malformed_yaml(cli: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("workflow: [unclosed\n", encoding="utf-8")
    result = cli.invoke(app, ["workflow", "validate", str(broken)])
    assert result.exit_code == 2 and "STRUCTURE" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["export", "Nope"],
        ["graph", "Nope"],
        ["export", "Routing_Test", "--version", "7"],
        ["graph", "Routing_Test", "--version", "7"],
    ],
)
def test_export_or_graph_of_an_unknown_template_is_exit_2(cli: CliRunner, args: list[str]) -> None:
    assert cli.invoke(app, ["workflow", "import", str(ROUTING)]).exit_code == 0
    result = cli.invoke(app, ["workflow", *args])
    assert result.exit_code == 2
    assert "no " in result.stderr and "template named" in result.stderr
    assert result.stdout == ""


def test_export_with_a_non_integer_version_is_a_usage_error(cli: CliRunner) -> None:
    result = cli.invoke(app, ["workflow", "export", "Routing_Test", "--version", "one"])
    assert result.exit_code == 2
    assert "version" in result.stderr.lower()


# --- happy paths ----------------------------------------------------------------------------------


def test_db_upgrade_is_idempotent(cli: CliRunner) -> None:
    again = cli.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0
    assert "up to date" in again.stdout


@pytest.mark.parametrize(
    "path",
    [ROUTING, EXAMPLES / "invoice_processing_workflow.yml", EXAMPLES / "mixed_agent_workflow.yaml"],
)
def test_validate_a_valid_workflow(cli: CliRunner, path: Path) -> None:
    result = cli.invoke(app, ["workflow", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid workflow '" in result.stdout
    assert _listed(cli) == []  # validating writes nothing


def test_import_twice_lists_both_versions(cli: CliRunner) -> None:
    first = cli.invoke(app, ["workflow", "import", str(ROUTING)])
    second = cli.invoke(app, ["workflow", "import", str(ROUTING)])
    assert first.exit_code == 0 and second.exit_code == 0
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert (one["name"], one["version"], two["version"]) == ("Routing_Test", 1, 2)
    assert one["template_id"] != two["template_id"]
    assert _listed(cli) == [("Routing_Test", "v1"), ("Routing_Test", "v2")]
    lines = cli.invoke(app, ["workflow", "list"]).stdout.splitlines()
    assert one["template_id"] in lines[0] and two["template_id"] in lines[1]


def test_export_of_version_1_reimports_to_the_same_template(cli: CliRunner, tmp_path: Path) -> None:
    cli.invoke(app, ["workflow", "import", str(ROUTING)])
    changed = ROUTING.read_text(encoding="utf-8").replace("{name: Timeouts}", "{name: Timeouts2}")
    changed = changed.replace("interaction: Timeouts,", "interaction: Timeouts2,")
    variant = tmp_path / "variant.yml"
    variant.write_text(changed, encoding="utf-8")
    assert cli.invoke(app, ["workflow", "import", str(variant)]).exit_code == 0

    v1 = cli.invoke(app, ["workflow", "export", "Routing_Test", "--version", "1"])
    latest = cli.invoke(app, ["workflow", "export", "Routing_Test"])
    assert v1.exit_code == 0 and latest.exit_code == 0
    assert "Timeouts2" in latest.stdout and "Timeouts2" not in v1.stdout
    exported = tmp_path / "exported.yml"
    exported.write_text(v1.stdout, encoding="utf-8")
    reimported = cli.invoke(app, ["workflow", "import", str(exported)])
    assert json.loads(reimported.stdout)["version"] == 3
    v3 = cli.invoke(app, ["workflow", "export", "Routing_Test", "--version", "3"])
    assert v3.stdout == v1.stdout


def test_graph_prints_dot(cli: CliRunner) -> None:
    cli.invoke(app, ["workflow", "import", str(EXAMPLES / "invoice_processing_workflow.yml")])
    result = cli.invoke(app, ["workflow", "graph", "Invoice_Processing"])
    assert result.exit_code == 0
    assert result.stdout.startswith('digraph "Invoice_Processing" {')
    assert "CERBERUS" in result.stdout and result.stdout.rstrip().endswith("}")
    assert cli.invoke(
        app, ["workflow", "graph", "Invoice_Processing", "--version", "1"]
    ).stdout == (result.stdout)


def test_validate_a_yaml_with_a_huge_integer_is_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    text = ROUTING.read_text(encoding="utf-8").replace(
        "threshold: 0}", f"threshold: {'9' * 5000}}}"
    )
    huge.write_text(text, encoding="utf-8")
    result = cli.invoke(app, ["workflow", "validate", str(huge)])
    assert result.exit_code == 2 and "STRUCTURE" in result.stderr
