"""The operators' commands, as cron runs them, on both databases (bad input first)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store.tables import Memory, Uow
from tests.flows import Flow, fixture_text
from tests.process import chameleon_command, server_env

M = Memory.__table__
U = Uow.__table__
runner = CliRunner()


@pytest.fixture
def flow(db_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flow]:
    """A workflow instance on the database the CLI is pointed at (real clock, as cron has)."""
    monkeypatch.setenv("CHAMELEON_DATABASE_URL", db_url)
    engine = Engine(settings)
    yield Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 1})
    engine.close()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def out(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def age(flow: Flow, table: Any, column: str, seconds: float) -> None:
    then = flow.engine.clock() - timedelta(seconds=seconds)
    with flow.engine.db.begin() as conn:
        conn.execute(sa.update(table).where(table.c[column].is_not(None)).values({column: then}))


def remember(flow: Flow, key: str = "tip") -> uuid.UUID:
    role = flow.roles["Triage"]
    return flow.engine.memory.write(role, key=key, value=1, scope=MemoryScope.GLOBAL).id


# --- bad input: exit 2, nothing changes ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["zombies", "sweep", "--timeout"],
        ["zombies", "sweep", "--timeout", "0"],
        ["zombies", "sweep", "--timeout", "-5"],
        ["zombies", "sweep", "--timeout", "1.5"],
        ["zombies", "sweep", "--timeout", "soon"],
        ["zombies", "sweep", "--timeout", str(10**30)],
        ["zombies", "sweep", "--batch-size", "0"],
        ["memory", "decay", "--retention-days"],
        ["memory", "decay", "--retention-days", "0"],
        ["memory", "decay", "--retention-days", "-90"],
        ["memory", "decay", "--retention-days", "2.5"],
        ["memory", "decay", "--retention-days", "36501"],
        ["memory", "decay", "--instance", "not-a-uuid"],
        ["stale-tokens", "sweep", "--batch-size", "-1"],
        ["maintenance", "runs", "--limit", "0"],
    ],
)
def test_bad_counts_exit_2_and_change_nothing(flow: Flow, args: list[str]) -> None:
    c = flow.take("Triage")
    age(flow, U, "last_heartbeat", 10_000)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert flow.where(c.uow_id)[0] == "ACTIVE"
    assert flow.engine.maintenance.runs() == []


def test_toxic_marks_refuse_bad_input(flow: Flow) -> None:
    memory_id = str(remember(flow))
    assert cli("memory", "mark-toxic", "12345", "--reason", "bad").exit_code == 2
    assert cli("memory", "mark-toxic", memory_id).exit_code == 2  # --reason is required
    blank = cli("memory", "mark-toxic", memory_id, "--reason", "   ")
    assert blank.exit_code == 2 and "reason" in blank.output
    assert cli("memory", "unmark-toxic", memory_id, "--reason", "").exit_code == 2
    assert flow.engine.memory.get(uuid.UUID(memory_id)).is_toxic is False


def test_an_unknown_memory_or_instance_is_a_user_error_exit_2(flow: Flow) -> None:
    missing = str(uuid.uuid4())
    result = cli("memory", "mark-toxic", missing, "--reason", "bad")
    assert result.exit_code == 2 and missing in result.output
    assert cli("memory", "decay", "--instance", missing).exit_code == 2
    assert cli("maintenance", "runs", "--job", "coffee").exit_code == 2


# --- the commands ------------------------------------------------------------------------------


def test_zombies_sweep_reclaims_and_records_a_cli_run(flow: Flow) -> None:
    c = flow.take("Triage")
    age(flow, U, "last_heartbeat", 120)
    assert out(cli("zombies", "sweep"))["zombies_reclaimed"] == 0
    listed = out(cli("zombies", "list", "--timeout", "60"))
    assert listed["count"] == 1 and listed["zombies"][0]["id"] == str(c.uow_id)
    dry = out(cli("zombies", "sweep", "--timeout", "60", "--dry-run"))
    assert dry["dry_run"] is True and dry["counts"] == {"candidates": 1}
    done = out(cli("zombies", "sweep", "--timeout", "60", "--batch-size", "10"))
    assert done["zombies_reclaimed"] == 1 and done["parameters"]["batch_size"] == 10
    assert flow.where(c.uow_id) == ("FAILED", "Timeouts")
    assert {r.trigger for r in flow.engine.maintenance.runs()} == {"cli"}


def test_stale_tokens_sweep(flow: Flow) -> None:
    assert out(cli("stale-tokens", "sweep"))["tokens_moved"] == 0
    assert out(cli("stale-tokens", "sweep", "--dry-run"))["counts"] == {"candidates": 0}


def test_memory_decay_dry_run_archive_and_delete(flow: Flow) -> None:
    old = remember(flow, "old")
    age(flow, M, "last_accessed_at", 31 * 86_400)
    remember(flow, "fresh")
    dry = out(cli("memory", "decay", "--retention-days", "30", "--dry-run"))
    assert dry["counts"] == {"candidates": 1} and dry["sample"] == [str(old)]
    assert out(cli("memory", "decay"))["memories_deleted"] == 0  # 90 days by default
    args = [
        "memory",
        "decay",
        "--retention-days",
        "30",
        "--archive",
        "--instance",
        str(flow.instance_id),
    ]
    archived = out(cli(*args))
    assert archived["memories_deleted"] == 1 and archived["counts"]["archived"] is True


def test_mark_and_unmark_toxic(flow: Flow) -> None:
    memory_id = remember(flow)
    marked = out(cli("memory", "mark-toxic", str(memory_id), "--reason", "wrong", "--by", "alice"))
    assert marked == {
        "success": True,
        "changed": True,
        "message": f"Memory {memory_id} marked as toxic.",
    }
    row = flow.engine.memory.get(memory_id)
    assert (row.is_toxic, row.toxic_reason, row.toxic_by) == (True, "wrong", "alice")
    cleared = out(cli("memory", "unmark-toxic", str(memory_id), "--reason", "fine"))
    assert cleared["changed"] is True
    assert flow.engine.memory.get(memory_id).toxic_by is None
    assert flow.engine.toxic.history(memory_id)[1]["by"].startswith("cli:")


def test_maintenance_runs_lists_the_history(flow: Flow) -> None:
    out(cli("zombies", "sweep"))
    out(cli("memory", "decay", "--dry-run"))
    table = cli("maintenance", "runs")
    assert table.exit_code == 0
    lines = table.stdout.strip().splitlines()
    assert [line.split("\t")[1:3] for line in lines] == [
        ["memory_decay", "cli"],
        ["zombie_sweep", "cli"],
    ]
    as_json = json.loads(cli("maintenance", "runs", "--json", "--job", "zombie_sweep").stdout)
    assert [r["job"] for r in as_json] == ["zombie_sweep"] and as_json[0]["error"] is None


# --- the scheduler in a process of its own -----------------------------------------------------


def _scheduler_env(db_url: str) -> dict[str, str]:
    """Short schedules; the server's scheduler switched off (``scheduler run`` runs anyway)."""
    env = server_env(db_url)
    env.update(
        CHAMELEON_ZOMBIE_TIMEOUT_SECONDS="60",
        CHAMELEON_ZOMBIE_INTERVAL_SECONDS="0.2",
        CHAMELEON_LEADER_LEASE_SECONDS="1",
    )
    return env


