"""Leasing work and reading a held UOW in as few round trips as each database allows.

On PostgreSQL a checkout is one statement: pick the oldest eligible row with
``FOR UPDATE SKIP LOCKED``, lease it, write its log row and return its attributes.
SQLite runs the same steps as separate statements inside one ``BEGIN IMMEDIATE``
transaction, which no other writer can interleave with.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, text

from ..domain.enums import UowStatus
from . import uows

_CERBERUS = """
  AND u.parent_id IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM uows k WHERE k.parent_id = u.id
      AND k.status NOT IN ('COMPLETED', 'ABANDONED')
      AND (k.status <> 'PENDING' OR k.current_interaction_id <> u.current_interaction_id))"""
_NOT_PARKED = "\n  AND (u.child_count = 0 OR u.status <> 'PENDING')"

_CLAIM_PG = """
WITH c AS (
  SELECT u.id, u.status AS prev_status FROM uows u
  WHERE u.current_interaction_id IN :ix AND u.status IN :st{filter}
    AND EXISTS (SELECT 1 FROM role_assignments ra WHERE ra.actor_id = :actor AND ra.role_id = :role)
  ORDER BY u.entered_at
  LIMIT 1
  FOR UPDATE OF u SKIP LOCKED
), l AS (
  UPDATE uows SET status = 'ACTIVE', lease_id = :lease, lease_holder_id = :actor,
    current_role_id = :role, leased_at = :now, last_heartbeat = :now, updated_at = :now
  FROM c WHERE uows.id = c.id
  RETURNING uows.id, uows.instance_id, uows.parent_id, uows.current_interaction_id,
    uows.child_count, uows.finished_child_count, uows.failure, c.prev_status AS status
), g AS (
  INSERT INTO interaction_log (uow_id, instance_id, actor_id, role_id, event,
    from_interaction_id, to_interaction_id, from_status, to_status, at, details)
  SELECT id, instance_id, :actor, :role, 'checkout', current_interaction_id,
    current_interaction_id, status, 'ACTIVE', :now, CAST(:details AS jsonb) FROM l
){memory}
SELECT l.*, (
  SELECT jsonb_object_agg(a.key, jsonb_build_array(a.version, a.value)) FROM (
    SELECT DISTINCT ON (key) key, version, value FROM uow_attributes
    WHERE uow_id = l.id ORDER BY key, version DESC) a
) AS latest,
  (SELECT jsonb_object_agg(key, value) FROM e) AS context, picked.ids, picked.versions
