"""The README's first session, run as written against a real server, on SQLite and PostgreSQL.

Every fenced bash block between ``<!-- first-session:start -->`` and
``<!-- first-session:end -->`` is run in order, in ONE bash process under
``set -euo pipefail``, from the repository folder (the README calls ``.venv/bin/chameleon``),
with ``CHAMELEON`` set to a ``chameleon serve`` process on a fresh migrated database into which
``chameleon workflow import-examples`` has imported the examples — what ``make run`` does.
Any failing command fails the test; the answers the README promises are then checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import IN_CI, PG_ADMIN_URL, empty_database
from tests.process import cli, free_port, server_env, serving

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
VENV = REPO / ".venv" / "bin"
SESSION_SECONDS = 120


def marked_blocks(part: str) -> list[str]:
    """The bash blocks between ``<!-- part:start -->`` and ``<!-- part:end -->``, in order."""
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- {part}:start -->", f"<!-- {part}:end -->"
    assert text.count(start) == 1 and text.count(end) == 1, f"mark the README's {part} once"
    section = text[text.index(start) : text.index(end)]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, re.S | re.M)
    fences = re.findall(r"^```", section, re.M)
    assert len(fences) == 2 * len(blocks), f"every block of the README's {part} must be bash"
    return blocks


def session_blocks() -> list[str]:
    return marked_blocks("first-session")


def run_session(base: str, database_url: str, key_file: Path) -> subprocess.CompletedProcess[str]:
    """The first session in one bash process; stdout and stderr together, as a terminal shows."""
    if not shutil.which("curl"):
        if IN_CI:
            pytest.fail("the README's first session needs curl, which is not installed")
        pytest.skip("the README's first session needs curl, which is not installed")
    script = "set -euo pipefail\n" + "\n".join(session_blocks())
    env = server_env(database_url)
    env.update(CHAMELEON=base, KEY_FILE=str(key_file))
    return bash(script, env)


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` in one bash process in the repository folder, the venv's commands on PATH."""
    assert (VENV / "chameleon").exists(), "the README calls .venv/bin/chameleon: run make install"
    env = env | {"PATH": f"{VENV}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=SESSION_SECONDS,
    )


def answers(output: str) -> list[dict[str, Any]]:
    """Every JSON object the session printed, one per line (what follows one is ignored)."""
    decode = json.JSONDecoder().raw_decode
    return [decode(line)[0] for line in output.splitlines() if line.startswith("{")]