def test_scheduler_run_on_a_missing_database_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    done = subprocess.run(
        [chameleon_command(), "scheduler", "run"], env=_scheduler_env(f"sqlite:///{missing}"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"database: {missing}",
        f"error: database {missing} does not exist: run 'chameleon db upgrade' to create it",
    ]
    assert list(tmp_path.iterdir()) == []


def test_scheduler_run_reclaims_a_zombie_and_stops_cleanly_on_sigterm(
    flow: Flow, db_url: str, tmp_path: Path
) -> None:
    c = flow.take("Triage")
    age(flow, U, "last_heartbeat", 120)
    maintenance = flow.engine.maintenance
    log = tmp_path / "scheduler.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [chameleon_command(), "scheduler", "run"],
            env=_scheduler_env(db_url),
            stdout=sink,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 60
        while flow.where(c.uow_id) != ("FAILED", "Timeouts"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        (replica,) = {lease.holder for lease in maintenance.leadership().leases}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()
    assert lines[0] == f"database: {flow.engine.db.where}"
    assert lines[-1] == "scheduler: stopped"
    assert maintenance.leadership().leases == []  # released at once, not left to expire
    (reclaiming,) = [
        r for r in maintenance.runs(job="zombie_sweep") if r.counts and r.counts["reclaimed"]
    ]
    assert reclaiming.trigger == "schedule" and reclaiming.replica == replica
