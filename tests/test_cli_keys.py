"""`chameleon keys` and `serve`'s authentication switch, as real processes (bad input first).

A key is printed on stdout and nowhere else; every error is one `error:` line with exit 2.
`serve --insecure-no-auth` (or CHAMELEON_AUTH_ENABLED=false) binds only to loopback.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from chameleon_workflow.domain.enums import ActorType
from chameleon_workflow.domain.security import Scope, parse_key
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from tests.conftest import FakeClock
from tests.process import chameleon_command, free_port, server_env, stop, wait_until_up

TIMEOUT = 120  # an upper bound for a command, not a measured speed


def chameleon(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [chameleon_command(), *args], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


def one_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The single `error:` line of a refused command (nothing on stdout), naming every word."""
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if not line.startswith("database: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite database (for what does not depend on the database kind)."""
    database = tmp_path / "chameleon.db"
    shutil.copy(sqlite_template, database)
    return f"sqlite:///{database}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- keys create, list, revoke --------------------------------------------------------------


def test_bad_key_commands_are_one_line_exit_2(sqlite_url: str) -> None:
    env = server_env(sqlite_url)
    one_error(chameleon(env, "keys", "create", "--scope", "root", code=2), "unknown scope 'root'")
    one_error(chameleon(env, "keys", "create", "--scope", "actor", code=2), "needs the actor")
    bad_actor = chameleon(env, "keys", "create", "--scope", "actor", "--actor", "bot", code=2)
    one_error(bad_actor, "--actor must be a UUID", "'bot'")
    missing = str(uuid.uuid4())
    one_error(chameleon(env, "keys", "revoke", missing, code=2), missing, "does not exist")
    one_error(chameleon(env, "keys", "revoke", "not-a-uuid", code=2), "must be a UUID")
    listed = chameleon(env, "keys", "list")
    assert listed.stdout == "" and "no API keys" in listed.stderr


def test_a_key_is_printed_on_stdout_only_and_listed_without_its_secret(
    db_url: str, settings: Settings
) -> None:
    env = server_env(db_url)
    made = chameleon(env, "keys", "create", "--scope", "viewer", "--name", "dashboard")
    key = made.stdout.strip()
    assert made.stdout == key + "\n"
    key_id, secret = parse_key(key) or (None, "")
    assert key_id is not None and f"created viewer key {key_id} (dashboard)" in made.stderr
    assert secret not in made.stderr
    engine = Engine(settings)
    try:
        actor = engine.instances.create_actor("bot", ActorType.AI_AGENT)
        assert engine.keys.authenticate(key).scope is Scope.VIEWER
    finally:
        engine.close()
    bound = chameleon(env, "keys", "create", "--scope", "actor", "--actor", str(actor))
    bound_id, _ = parse_key(bound.stdout.strip()) or (None, "")
    _expired_key(settings)
    chameleon(env, "keys", "revoke", str(key_id))
    listed = chameleon(env, "keys", "list").stdout
    assert secret not in listed
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert rows[str(key_id)][1:3] == ["viewer", "revoked"] and "dashboard" in rows[str(key_id)]
    assert rows[str(bound_id)][1:3] == ["actor", "active"] and f"{actor})" in listed
    assert sorted(r[2] for r in rows.values()) == ["active", "expired", "revoked"]


def _expired_key(settings: Settings) -> None:
    clock = FakeClock()
    clock.now -= timedelta(days=2)
    engine = Engine(settings, clock=clock)
    try:
        engine.keys.create(Scope.VIEWER, expires_in_days=1, created_by="tests")
    finally:
        engine.close()


# --- keys local-admin ------------------------------------------------------------------------


def test_local_admin_is_made_once_in_a_private_file(sqlite_url: str, tmp_path: Path) -> None:
    env = server_env(sqlite_url)
    where = tmp_path / "admin.key"
    first = chameleon(env, "keys", "local-admin", "--file", str(where))
    assert first.stdout == "" and f"created a local admin key in {where}" in first.stderr
    assert mode(where) == 0o600
    key = where.read_text().strip()
    chameleon(env, "keys", "local-admin", "--file", str(where))
    assert where.read_text().strip() == key  # reused, not replaced
    engine = Engine(Settings(database_url=sqlite_url))
    try:
        principal = engine.keys.authenticate(key)
        assert principal.scope is Scope.ADMIN and len(engine.keys.list()) == 1
        engine.keys.revoke(principal.key_id or uuid.uuid4())
    finally:
        engine.close()
    where.chmod(0o644)
    chameleon(env, "keys", "local-admin", "--file", str(where))  # the old key is revoked
    assert where.read_text().strip() != key and mode(where) == 0o600


def test_local_admin_keeps_its_key_beside_the_sqlite_file(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "data" / "work.db"
    database.parent.mkdir()
    shutil.copy(sqlite_template, database)
    env = server_env(f"sqlite:///{database}")
    done = chameleon(env, "keys", "local-admin")
    where = database.with_name("work.admin-key")
    assert parse_key(where.read_text().strip()) is not None and mode(where) == 0o600
    assert f"cat {where}" in done.stderr  # how to use it
    where.chmod(0o644)
    again = chameleon(env, "keys", "local-admin")
    assert mode(where) == 0o600 and "0600" in again.stderr  # a readable file is made private


# --- serve without keys -----------------------------------------------------------------------


def test_serving_without_keys_is_refused_beyond_loopback(tmp_path: Path) -> None:
    env = server_env(f"sqlite:///{tmp_path / 'none.db'}")
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        refused = chameleon(env, "serve", "--insecure-no-auth", "--host", host, code=2)
        one_error(refused, "--insecure-no-auth", "loopback", host)
    off = dict(env, CHAMELEON_AUTH_ENABLED="false")
    one_error(chameleon(off, "serve", "--host", "0.0.0.0", code=2), "CHAMELEON_AUTH_ENABLED")
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("flag", [[], ["--insecure-no-auth"]], ids=["keys", "insecure"])
def test_on_loopback_insecure_no_auth_serves_without_keys(
    tmp_path: Path, sqlite_url: str, flag: list[str]
) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    command = [chameleon_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *flag]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=server_env(sqlite_url), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc, log)
        answer = httpx.get(f"{base}/templates", timeout=10)
    finally:
        stop(proc)
    if flag:
        assert answer.status_code == 200 and answer.json()["items"] == []
        assert "warning: authentication is OFF (--insecure-no-auth)" in log.read_text()
    else:
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
