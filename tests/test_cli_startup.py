"""What every command says about its database, and the one exit-code policy.

Exit 2 with one `error:` line for every user error (arguments, settings, a missing, outdated,
unreachable or locked database); exit 1 with one `internal error:` line for a bug; `--debug`
adds the traceback. The database location goes to stderr, and no password anywhere.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from chameleon_workflow.cli import run
from chameleon_workflow.cli_base import Options
from chameleon_workflow.store import migrate
from chameleon_workflow.store.database import Database
from tests.conftest import FIXTURES
from tests.process import chameleon_command, free_port

ROUTING = FIXTURES / "routing_workflow.yml"
PASSWORD = "s3cret"
NO_SCHEMA = "has no Chameleon schema (or an older one): run 'chameleon db upgrade'"


@pytest.fixture(autouse=True)
def _fresh_options(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("CHAMELEON_")]:
        monkeypatch.delenv(key)
    Options.debug = False
    yield
    Options.debug = False


def chameleon(
    capsys: pytest.CaptureFixture[str], *args: str, code: int = 0
) -> tuple[str, list[str]]:
    """Run the command line in-process; return stdout and the lines of stderr."""
    assert run(list(args)) == code
    captured = capsys.readouterr()
    return captured.out, captured.err.splitlines()


def one_error(err: list[str], *words: str, prefix: str = "error: ") -> str:
    """The single error line of ``err`` (besides the `database:` line), naming every word."""
    errors = [line for line in err if not line.startswith("database: ")]
    assert len(errors) == 1, err
    assert errors[0].startswith(prefix), errors
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert PASSWORD not in "\n".join(err)
    return errors[0]


def use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CHAMELEON_DATABASE_URL", url)


def _clean_env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAMELEON_")}
    env["HOME"] = str(cwd)
    return env


# --- unhappy paths: the database ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["workflow", "list"], ["maintenance", "runs"], ["workflow", "import", str(ROUTING)]],
    ids=["workflow-list", "maintenance-runs", "workflow-import"],
)
def test_from_another_folder_a_command_names_the_missing_file_and_creates_none(
    tmp_path: Path, args: list[str]
) -> None:
    done = subprocess.run(
        [chameleon_command(), *args], cwd=tmp_path, env=_clean_env(tmp_path),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    expected = tmp_path.resolve() / "chameleon.db"
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"database: {expected}",
        f"error: database {expected} does not exist: run 'chameleon db upgrade' to create it",
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_never_migrated_sqlite_file_is_refused_with_the_upgrade_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    use(monkeypatch, f"sqlite:///{path}")
    for args in (["workflow", "list"], ["zombies", "sweep"], ["memory", "decay"]):
        _, err = chameleon(capsys, *args, code=2)
        assert err == [f"database: {path}", f"error: database {path} {NO_SCHEMA}"]


def test_an_older_or_newer_schema_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.db"
    use(monkeypatch, f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    base = ScriptDirectory.from_config(migrate.alembic_config()).get_base()
    migrate.upgrade(db, base or "head")
    if base not in migrate.head_revisions():  # once there are two migrations or more
        _, err = chameleon(capsys, "workflow", "list", code=2)
        one_error(err, NO_SCHEMA)
    migrate.upgrade(db)
    with db.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    db.dispose()
    _, err = chameleon(capsys, "workflow", "list", code=2)
    one_error(err, "newer Chameleon schema", "9999_future", "upgrade Chameleon")


def test_serve_refuses_a_never_migrated_or_missing_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    for path in (empty, tmp_path / "missing.db"):
        env = {**_clean_env(tmp_path), "CHAMELEON_DATABASE_URL": f"sqlite:///{path}"}
        done = subprocess.run(
            [chameleon_command(), "serve", "--port", str(free_port())],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        one_error(done.stderr.splitlines(), str(path), "chameleon db upgrade")
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "missing.db").exists()


def test_a_missing_sqlite_folder_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    _, err = chameleon(capsys, "db", "upgrade", code=2)
    one_error(err, "cannot open", "folder")


def test_a_file_that_is_not_a_database_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text " * 100)
    use(monkeypatch, f"sqlite:///{path}")
    for args in (["workflow", "list"], ["db", "upgrade"]):
        _, err = chameleon(capsys, *args, code=2)
        one_error(err, str(path), "not an SQLite database")


def _pg(pg_url: str, **parts: object) -> str:
    url = sa.engine.make_url(pg_url).set(password=PASSWORD)
    return url.set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("parts", "words"),
    [
        ({"database": "no_such_chameleon_db"}, ["does not exist", "createdb"]),
        ({"username": "no_such_role"}, ["refused the credentials", "no_such_role"]),
    ],
    ids=["no-database", "bad-credentials"],
)
def test_postgres_problems_are_named_in_one_line_without_password(
    pg_url: str,
    parts: dict[str, object],
    words: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use(monkeypatch, _pg(pg_url, **parts))
    for args in (["db", "upgrade"], ["workflow", "list"], ["serve", "--port", "8001"]):
        out, err = chameleon(capsys, *args, code=2)
        line = one_error(err, *words)
        assert "***@" in err[0] and out == "", (err, out)
        assert "Traceback" not in line


def test_an_unreachable_postgres_server_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/chameleon")
    _, err = chameleon(capsys, "maintenance", "runs", code=2)
    assert err[0] == "database: postgresql+psycopg://postgres:***@127.0.0.1:1/chameleon"
    one_error(err, "cannot reach the server", "Connection refused")
    _, err = chameleon(capsys, "--debug", "workflow", "list", code=2)
    assert "Traceback (most recent call last):" in err
    assert err[-1].startswith("error: cannot reach") and PASSWORD not in "\n".join(err)


def test_a_locked_database_past_the_busy_wait_is_one_line(
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    holder = _locked_copy(tmp_path, sqlite_template, monkeypatch)
    try:
        _, err = chameleon(capsys, "zombies", "sweep", "--busy-wait", "0", code=2)
        one_error(err, "is locked by another writer", "try again")
    finally:
        holder.close()


def test_a_sweep_waits_out_a_busy_database(
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    holder = _locked_copy(tmp_path, sqlite_template, monkeypatch)
    release = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        for args in (["zombies", "sweep"], ["stale-tokens", "sweep"], ["memory", "decay"]):
            out, err = chameleon(capsys, *args, "--busy-wait", "60")
            assert json.loads(out)["success"] is True
            assert not [line for line in err if line.startswith("error")], err
    finally:
        release.join()
        holder.close()


def _locked_copy(
    tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch
) -> sqlite3.Connection:
    path = tmp_path / "busy.db"
    path.write_bytes(template.read_bytes())
    use(monkeypatch, f"sqlite:///{path}")
    monkeypatch.setenv("CHAMELEON_SQLITE_BUSY_TIMEOUT_SECONDS", "0.05")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    return holder


# --- unhappy paths: arguments and settings --------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "99999"],
        ["serve", "--port", "-1"],
        ["serve", "--port", "0"],
        ["serve", "--port", "http"],
        ["serve", "--workers", "0"],
        ["zombies", "sweep", "--timeout", "0"],
        ["zombies", "sweep", "--batch-size", "-5"],
        ["zombies", "sweep", "--busy-wait", "-1"],
        ["zombies", "list", "--limit", "0"],
        ["stale-tokens", "sweep", "--batch-size", "0"],
        ["memory", "decay", "--retention-days", "-1"],
        ["memory", "decay", "--retention-days", "1.5"],
        ["maintenance", "runs", "--limit", "1001"],
        ["workflow", "export", "X", "--version", "0"],
        ["workflow", "validate"],
        ["no-such-command"],
    ],
)
def test_bad_arguments_are_one_line_exit_2(
    args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, err = chameleon(capsys, *args, code=2)
    one_error(err, "--help")
    assert out == "" and not (tmp_path / "chameleon.db").exists()


def test_serve_on_a_port_in_use_or_an_address_not_ours_is_one_line(
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "ok.db"
    path.write_bytes(sqlite_template.read_bytes())
    use(monkeypatch, f"sqlite:///{path}")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        _, err = chameleon(capsys, "serve", "--port", port, code=2)
        one_error(err, f"cannot listen on 127.0.0.1:{port}", "in use")
    _, err = chameleon(capsys, "serve", "--host", "192.0.2.1", code=2)  # not ours
    one_error(err, "cannot listen on 192.0.2.1:8000", "address")


def test_a_bad_setting_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHAMELEON_DB_POOL_SIZE", "0")
    _, err = chameleon(capsys, "workflow", "list", code=2)
    one_error(err, "CHAMELEON_DB_POOL_SIZE")


def test_an_internal_failure_is_one_line_exit_1_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(path: Path) -> str:
        raise RuntimeError(f"boom\nsecond line {PASSWORD}")

    monkeypatch.setattr("chameleon_workflow.cli.read_file", broken)
    _, err = chameleon(capsys, "workflow", "validate", str(ROUTING), code=1)
    assert err == ["internal error: RuntimeError: boom"]
    _, err = chameleon(capsys, "--debug", "workflow", "validate", str(ROUTING), code=1)
    assert err[0] == "Traceback (most recent call last):"
    assert err[-1] == "internal error: RuntimeError: boom"


# --- happy paths ----------------------------------------------------------------------------------


def test_validate_needs_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    use(monkeypatch, "postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    out, err = chameleon(capsys, "workflow", "validate", str(ROUTING))
    assert "valid workflow" in out and err == []
    assert list(tmp_path.iterdir()) == []


def test_the_location_goes_to_stderr_and_stdout_stays_pipeable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    where = tmp_path.resolve() / "chameleon.db"
    _, err = chameleon(capsys, "db", "upgrade")
    assert err == [f"database: {where}"]
    out, err = chameleon(capsys, "workflow", "import", str(ROUTING))
    assert json.loads(out)["name"] == "Routing_Test" and err == [f"database: {where}"]
    out, _ = chameleon(capsys, "maintenance", "runs", "--json")
    assert json.loads(out) == []
    _, err = chameleon(capsys, "--debug", "workflow", "list")
    assert err == [f"database: {where}"]