def one(found: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    hits = [a for a in found if all(a.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (match, found)
    return hits[0]


# --- the harness fails when a command fails -------------------------------------------------------


def test_the_session_is_marked_and_every_block_is_bash() -> None:
    blocks = session_blocks()
    assert len(blocks) >= 5
    script = "\n".join(blocks)
    for step in ("/workflow/instantiate", "/genesis", "/actors", "/assignments", "/checkout"):
        assert step in script, step
    for step in ("/heartbeat", "/workflow/submit", "/workflow/failure", "run-zombie-protocol"):
        assert step in script, step
    assert "minimal_workflow.yml" in script and "localhost:8000" not in script


def test_a_session_without_a_server_fails_at_its_first_request(tmp_path: Path) -> None:
    key = tmp_path / "admin-key"
    key.write_text("chm_" + "0" * 32 + "_" + "A" * 43 + "\n")
    url = f"sqlite:///{tmp_path / 'none.db'}"
    done = run_session(f"http://127.0.0.1:{free_port()}", url, key)
    assert done.returncode != 0
    assert "valid workflow 'Minimal_Workflow'" in done.stdout  # validation needs no server
    assert "Failed to connect" in done.stdout or "Couldn't connect" in done.stdout, done.stdout
    assert "template_id" not in done.stdout  # stopped there: nothing after ran
    assert not (tmp_path / "none.db").exists()


# --- the session against `make run`'s server ------------------------------------------------------


@contextmanager
def make_run(database_url: str, workdir: Path) -> Iterator[str]:
    """What `make run` does: migrate, import the examples, serve (with the background services)."""
    env = server_env(database_url, CHAMELEON_SCHEDULER_ENABLED="true")
    cli(env, "db", "upgrade")
    cli(env, "workflow", "import-examples")
    cli(env, "keys", "local-admin", "--file", str(workdir / "chameleon.admin-key"))
    log = workdir / "server.log"
    with serving(env, log) as (base, _):
        yield base
    text = log.read_text()
    assert " 500 " not in text and "Traceback" not in text, text


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the run's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chameleon.db'}"
    url: str = request.getfixturevalue("pg_url")
    empty_database(url)
    return url


def test_the_first_session_runs_as_written(fresh_url: str, tmp_path: Path) -> None:
    with make_run(fresh_url, tmp_path) as base:
        done = run_session(base, fresh_url, tmp_path / "chameleon.admin-key")
    assert done.returncode == 0, done.stdout
    out = answers(done.stdout)
    assert "valid workflow 'Minimal_Workflow'" in done.stdout

    # no dead ends: no warning from validate, none in the import answer
    assert not [line for line in done.stdout.splitlines() if line.startswith("warning")]
    imported = one(out, name="Minimal_Workflow")
    assert imported["version"] == 2  # import-examples made version 1
    assert not imported.get("warnings")
    genesis = one(out, status="PENDING", interaction="Inbox", message=None)
    assert set(genesis) == {"uow_id", "status", "interaction"}

    # the first unit: checkout, heartbeat, submit to Done, finished by Archive
    assert one(out, message="Heartbeat recorded.")["success"] is True
    submits = [a for a in out if "submitted:" in a.get("message", "")]
    assert [(s["status"], s["interaction"]) for s in submits] == [
        ("PENDING", "Done"),
        ("COMPLETED", "Done"),
        ("PENDING", "Inbox"),  # Fixer's remediation, back to Worker
    ]
    first, _, second = (s["uow_id"] for s in submits)
    assert submits[1]["uow_id"] == first != second

    # the second unit's failure lands in Errors, where EPSILON sees why
    failed = one(out, status="FAILED", interaction="Errors")
    assert failed["uow_id"] == second == genesis["uow_id"] and failed["success"] is True
    fixer = one(out, role="Fixer")
    assert (fixer["uow_id"], fixer["previous_status"]) == (second, "FAILED")
    assert fixer["failure"]["code"] == "UNREADABLE"
    assert fixer["failure"]["details"] == {"char": "#"}

    # the zombie: reclaimed once, to Timeouts, and the late heartbeat is refused
    assert one(out, zombies_reclaimed=1)["success"] is True
    reclaimed = one(out, id=second)
    assert (reclaimed["status"], reclaimed["interaction"]) == ("FAILED", "Timeouts")
    assert reclaimed["failure"]["kind"] == "zombie" and reclaimed["lease_holder_id"] is None
    assert one(out, error="LeaseLost")["details"]["uow_id"] == second
    assert re.search(r'^\{"error":"LeaseLost".*\}  \(HTTP 409\)$', done.stdout, re.M)

    depths = {i["name"]: i["depth"] for i in one(out, name="Minimal_Workflow v2")["interactions"]}
    assert depths == {
        "Done": {"COMPLETED": 1},
        "Errors": {},
        "Inbox": {},
        "Timeouts": {"FAILED": 1},
    }


# --- the PostgreSQL steps: create the database, then `make run` on it ----------------------------

README_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _named(block: str, database: str) -> str:
    """The block creating or using ``database`` instead of ``chameleon``; no ``make install``."""
    lines = [line for line in block.splitlines() if not line.startswith("make install")]
    named = re.sub(r"(?<=[ /])chameleon(?=[\"\s]|$)", database, "\n".join(lines), flags=re.M)
    return named.replace(" make run", " chameleon db upgrade")


@pytest.mark.postgres
def test_the_postgres_steps_create_a_database_the_server_can_use(pg_url: str) -> None:
    if not PG_ADMIN_URL.startswith(README_PG):
        pytest.skip(f"the README's PostgreSQL steps use {README_PG}, the tests {PG_ADMIN_URL}")
    with_client, with_driver, make_run_on_it = marked_blocks("postgres-setup")
    ways = [with_driver] + ([with_client] if shutil.which("createdb") else [])
    made: list[str] = []
    try:
        for block in ways:
            made.append(f"readme_{uuid.uuid4().hex[:10]}")
            for step in (block, make_run_on_it):
                done = bash("set -euo pipefail\n" + _named(step, made[-1]), {**os.environ})
                assert done.returncode == 0, done.stdout
            assert "database schema is up to date" in done.stdout
    finally:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for database in made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()
