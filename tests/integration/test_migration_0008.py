"""Migration 0008 (memory governance) on a database holding data from before it: the live
memory gets its current version in ``memory_versions``, decay's ``memory_archive`` rows come
back as archived memories, the table goes, old injection rows get no keys; and back down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store import dialects
from chameleon_workflow.store.database import Database
from chameleon_workflow.store.migrate import alembic_config, current_revisions, upgrade
from chameleon_workflow.store.tables import Base
from chameleon_workflow.store.types import IntList, Json, UtcDateTime, UuidList
from tests.conftest import PG_ADMIN_URL

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
ARCHIVED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USED_AT = datetime(2026, 2, 1, 8, 30, tzinfo=UTC)


def downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


class Ids:
    template, instance, role = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    live, archived, source, uow = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _typed(sql: str, **types: Any) -> sa.TextClause:
    return sa.text(sql).bindparams(*(sa.bindparam(k, type_=t) for k, t in types.items()))


U, TS = sa.Uuid(), UtcDateTime()
MEMORY_COLUMNS = (
    "id, instance_id, role_id, scope, actor_id, key, value, version, confidence, is_toxic, "
    "source_uow_id, created_at, updated_at, last_accessed_at"
)
MEMORY_VALUES = (
    ":id, :instance, :role, 'GLOBAL', NULL, :key, :value, :version, :confidence, :toxic, "
    ":source, :t0, :updated, :used"
)


def fill_0007(db: Database, ids: type[Ids]) -> None:
    """A template, instance and role, one live memory, one archived by decay, one injection
    row naming both (raw SQL against the 0007 schema)."""
    memory_types = {
        "id": U, "instance": U, "role": U, "source": U, "value": Json,
        "toxic": sa.Boolean(), "t0": TS, "updated": TS, "used": TS,
    }  # fmt: skip
    with db.begin() as conn:
        conn.execute(
            _typed(
                "INSERT INTO templates (id, name, version, source_yaml, canonical_yaml, "
                "imported_at, definition) VALUES (:id, 'T', 1, 'x', 'x', :t0, :d)",
                id=U,
                t0=TS,
                d=Json,
            ),  # fmt: skip
            {"id": ids.template, "t0": T0, "d": {}},
        )
        conn.execute(
            _typed(
                "INSERT INTO instances (id, template_id, name, definition_yaml, created_at, "
                "definition) VALUES (:id, :template, 'I', 'x', :t0, :d)",
                id=U,
                template=U,
                t0=TS,
                d=Json,
            ),  # fmt: skip
            {"id": ids.instance, "template": ids.template, "t0": T0, "d": {}},
        )
        conn.execute(
            _typed(
                "INSERT INTO roles (id, instance_id, name, role_type) "
                "VALUES (:id, :instance, 'Worker', 'BETA')",
                id=U,
                instance=U,
            ),  # fmt: skip
            {"id": ids.role, "instance": ids.instance},
        )
        common = {"instance": ids.instance, "role": ids.role, "t0": T0, "toxic": False}
        conn.execute(
            _typed(
                f"INSERT INTO memories ({MEMORY_COLUMNS}) VALUES ({MEMORY_VALUES})", **memory_types
            ),
            common | {"id": ids.live, "key": "tone", "value": {"say": "hello"}, "version": 3,
                      "confidence": 0.7, "source": ids.source, "updated": USED_AT, "used": USED_AT},
        )  # fmt: skip
        conn.execute(
            _typed(
                f"INSERT INTO memory_archive ({MEMORY_COLUMNS}, archived_at) "
                f"VALUES ({MEMORY_VALUES}, :archived_at)",
                archived_at=TS, **memory_types,
            ),
            common | {"id": ids.archived, "key": "old", "value": [1, 2], "version": 2,
                      "confidence": 1.0, "source": None, "updated": T0, "used": T0,
                      "archived_at": ARCHIVED_AT},
        )  # fmt: skip
        conn.execute(
            _typed(
                "INSERT INTO memory_injections (uow_id, actor_id, role_id, injected_at, "
                "memory_ids, versions) VALUES (:uow, NULL, :role, :at, :ids, :versions)",
                uow=U, role=U, at=TS, ids=UuidList, versions=IntList,
            ),  # fmt: skip
            {"uow": ids.uow, "role": ids.role, "at": USED_AT,
             "ids": dialects.of(conn).uuid_list([ids.live, ids.archived]), "versions": [3, 2]},
        )  # fmt: skip


def tables(db: Database) -> set[str]:
    with db.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def rows(db: Database, sql: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql))]


def head_revision(db: Database) -> str:
    head = ScriptDirectory.from_config(alembic_config(db)).get_current_head()
    assert head is not None
    return head


def check_upgraded(url: str, ids: type[Ids]) -> None:
    """What 0008 made of the 0007 data, read through the engine and raw SQL."""
    db = Database(url)
    try:
        assert current_revisions(db) == {head_revision(db)}
        assert "memory_archive" not in tables(db)
        with db.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
        [keys] = rows(db, "SELECT keys FROM memory_injections")
        assert keys == {"keys": None}
        state = rows(db, "SELECT id, archived_at IS NOT NULL AS archived FROM memories")
        assert {uuid.UUID(str(r["id"])): bool(r["archived"]) for r in state} == {
            ids.live: False,
            ids.archived: True,
        }
    finally:
        db.dispose()

    engine = Engine(Settings(database_url=url, scheduler_enabled=False))
    try:
        live = engine.memory.get(ids.live)
        assert (live.key, live.value, live.version, live.archived, live.held) == (
            "tone", {"say": "hello"}, 3, False, False,
        )  # fmt: skip
        (version,) = engine.memory.versions(ids.live)
        assert (version.version, version.value, version.confidence, version.source_uow_id) == (
            3, {"say": "hello"}, 0.7, ids.source,
        )  # fmt: skip
        assert (version.written_at, version.reasoning, version.written_by) == (USED_AT, None, None)

        old = engine.memory.get(ids.archived)
        assert (old.key, old.value, old.version, old.archived_at) == ("old", [1, 2], 2, ARCHIVED_AT)
        assert old.archived_by == "engine (memory decay)"
        assert old.archive_reason and "0008" in old.archive_reason
        assert [v.version for v in engine.memory.versions(ids.archived)] == [2]
        for memory_id, v in ((ids.live, 3), (ids.archived, 2)):
            (seen,) = engine.memory.influence(memory_id)
            assert (seen.uow_id, seen.version, seen.key) == (ids.uow, v, None)
        # The archived memory is an ordinary archived one now: it can be restored.
        assert not engine.memory.restore(ids.archived, "needed again", by="tests").archived
    finally:
        engine.close()


# --- SQLite --------------------------------------------------------------------------------------


def test_sqlite_upgrade_from_0007_keeps_memories_and_the_archive(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    upgrade(db, "0007")
    assert "memory_archive" in tables(db) and "memory_versions" not in tables(db)
    fill_0007(db, Ids)
    upgrade(db)
    db.dispose()
    check_upgraded(url, Ids)


def test_sqlite_downgrade_to_0007_puts_archived_memories_back_in_the_archive(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(db, "0007")
    fill_0007(db, Ids)
    upgrade(db)
    downgrade(db, "0007")
    try:
        assert current_revisions(db) == {"0007"}
        assert {"memory_archive", "memories"} <= tables(db)
        assert "memory_versions" not in tables(db)
        archive = rows(db, "SELECT id, key, version, archived_at FROM memory_archive")
        assert [(uuid.UUID(str(r["id"])), r["key"], r["version"]) for r in archive] == [
            (Ids.archived, "old", 2)
        ]
        assert str(archive[0]["archived_at"]).startswith("2026-03-01 12:00:00")
        live = rows(db, "SELECT id, version FROM memories")
        assert [(uuid.UUID(str(r["id"])), r["version"]) for r in live] == [(Ids.live, 3)]
        with db.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("memories")}
            injection_columns = {
                c["name"] for c in sa.inspect(conn).get_columns("memory_injections")
            }
        assert not columns & {"archived_at", "held_at", "reasoning", "written_by"}
        assert "keys" not in injection_columns
        # and up again: the same result as the first time
        upgrade(db)
    finally:
        db.dispose()
    check_upgraded(str(db.url.render_as_string(hide_password=False)), Ids)


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_pg(pg_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of this test (``pg_url`` skips, or under CI fails,
    when the server is unreachable), dropped afterwards."""
    name = f"chameleon_mig8_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
        yield url.render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_postgres_upgrade_from_0007_keeps_memories_and_the_archive(fresh_pg: str) -> None:
    db = Database(fresh_pg)
    upgrade(db, "0007")
    assert "memory_archive" in tables(db)
    fill_0007(db, Ids)
    upgrade(db)
    db.dispose()
    check_upgraded(fresh_pg, Ids)
