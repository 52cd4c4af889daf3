"""PostgreSQL's statements for leased work, built once at import from the catalogue
(:mod:`..sql`): column lists, the log row's shape and status values are never spelled by
hand. :mod:`.postgres` runs them."""

from __future__ import annotations

from sqlalchemy import (
    TextClause,
    bindparam,
    text,
)

from ...domain.enums import MemoryScope
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
    literals,
    log_rows_from_json,
    move_values,
    pg_recordset,
)
from ..sql import (
    literal as lit,
)
from ..work import (
    UOW_STATE_FIELDS,
)

GLOBAL, PERSONAL = MemoryScope.GLOBAL.value, MemoryScope.ACTOR.value

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
  WHERE role_id = :role AND archived_at IS NULL AND NOT is_toxic
    AND (scope = {lit(GLOBAL)} OR (scope = {lit(PERSONAL)} AND actor_id = :actor))
    AND EXISTS (SELECT 1 FROM {{uow}})
), e AS (
  SELECT DISTINCT ON (key) id, key, value, version, last_accessed_at FROM v
  ORDER BY key, (scope = {lit(PERSONAL)}) DESC
), picked AS (  -- one sort feeds the three parallel arrays
  SELECT array_agg(id) AS ids, array_agg(version) AS versions, array_agg(key) AS keys
  FROM (SELECT id, version, key FROM e ORDER BY key COLLATE "C") ordered
), t AS (
  UPDATE {MEMORIES.name} m SET last_accessed_at = :now FROM e
  WHERE m.id = e.id AND (e.last_accessed_at IS NULL OR e.last_accessed_at < :touch_before)
), i AS (
  INSERT INTO {INJECTIONS.name}
    (uow_id, actor_id, role_id, injected_at, memory_ids, versions, keys)
  SELECT {{uow}}.id, :actor, :role, :now, ids, versions, keys FROM picked, {{uow}}
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
  (SELECT jsonb_object_agg(key, value) FROM e) AS context,
  picked.ids, picked.versions, picked.keys
FROM l, picked
"""


def _claim_statement(cerberus: bool) -> TextClause:
    sql = _CLAIM.format(filter=_CERBERUS if cerberus else _NOT_PARKED)
    return text(sql).bindparams(bindparam("ix", expanding=True), bindparam("st", expanding=True))


CLAIMS = {flag: _claim_statement(flag) for flag in (False, True)}

_READ_HELD = f"""
SELECT {column_list(UOW_STATE_FIELDS, "u.")},
  CASE WHEN {_HELD.format(u="u")} THEN {_LATEST.format(u="u")} END AS latest,
  {_story("u")}
FROM {UOWS.name} u WHERE u.id = :id
"""
READ_HELD_STATEMENTS = {False: text(_READ_HELD), True: text(_READ_HELD + "FOR UPDATE OF u")}

# A plain submit in one statement: the update is fenced (still ACTIVE, same lease, same
# holder); the attribute versions, log rows and the lease's outcome are written only if it
# matched. When it did not, the same statement returns the lease's story.
ATTRIBUTE_COLUMNS = ("key", "version", "value")
_WRITE_VERSIONS = insert_select(
    ATTRIBUTES,
    {
        "uow_id": "moved.id",
        **{c: f"r.{c}" for c in ATTRIBUTE_COLUMNS},
        "actor_id": ":actor",
        "reasoning": ":reasoning",
        "created_at": ":now",
    },
    "moved, jsonb_to_recordset(CAST(:attrs AS jsonb)) AS "
    f"r({pg_recordset(ATTRIBUTES, ATTRIBUTE_COLUMNS)})",
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
SUBMIT_ROUTED = text(f"""
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

MOVE_AND_LOG = text(f"""
WITH moved AS (
  UPDATE {UOWS.name} SET status = :status, current_interaction_id = :interaction_id,
    entered_at = :now, updated_at = :now, failure = CAST(:failure AS jsonb),
    lease_id = NULL, lease_holder_id = NULL, leased_at = NULL, last_heartbeat = NULL
  WHERE id = :id
)
{log_rows_from_json("logs")}
""")

INJECT = text(
    "WITH u AS (SELECT CAST(:uow AS uuid) AS id)"
    + _MEMORY_CTES.format(uow="u")
    + "\nSELECT (SELECT jsonb_object_agg(key, value) FROM e) AS context, picked.ids,"
    + " picked.versions, picked.keys FROM picked"
)

# The columns a move sets in one statement (anything else takes the Core path).
MOVE_COLUMNS = frozenset(move_values("", None, None, None))
