"""PostgreSQL: each operation on leased work is one statement (data-modifying CTEs), so it
is its own transaction and costs one round trip; batches lock with ``SKIP LOCKED``.

The statements are built once, at import, from the catalogue (:mod:`..sql`): column
lists, the log row's shape and status values are never spelled by hand.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Integer,
    Row,
    Select,
    String,
    Table,
    TextClause,
    Uuid,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ...domain.enums import MemoryScope
from .. import uows
from ..maintenance.batch import ORIGIN_PATH, BatchMove, Moved
from ..sql import (
    ACTIVE,
    ASSIGNMENTS,
    ATTRIBUTES,
    INJECTIONS,
    LOG,
    MEMORIES,
    OUTCOMES,
    PENDING,
    TERMINAL,
    UOWS,
    column_list,
    insert_select,
    json_value,
    literals,
    log_rows_from_json,
    move_values,
    pg_recordset,
)
from ..sql import (
    literal as lit,
)
from ..tables import MemoryArchive, table
from ..types import UtcDateTime
from ..work import (
    UOW_STATE_FIELDS,
    Claimed,
    ClaimRequest,
    FencedWrite,
    HeldRead,
    LeaseEvent,
    LogEntry,
    LostLease,
    Recorded,
    RoutedSubmit,
    UowState,
)
from . import portable
from .base import SqlDialect

ARCHIVE = table(MemoryArchive)
GLOBAL, PERSONAL = MemoryScope.GLOBAL.value, MemoryScope.ACTOR.value
MEMORY_COLUMNS = [c.name for c in MEMORIES.columns]

# --- statement pieces -----------------------------------------------------------------

# A UOW's latest attributes as {key: [version, value]}, for the UOW aliased ``{u}``.
_LATEST = f"""(
  SELECT jsonb_object_agg(a.key, jsonb_build_array(a.version, a.value)) FROM (
    SELECT DISTINCT ON (key) key, version, value FROM {ATTRIBUTES.name}
    WHERE uow_id = {{u}}.id ORDER BY key, version DESC) a)"""

# The lease's story, for a UOW ``{u}`` its requester does not hold: the log (oldest first)
# and the recorded use of the lease named (else the actor's latest checkout's lease).
_EVENTS = f"""(
  SELECT jsonb_agg(jsonb_build_array(event, actor_id, at, details) ORDER BY id)
  FROM {LOG.name} WHERE uow_id = {{u}}.id)"""
_RECORDED = f"""(
  SELECT to_jsonb(o) FROM {OUTCOMES.name} o
  WHERE o.lease_id = COALESCE(CAST(:lease AS uuid), (
    SELECT CAST(details->>'lease_id' AS uuid) FROM {LOG.name}
    WHERE uow_id = {{u}}.id AND event = 'checkout' AND actor_id = :actor
    ORDER BY id DESC LIMIT 1)))"""
_HELD = (
    f"{{u}}.status = {lit(ACTIVE)} AND {{u}}.lease_holder_id = :actor"
    " AND (CAST(:lease AS uuid) IS NULL OR {u}.lease_id = :lease)"
)


def _story(u: str) -> str:
    """Columns ``held``, ``events``, ``recorded`` for the UOW aliased ``u``; the story's
    subqueries run only when the lease is not held."""
    held = _HELD.format(u=u)
    return (
        f"({held}) AS held,\n"
        f"  CASE WHEN NOT ({held}) THEN {_EVENTS.format(u=u)} END AS events,\n"
        f"  CASE WHEN NOT ({held}) THEN {_RECORDED.format(u=u)} END AS recorded"
    )


# The memory part of a checkout: the visible memories, personal overriding global key by
# key, the access stamp (at most once a minute per memory) and the audit row. Entries are
# listed in code point order of their keys (COLLATE "C"), as SQLite's implementation sorts
# them, whatever the database's collation.
_MEMORY_CTES = f"""
, v AS (
  SELECT id, scope, key, value, version, last_accessed_at FROM {MEMORIES.name}
  WHERE role_id = :role AND NOT is_toxic
    AND (scope = {lit(GLOBAL)} OR (scope = {lit(PERSONAL)} AND actor_id = :actor))
    AND EXISTS (SELECT 1 FROM {{uow}})
), e AS (
  SELECT DISTINCT ON (key) id, key, value, version FROM v
  ORDER BY key, (scope = {lit(PERSONAL)}) DESC
), picked AS (
  SELECT array_agg(id ORDER BY key COLLATE "C") AS ids,
    array_agg(version ORDER BY key COLLATE "C") AS versions FROM e
), t AS (
  UPDATE {MEMORIES.name} m SET last_accessed_at = :now FROM v
  WHERE m.id = v.id AND (v.last_accessed_at IS NULL OR v.last_accessed_at < :touch_before)
), i AS (
  INSERT INTO {INJECTIONS.name} (uow_id, actor_id, role_id, injected_at, memory_ids, versions)
  SELECT {{uow}}.id, :actor, :role, :now, ids, versions FROM picked, {{uow}}
  WHERE ids IS NOT NULL
)"""

_CERBERUS = f"""
  AND u.parent_id IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM {UOWS.name} k WHERE k.parent_id = u.id
      AND k.status NOT IN ({literals(TERMINAL)})
      AND (k.status <> {lit(PENDING)} OR k.current_interaction_id <> u.current_interaction_id))"""
_NOT_PARKED = f"\n  AND (u.child_count = 0 OR u.status <> {lit(PENDING)})"

_CHECKOUT_LOG = {
    "uow_id": "id", "instance_id": "instance_id", "actor_id": ":actor", "role_id": ":role",
    "event": "'checkout'", "from_interaction_id": "current_interaction_id",
    "to_interaction_id": "current_interaction_id", "from_status": "prev_status",
    "to_status": lit(ACTIVE), "at": ":now", "details": "CAST(:details AS jsonb)",
}  # fmt: skip

_CLAIM = f"""
WITH c AS (
  SELECT u.id, u.status AS prev_status FROM {UOWS.name} u
  WHERE u.current_interaction_id IN :ix AND u.status IN :st{{filter}}
    AND EXISTS (SELECT 1 FROM {ASSIGNMENTS.name} ra
                WHERE ra.actor_id = :actor AND ra.role_id = :role)
  ORDER BY u.entered_at
  LIMIT 1
  FOR UPDATE OF u SKIP LOCKED
), l AS (
  UPDATE {UOWS.name} SET status = {lit(ACTIVE)}, lease_id = :lease, lease_holder_id = :actor,
    current_role_id = :role, leased_at = :now, last_heartbeat = :now, updated_at = :now
  FROM c WHERE {UOWS.name}.id = c.id
  RETURNING {column_list(UOW_STATE_FIELDS, UOWS.name + ".")}, c.prev_status
), g AS (
  {insert_select(LOG, _CHECKOUT_LOG, "l")}
){_MEMORY_CTES.format(uow="l")}
SELECT l.*, {_LATEST.format(u="l")} AS latest,
  (SELECT jsonb_object_agg(key, value) FROM e) AS context, picked.ids, picked.versions
