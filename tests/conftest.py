"""Real databases for tests: a migrated SQLite file per test and one PostgreSQL database per run.

PostgreSQL tests skip when the server cannot be reached, except under CI (``CI=true``),
where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import LOOPBACK_NAMES, Settings
from chameleon_workflow.store import migrate
from chameleon_workflow.store.database import Database
from chameleon_workflow.store.tables import Base

PG_ADMIN_URL = os.environ.get(
    "CHAMELEON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = FIXTURES / "prototype-examples"


class FakeClock:
    """A clock that starts at the real now and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _pg_reachable() -> str | None:
    try:
        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        eng.dispose()
    except sa.exc.OperationalError as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this test run, dropped at the end."""
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"chameleon_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    yield url
    _dispose_kept(url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


# Children before parents: one DELETE per table, sent as one script in one transaction.
_EMPTY_ALL = "; ".join(f'DELETE FROM "{t.name}"' for t in reversed(Base.metadata.sorted_tables))
_KEPT: dict[str, sa.Engine] = {}  # one engine per database, kept for the whole run


def empty_database(url: str) -> None:
    """Delete every row of every table of ``url``'s (PostgreSQL) database.

    ``DELETE`` costs a fraction of ``TRUNCATE`` on the few rows a test leaves; identity
    columns are not reset, so no test may rely on the values of generated ids.
    """
    eng = _KEPT.get(url)
    if eng is None:
        eng = _KEPT[url] = sa.create_engine(url, pool_size=1, pool_pre_ping=True)
    with eng.begin() as conn:
        conn.exec_driver_sql(_EMPTY_ALL)


def _dispose_kept(url: str) -> None:
    eng = _KEPT.pop(url, None)
    if eng is not None:
        eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A clean, migrated database URL: every test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "chameleon.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_url")
    empty_database(url)
    yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# The Host header of Starlette's TestClient ("testserver") is one more name the app under
# test answers to; everything else keeps the server's default (CHAMELEON_ALLOWED_HOSTS).
TEST_HOSTS = [*LOOPBACK_NAMES, "testserver"]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, scheduler_enabled=False, allowed_hosts=TEST_HOSTS)


@pytest.fixture
def engine(settings: Settings, clock: FakeClock) -> Iterator[Engine]:
    eng = Engine(settings, clock=clock)
    yield eng
    eng.close()


def example_text(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


def make_key(settings: Settings, scope: str = "admin", actor_id: uuid.UUID | None = None) -> str:
    """A new API key of ``scope`` in the settings' database (made as the CLI makes one)."""
    engine = Engine(settings)
    try:
        _, key = engine.keys.create(scope, actor_id=actor_id, created_by="tests")
        return key
    finally:
        engine.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