FROM l, picked
"""

# The memory part of a checkout (shared by the one-statement claim and the gated path):
# the visible memories, personal overriding global key by key, the access stamp (at most
# once a minute per memory) and the audit row.
_MEMORY_CTES = """
, v AS (
  SELECT id, scope, key, value, version, last_accessed_at FROM memories
  WHERE role_id = :role AND NOT is_toxic
    AND (scope = 'GLOBAL' OR (scope = 'ACTOR' AND actor_id = :actor))
    AND EXISTS (SELECT 1 FROM {uow})
), e AS (
  SELECT DISTINCT ON (key) id, key, value, version FROM v
  ORDER BY key, (scope = 'ACTOR') DESC
), picked AS (
  SELECT array_agg(id ORDER BY key) AS ids, array_agg(version ORDER BY key) AS versions FROM e
), t AS (
  UPDATE memories m SET last_accessed_at = :now FROM v
  WHERE m.id = v.id AND (v.last_accessed_at IS NULL OR v.last_accessed_at < :touch_before)
), i AS (
  INSERT INTO memory_injections (uow_id, actor_id, role_id, injected_at, memory_ids, versions)
  SELECT {uow}.id, :actor, :role, :now, ids, versions FROM picked, {uow} WHERE ids IS NOT NULL
)"""


def _claim_statement(cerberus: bool) -> Any:
    sql = _CLAIM_PG.format(
        filter=_CERBERUS if cerberus else _NOT_PARKED, memory=_MEMORY_CTES.format(uow="l")
    )
    return text(sql).bindparams(bindparam("ix", expanding=True), bindparam("st", expanding=True))


_CLAIM = {flag: _claim_statement(flag) for flag in (False, True)}


def claim_pg(
    conn: Connection,
    *,
    actor_id: uuid.UUID,
    role_id: uuid.UUID,
    interaction_ids: Sequence[uuid.UUID],
    statuses: Sequence[str],
    cerberus: bool,
    lease_id: uuid.UUID,
    now: datetime,
    touch_before: datetime,
) -> Claimed | None:
    """Lease the oldest eligible UOW to an assigned actor in one statement (PostgreSQL).

    The statement also injects the role's memory. Returns the UOW as it was before the
    lease (its status is the previous one), its latest attributes and the memory, or None
    when there is no work or the actor is not assigned.
    """
    row = conn.execute(
        _CLAIM[cerberus],
        {
            "ix": list(interaction_ids),
            "st": list(statuses),
            "actor": actor_id,
            "role": role_id,
            "lease": lease_id,
            "now": now,
            "touch_before": touch_before,
            "details": json.dumps({"lease_id": str(lease_id)}),
        },
    ).first()
    if row is None:
        return None
    latest = _versions(row.latest)
    return Claimed(row, latest, dict(row.context or {}), _injected(row))


@dataclass(frozen=True)
class Claimed:
    row: Row[Any]
    latest: dict[str, tuple[int, Any]]
    context: dict[str, Any]
    injected: list[dict[str, Any]]

    @property
    def attributes(self) -> dict[str, Any]:
        return {k: v for k, (_, v) in self.latest.items()}


def _versions(agg: dict[str, list[Any]] | None) -> dict[str, tuple[int, Any]]:
    return {k: (int(v[0]), v[1]) for k, v in (agg or {}).items()}


def _injected(row: Row[Any]) -> list[dict[str, Any]]:
    pairs = zip(row.ids or (), row.versions or (), strict=True)
    return [{"memory_id": str(i), "version": v} for i, v in pairs]


_READ_HELD = """
SELECT u.*, (
  SELECT jsonb_object_agg(a.key, jsonb_build_array(a.version, a.value)) FROM (
    SELECT DISTINCT ON (key) key, version, value FROM uow_attributes
    WHERE uow_id = u.id ORDER BY key, version DESC) a
) AS latest
FROM uows u WHERE u.id = :id
"""
_HELD_PG = {False: text(_READ_HELD), True: text(_READ_HELD + "FOR UPDATE OF u")}


def held_with_attributes(
    conn: Connection, uow_id: uuid.UUID, *, lock: bool = True
) -> tuple[Row[Any] | None, dict[str, tuple[int, Any]]]:
    """The UOW row (locked for this transaction unless told) and its latest attributes."""
    if conn.dialect.name != "postgresql":
        row = uows.get(conn, uow_id, for_update=lock)
        return row, (uows.latest_attributes(conn, uow_id) if row is not None else {})
    row = conn.execute(_HELD_PG[lock], {"id": uow_id}).first()
    if row is None:
        return None, {}
    return row, _versions(row.latest)


# A plain submit in one statement: the update is fenced (still ACTIVE, same lease, same
# holder), and the attribute versions, log rows and the lease's recorded outcome are
# written only if it matched.
_SUBMIT_ROUTE_PG = text("""
WITH moved AS (
  UPDATE uows SET status = :status, current_interaction_id = :interaction_id,
    entered_at = :now, updated_at = :now, failure = CAST(:failure AS jsonb),
    lease_id = NULL, lease_holder_id = NULL, leased_at = NULL, last_heartbeat = NULL
  WHERE id = :id AND status = 'ACTIVE' AND lease_id = :lease AND lease_holder_id = :actor
  RETURNING id
), a AS (
  INSERT INTO uow_attributes (uow_id, key, version, value, actor_id, reasoning, created_at)
  SELECT moved.id, r.key, r.version, r.value, :actor, :reasoning, :now
  FROM moved, jsonb_to_recordset(CAST(:attrs AS jsonb)) AS r(key text, version int, value jsonb)
), g AS (
  INSERT INTO interaction_log (uow_id, instance_id, actor_id, role_id, event,
    from_interaction_id, to_interaction_id, from_status, to_status, at, details)
  SELECT r.* FROM moved, jsonb_to_recordset(CAST(:logs AS jsonb)) AS r(uow_id uuid,
    instance_id uuid, actor_id uuid, role_id uuid, event text, from_interaction_id uuid,
    to_interaction_id uuid, from_status text, to_status text, at timestamptz, details jsonb)
), o AS (
  INSERT INTO lease_outcomes (lease_id, uow_id, actor_id, operation, request_hash, outcome, at)
  SELECT :lease, moved.id, :actor, 'submit', :digest, CAST(:outcome AS jsonb), :now FROM moved
)
SELECT count(*) FROM moved
""")


def submit_route_pg(
    conn: Connection,
    *,
    uow_id: uuid.UUID,
    lease_id: uuid.UUID,
    actor_id: uuid.UUID,
    reasoning: str | None,
    versions: Sequence[Mapping[str, Any]],
    status: str,
    interaction_id: uuid.UUID | None,
    failure: Mapping[str, Any] | None,
    logs: Sequence[Mapping[str, Any]],
    digest: str,
    outcome: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Apply a routed submit and record its outcome under the lease, if the lease still
    holds; False when it no longer does (nothing written)."""
    attrs = [{"key": v["key"], "version": v["version"], "value": v["value"]} for v in versions]
    params = {
        "id": uow_id,
        "lease": lease_id,
        "actor": actor_id,
        "reasoning": reasoning,
        "status": status,
        "interaction_id": interaction_id,
        "failure": json.dumps(failure) if failure is not None else None,
        "attrs": json.dumps(attrs),
        "logs": uows.log_rows_json(logs),
        "digest": digest,
        "outcome": json.dumps(outcome),
        "now": now,
    }
    return bool(conn.execute(_SUBMIT_ROUTE_PG, params).scalar())


ACTIVE = UowStatus.ACTIVE.value


_INJECT_PG = text(
    "WITH u AS (SELECT CAST(:uow AS uuid) AS id)"
    + _MEMORY_CTES.format(uow="u")
    + "\nSELECT (SELECT jsonb_object_agg(key, value) FROM e) AS context, picked.ids,"
    + " picked.versions FROM picked"
)


def inject_memory_pg(
    conn: Connection,
    *,
    uow_id: uuid.UUID,
    actor_id: uuid.UUID,
    role_id: uuid.UUID,
    now: datetime,
    touch_before: datetime,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merged memory context and the injected entries, recorded and stamped (PostgreSQL)."""
    params = {"uow": uow_id, "actor": actor_id, "role": role_id, "now": now}
    row = conn.execute(_INJECT_PG, params | {"touch_before": touch_before}).one()
    return dict(row.context or {}), _injected(row)
