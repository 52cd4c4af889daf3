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
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _truncate_all
from tests.e2e.test_examples_over_http import (
    _chameleon,
    _free_port,
    _server_env,
    _wait_until_up,
)

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
START, END = "<!-- first-session:start -->", "<!-- first-session:end -->"
SESSION_SECONDS = 120


def session_blocks(text: str) -> list[str]:
    """The bash blocks of the first session, in order."""
    assert text.count(START) == 1 and text.count(END) == 1, "mark the first session once"
    section = text[text.index(START) : text.index(END)]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, re.S | re.M)
    fences = re.findall(r"^```", section, re.M)
    assert len(fences) == 2 * len(blocks), "every block of the first session must be bash"
    return blocks


def run_session(base: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """The first session in one bash process; stdout and stderr together, as a terminal shows."""
    venv = REPO / ".venv" / "bin"
    assert (venv / "chameleon").exists(), "the README calls .venv/bin/chameleon: run make install"
    script = "set -euo pipefail\n" + "\n".join(session_blocks(README.read_text(encoding="utf-8")))
    env = _server_env(database_url)
    env.update(CHAMELEON=base, PATH=f"{venv}{os.pathsep}{env.get('PATH', '')}")
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
    """Every JSON object the session printed, one per line."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def one(found: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    hits = [a for a in found if all(a.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (match, found)
    return hits[0]


# --- the harness fails when a command fails -------------------------------------------------------


def test_the_session_is_marked_and_every_block_is_bash() -> None:
    blocks = session_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    script = "\n".join(blocks)
    for step in ("/workflow/instantiate", "/genesis", "/actors", "/assignments", "/checkout"):
        assert step in script, step
    for step in ("/heartbeat", "/workflow/submit", "/workflow/failure", "run-zombie-protocol"):
        assert step in script, step
    assert "minimal_workflow.yml" in script and "localhost:8000" not in script


def test_a_session_without_a_server_fails_at_its_first_request(tmp_path: Path) -> None:
    done = run_session(f"http://127.0.0.1:{_free_port()}", f"sqlite:///{tmp_path / 'none.db'}")
    assert done.returncode != 0
    assert "valid workflow 'Minimal_Workflow'" in done.stdout  # validation needs no server
    assert "Failed to connect" in done.stdout or "Couldn't connect" in done.stdout, done.stdout
    assert "template_id" not in done.stdout  # stopped there: nothing after ran
    assert not (tmp_path / "none.db").exists()


# --- the session against `make run`'s server ------------------------------------------------------


@contextmanager
def make_run(database_url: str, workdir: Path) -> Iterator[str]:
    """What `make run` does: migrate, import the examples, serve. Yields the base URL."""
    env = _server_env(database_url)
    for step in (["db", "upgrade"], ["workflow", "import-examples"]):
        done = subprocess.run(
            [_chameleon(), *step], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    port = _free_port()
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_chameleon(), "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc, log)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = log.read_text()
    assert " 500 " not in text and "Traceback" not in text, text


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the run's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chameleon.db'}"
    url: str = request.getfixturevalue("pg_url")
    _truncate_all(url)
    return url


def test_the_first_session_runs_as_written(fresh_url: str, tmp_path: Path) -> None:
    with make_run(fresh_url, tmp_path) as base:
        done = run_session(base, fresh_url)
    assert done.returncode == 0, done.stdout
    out = answers(done.stdout)
    assert "valid workflow 'Minimal_Workflow'" in done.stdout

    # import-examples made version 1; the session's import is version 2
    assert one(out, name="Minimal_Workflow")["version"] == 2
    instance = one(out, status="PENDING", interaction="Inbox", message=None)  # genesis
    assert set(instance) == {"uow_id", "status", "interaction"}

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
    assert failed["uow_id"] == second and failed["success"] is True
    fixer = one(out, role="Fixer")
    assert (fixer["uow_id"], fixer["previous_status"]) == (second, "FAILED")
    assert fixer["failure"]["error_code"] == "UNREADABLE"
    assert fixer["failure"]["details"] == {"char": "#"}

    # the zombie: reclaimed once, to Timeouts, and the late heartbeat is refused
    assert one(out, success=True, zombies_reclaimed=1)["reclaimed"] == 1
    reclaimed = one(out, id=second)
    assert (reclaimed["status"], reclaimed["interaction"]) == ("FAILED", "Timeouts")
    assert reclaimed["failure"]["kind"] == "zombie" and reclaimed["lease_holder_id"] is None
    assert one(out, error="LeaseLost")["details"]["uow_id"] == second

    depths = {i["name"]: i["depth"] for i in one(out, name="Minimal_Workflow v2")["interactions"]}
    assert depths == {
        "Done": {"COMPLETED": 1},
        "Errors": {},
        "Inbox": {},
        "Timeouts": {"FAILED": 1},
    }