FROM l, picked
"""


def _claim_statement(cerberus: bool) -> TextClause:
    sql = _CLAIM.format(filter=_CERBERUS if cerberus else _NOT_PARKED)
    return text(sql).bindparams(bindparam("ix", expanding=True), bindparam("st", expanding=True))


_CLAIMS = {flag: _claim_statement(flag) for flag in (False, True)}

_READ_HELD = f"""
SELECT {column_list(UOW_STATE_FIELDS, "u.")},
  CASE WHEN {_HELD.format(u="u")} THEN {_LATEST.format(u="u")} END AS latest,
  {_story("u")}
FROM {UOWS.name} u WHERE u.id = :id
"""
_READ_HELD_STATEMENTS = {False: text(_READ_HELD), True: text(_READ_HELD + "FOR UPDATE OF u")}

# A plain submit in one statement: the update is fenced (still ACTIVE, same lease, same
# holder); the attribute versions, log rows and the lease's outcome are written only if it
# matched. When it did not, the same statement returns the lease's story.
_ATTRIBUTE_COLUMNS = ("key", "version", "value")
_WRITE_VERSIONS = insert_select(
    ATTRIBUTES,
    {
        "uow_id": "moved.id",
        **{c: f"r.{c}" for c in _ATTRIBUTE_COLUMNS},
        "actor_id": ":actor",
        "reasoning": ":reasoning",
        "created_at": ":now",
    },
    "moved, jsonb_to_recordset(CAST(:attrs AS jsonb)) AS "
    f"r({pg_recordset(ATTRIBUTES, _ATTRIBUTE_COLUMNS)})",
)
_RECORD_OUTCOME = insert_select(
    OUTCOMES,
    {
        "lease_id": ":lease",
        "uow_id": "moved.id",
        "actor_id": ":actor",
        "operation": ":operation",
        "request_hash": ":digest",
        "outcome": "CAST(:outcome AS jsonb)",
        "at": ":now",
    },
    "moved",
)
_SUBMIT_ROUTED = text(f"""
WITH moved AS (
  UPDATE {UOWS.name} SET status = :status, current_interaction_id = :interaction_id,
    entered_at = :now, updated_at = :now, failure = CAST(:failure AS jsonb),
    lease_id = NULL, lease_holder_id = NULL, leased_at = NULL, last_heartbeat = NULL
  WHERE id = :id AND status = {lit(ACTIVE)} AND lease_id = :lease AND lease_holder_id = :actor
  RETURNING id
), a AS (
  {_WRITE_VERSIONS}
), g AS (
  {log_rows_from_json("logs", guard="moved")}
), o AS (
  {_RECORD_OUTCOME}
)
SELECT (SELECT count(*) FROM moved) AS moved, s.* FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
  SELECT {column_list(UOW_STATE_FIELDS, "u.")}, {_story("u")}
  FROM {UOWS.name} u WHERE u.id = :id AND NOT EXISTS (SELECT 1 FROM moved)
) AS s ON true
""")

_MOVE_AND_LOG = text(f"""
WITH moved AS (
  UPDATE {UOWS.name} SET status = :status, current_interaction_id = :interaction_id,
    entered_at = :now, updated_at = :now, failure = CAST(:failure AS jsonb),
    lease_id = NULL, lease_holder_id = NULL, leased_at = NULL, last_heartbeat = NULL
  WHERE id = :id
)
{log_rows_from_json("logs")}
""")

_INJECT = text(
    "WITH u AS (SELECT CAST(:uow AS uuid) AS id)"
    + _MEMORY_CTES.format(uow="u")
    + "\nSELECT (SELECT jsonb_object_agg(key, value) FROM e) AS context, picked.ids,"
    + " picked.versions FROM picked"
)

# The columns a move sets in one statement (anything else takes the Core path).
_MOVE_COLUMNS = frozenset(move_values("", None, None, None))


class PostgresDialect(SqlDialect):
    name = "postgresql"
    single_statement_writes = True

    def lock(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.with_for_update()

    def lock_skipping(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.with_for_update(skip_locked=True)

    # --- leased work -------------------------------------------------------------------

    def claim(self, conn: Connection, request: ClaimRequest) -> Claimed | None:
        row = conn.execute(
            _CLAIMS[request.cerberus],
            {
                "ix": list(request.interaction_ids),
                "st": list(request.statuses),
                "actor": request.actor_id,
                "role": request.role_id,
                "lease": request.lease_id,
                "now": request.now,
                "touch_before": request.touch_before,
                "details": json.dumps({"lease_id": str(request.lease_id)}),
            },
        ).first()
        if row is None:
            return None
        return Claimed(
            uow=UowState.from_row(row),
            previous_status=row.prev_status,
            latest=_versions(row.latest),
            context=dict(row.context or {}),
            injected=_injected(row),
        )

    def lease(self, conn: Connection, uow: UowState, request: ClaimRequest) -> Claimed:
        latest = portable.take_lease(conn, uow, request)
        injected = self.inject_memory(
            conn,
            uow_id=uow.id,
            actor_id=request.actor_id,
            role_id=request.role_id,
            now=request.now,
            touch_before=request.touch_before,
        )
        return portable.claimed(uow, request, latest, injected)

    def inject_memory(
        self,
        conn: Connection,
        *,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        role_id: uuid.UUID,
        now: datetime,
        touch_before: datetime,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        params = {"uow": uow_id, "actor": actor_id, "role": role_id, "now": now}
        row = conn.execute(_INJECT, params | {"touch_before": touch_before}).one()
        return dict(row.context or {}), _injected(row)

    def read_held(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        *,
        actor_id: uuid.UUID,
        lease_id: uuid.UUID | None,
        lock: bool,
    ) -> HeldRead:
        params = {"id": uow_id, "actor": actor_id, "lease": lease_id}
        row = conn.execute(_READ_HELD_STATEMENTS[lock], params).first()
        if row is None:
            return HeldRead(None, {}, LostLease(exists=False, status=None))
        if row.held:
            return HeldRead(UowState.from_row(row), _versions(row.latest))
        return HeldRead(None, {}, _lost(row))

    def submit_routed(self, conn: Connection, s: RoutedSubmit) -> FencedWrite:
        attrs = [{c: v[c] for c in _ATTRIBUTE_COLUMNS} for v in s.versions]
        r = s.recorded
        params = {
            "id": s.uow.id,
            "lease": s.uow.lease_id,
            "actor": s.actor_id,
            "reasoning": s.reasoning,
            "status": s.status,
            "interaction_id": s.interaction_id,
            "failure": json.dumps(s.failure) if s.failure is not None else None,
            "attrs": json.dumps(attrs),
            "logs": _log_json(s.logs),
            "operation": r.operation,
            "digest": r.request_hash,
            "outcome": json.dumps(r.outcome),
            "now": r.at,
        }
        row = conn.execute(_SUBMIT_ROUTED, params).one()
        if row.moved:
            return FencedWrite(applied=True)
        if row.id is None:
            return FencedWrite(applied=False, lost=LostLease(exists=False, status=None))
        if row.held:  # changed hands while the statement ran: the caller reads again
            return FencedWrite(applied=False)
        return FencedWrite(applied=False, lost=_lost(row))

    def move(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        values: Mapping[str, Any],
        logs: Sequence[LogEntry],
    ) -> None:
        if logs and set(values) == _MOVE_COLUMNS:
            failure = values["failure"]
            params = {
                "id": uow_id,
                "status": values["status"],
                "interaction_id": values["current_interaction_id"],
                "now": values["updated_at"],
                "failure": json.dumps(failure) if failure is not None else None,
                "logs": _log_json(logs),
            }
            conn.execute(_MOVE_AND_LOG, params)
            return
        conn.execute(update(UOWS).where(UOWS.c.id == uow_id).values(**values))
        uows.log(conn, logs)

    # --- maintenance batches -----------------------------------------------------------

    def move_batch(self, conn: Connection, b: BatchMove) -> Moved:
        # One statement: the ids picked and locked (SKIP LOCKED), the UPDATE that re-checks
        # the condition, and the INSERT of the log rows from its RETURNING. RETURNING sees
        # only the new row, so the interaction a UOW came from travels in its failure record.
        picked = self.locked_ids(UOWS.c.id, b.condition, b.order_by, b.limit)
        moved = (
            update(UOWS)
            .where(UOWS.c.id == any_(picked), b.condition)
            .values(dict(b.values))
            .returning(
                UOWS.c.id, UOWS.c.instance_id, UOWS.c.parent_id, UOWS.c.current_role_id,
                UOWS.c.status, UOWS.c.current_interaction_id, UOWS.c.failure,
            )
            .cte("moved")
        )  # fmt: skip
        origin = cast(moved.c.failure[ORIGIN_PATH].as_string(), Uuid())
        logged = portable.batch_log(moved, b, origin)
        rows = conn.execute(
            select(moved.c.parent_id, moved.c.status).add_cte(logged.cte("logged"))
        ).all()
        return Moved.of(rows)

    def locked_ids(
        self, id_column: Any, condition: Any, order_by: Sequence[Any], limit: int
    ) -> Any:
        # As an uncorrelated scalar subquery it runs once (an InitPlan), so the rows it
        # locked are the rows the enclosing statement gets, through the primary key.
        locked = (
            select(id_column)
            .where(condition)
            .order_by(*order_by)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .subquery("locked")
        )
        agg = select(func.array_agg(locked.c[id_column.name])).scalar_subquery()
        return cast(agg, ARRAY(Uuid()))

    def delete_memories(self, conn: Connection, cond: ColumnElement[bool], limit: int) -> int:
        picked = self._picked_memories(cond, limit)
        return conn.execute(delete(MEMORIES).where(MEMORIES.c.id == any_(picked), cond)).rowcount

    def archive_memories(
        self, conn: Connection, cond: ColumnElement[bool], limit: int, now: datetime
    ) -> int:
        picked = self._picked_memories(cond, limit)
        gone = (
            delete(MEMORIES)
            .where(MEMORIES.c.id == any_(picked), cond)
            .returning(*(MEMORIES.c[c] for c in MEMORY_COLUMNS))
            .cte("gone")
        )
        stmt = insert(ARCHIVE).from_select(
            [*MEMORY_COLUMNS, "archived_at"],
            select(*(gone.c[c] for c in MEMORY_COLUMNS), literal(now, ARCHIVE.c.archived_at.type)),
        )
        return len(conn.execute(stmt.returning(ARCHIVE.c.id)).all())

    def _picked_memories(self, cond: ColumnElement[bool], limit: int) -> Any:
        # Rows a checkout is touching right now are skipped, so decay never waits on work.
        # In index order, each batch starts where the last one ended instead of scanning
        # past the dead rows that earlier batches left at the start of the table.
        return self.locked_ids(MEMORIES.c.id, cond, (MEMORIES.c.last_accessed_at,), limit)

    # --- expressions -------------------------------------------------------------------

    def json_object(self, pairs: Mapping[str, Any]) -> Any:
        return func.jsonb_build_object(*portable.json_pairs(pairs))

    def uuid_text(self, column: Any) -> Any:
        return cast(column, String())

    def time_text(self, column: Any) -> Any:
        return func.to_char(
            func.timezone("UTC", column), literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        )

    def seconds_between(self, now: datetime, column: Any) -> Any:
        bound = literal(now, UtcDateTime())
        return cast(func.round(func.extract("epoch", bound - column)), Integer())

    def json_path_text(self, column: Any, path: Sequence[str]) -> Any:
        return column[tuple(path)].as_string()

    def uuid_list(self, ids: Sequence[uuid.UUID | str]) -> Any:
        return [uuid.UUID(str(i)) for i in ids]

    def list_contains(self, column: Any, value: uuid.UUID) -> ColumnElement[bool]:
        return type_coerce(column, ARRAY(Uuid())).contains([value])

    def insert_ignoring_conflict(self, t: Table, values: Mapping[str, Any]) -> Insert:
        return pg_insert(t).values(**values).on_conflict_do_nothing()


def _versions(agg: dict[str, list[Any]] | None) -> dict[str, tuple[int, Any]]:
    return {k: (int(v[0]), v[1]) for k, v in (agg or {}).items()}


def _injected(row: Row[Any]) -> list[dict[str, Any]]:
    pairs = zip(row.ids or (), row.versions or (), strict=True)
    return [{"memory_id": str(i), "version": v} for i, v in pairs]


def _log_json(logs: Sequence[LogEntry]) -> str:
    """Log rows as a JSON array for ``jsonb_to_recordset``."""
    return json.dumps([{k: json_value(v) for k, v in e.values().items()} for e in logs])


def _lost(row: Row[Any]) -> LostLease:
    """The lease's story from the ``events`` and ``recorded`` columns of ``row``."""
    events = [
        LeaseEvent(
            event=e,
            actor_id=uuid.UUID(actor) if actor else None,
            at=datetime.fromisoformat(at),
            details=details,
        )
        for e, actor, at, details in row.events or ()
    ]
    recorded = None
    if row.recorded:
        r = dict(row.recorded)
        recorded = Recorded(
            lease_id=uuid.UUID(r["lease_id"]),
            uow_id=uuid.UUID(r["uow_id"]),
            actor_id=uuid.UUID(r["actor_id"]),
            operation=r["operation"],
            request_hash=r["request_hash"],
            outcome=r["outcome"],
            at=datetime.fromisoformat(r["at"]),
        )
    return LostLease(exists=True, status=row.status, events=events, recorded=recorded)
