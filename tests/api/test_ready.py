"""`/health` is liveness, `/ready` readiness; a locked or unreachable database is a 503."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from tests.api.conftest import items, ok, problem
from tests.conftest import TEST_HOSTS

UNREACHABLE_PG = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test"
ACTOR = {"name": "writer", "type": "HUMAN"}


def _client(url: str, **settings: object) -> TestClient:
    """Database faults, not keys, are under test here: authentication is off."""
    options: dict[str, object] = {"auth_enabled": False, "allowed_hosts": TEST_HOSTS, **settings}
    settings = Settings(database_url=url, scheduler_enabled=False, **options)  # type: ignore[arg-type]
    app = create_app(settings)
    return TestClient(app, raise_server_exceptions=False)


# --- unhappy paths --------------------------------------------------------------------------------


def test_unreachable_database_health_is_200_ready_and_requests_are_503() -> None:
    with _client(UNREACHABLE_PG) as c:
        assert ok(c.get("/health"))["status"] == "ok"
        for response in (c.get("/ready"), c.get("/templates"), c.post("/actors", json=ACTOR)):
            body = problem(response, 503, "DatabaseUnavailable", "cannot reach")
            assert int(response.headers["retry-after"]) >= 1
            assert "s3cret" not in response.text and body["details"]["reason"] == "unreachable"


def test_ready_is_503_without_the_schema_and_creates_no_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with _client(f"sqlite:///{missing}") as c:
        problem(c.get("/ready"), 503, "SchemaNotCurrent", "does not exist", "chameleon db upgrade")
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with _client(f"sqlite:///{empty}") as c:
        problem(c.get("/ready"), 503, "SchemaNotCurrent", "no Chameleon schema", "db upgrade")
        assert ok(c.get("/health"))["status"] == "ok"


@pytest.fixture
def write_locked(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, sqlite3.Connection]]:
    """A migrated SQLite file whose write lock another connection holds (BEGIN IMMEDIATE)."""
    path = tmp_path / "locked.db"
    path.write_bytes(sqlite_template.read_bytes())
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    yield f"sqlite:///{path}", holder
    holder.close()


def test_a_lock_held_past_the_busy_timeout_is_503_then_the_write_succeeds(
    write_locked: tuple[str, sqlite3.Connection],
) -> None:
    url, holder = write_locked
    with _client(url, sqlite_busy_timeout_seconds=0.05) as c:
        locked = c.post("/actors", json=ACTOR)
        problem(locked, 503, "DatabaseUnavailable", "locked", "try again")
        assert locked.headers["retry-after"]
        assert items(c.get("/templates")) == []  # readers are not blocked (WAL)
        holder.execute("ROLLBACK")
        ok(c.post("/actors", json=ACTOR), 201)


def test_integrity_and_client_errors_are_not_turned_into_503(client: TestClient) -> None:
    problem(client.post("/actors", json={"name": "", "type": "NOPE"}), 422)
    problem(client.get("/templates/not-a-uuid"), 422)


# --- happy paths ----------------------------------------------------------------------------------


def test_ready_is_200_on_a_migrated_database(client: TestClient) -> None:
    ready = ok(client.get("/ready"))
    assert ready["status"] == "ready" and ready["database"] in ("sqlite", "postgresql")
    assert ok(client.get("/health"))["status"] == "ok"


@pytest.mark.postgres
def test_an_exhausted_pool_is_503_then_serves_again(pg_url: str) -> None:
    settings = Settings(
        database_url=pg_url,
        scheduler_enabled=False,
        db_pool_size=1,
        db_pool_timeout_seconds=0.1,
        auth_enabled=False,
        allowed_hosts=TEST_HOSTS,
    )
    engine = Engine(settings)
    try:
        with TestClient(create_app(settings, engine=engine)) as c:
            held = [engine.db.engine.connect() for _ in range(2)]  # pool 1 + overflow 1
            response = c.get("/templates")
            problem(response, 503, "DatabaseUnavailable", "no free connection")
            assert response.headers["retry-after"]
            for conn in held:
                conn.close()
            items(c.get("/templates"))
    finally:
        engine.close()
