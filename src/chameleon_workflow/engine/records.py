"""Shared helpers for engine operations: log rows, attribute versions, condition metadata."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from ..domain.errors import InvalidInput
from ..store.work import LogEntry, UowState

MAX_KEY_LENGTH = 200


class _Unset:
    """Marks an argument not given (None is a meaningful value: 'from nowhere')."""


_UNSET = _Unset()


def log_row(
    uow: UowState,
    event: str,
    now: datetime,
    *,
    actor_id: uuid.UUID | None = None,
    role_id: uuid.UUID | None = None,
    to_interaction_id: uuid.UUID | None = None,
    to_status: str | None = None,
    from_interaction_id: uuid.UUID | None | _Unset = _UNSET,
    from_status: str | None | _Unset = _UNSET,
    details: Mapping[str, Any] | None = None,
) -> LogEntry:
    """An interaction-log row for ``uow`` moving from where it is (unless told) to ``to_*``."""
    if isinstance(from_interaction_id, _Unset):
        from_interaction_id = uow.current_interaction_id
    if isinstance(from_status, _Unset):
        from_status = uow.status
    return LogEntry(
        uow_id=uow.id,
        instance_id=uow.instance_id,
        actor_id=actor_id,
        role_id=role_id,
        event=event,
        from_interaction_id=from_interaction_id,
        to_interaction_id=to_interaction_id,
        from_status=from_status,
        to_status=to_status,
        at=now,
        details=dict(details) if details else None,
    )


def check_attributes(attrs: Any, what: str) -> dict[str, Any]:
    """A JSON object with non-empty string keys of bounded length."""
    if not isinstance(attrs, Mapping):
        raise InvalidInput(f"{what} must be a JSON object")
    for key in attrs:
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(
                f"{what}: attribute names must be non-empty strings of at most "
                f"{MAX_KEY_LENGTH} characters (got {key!r:.60})"
            )
    return dict(attrs)


def attribute_rows(
    uow_id: uuid.UUID,
    changes: Mapping[str, Any],
    latest: Mapping[str, tuple[int, Any]],
    *,
    actor_id: uuid.UUID | None,
    reasoning: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """New attribute versions for the keys whose value actually changed."""
    rows = []
    for key, value in changes.items():
        version, old = latest.get(key, (0, None))
        if version and old == value:
            continue
        rows.append(
            {
                "uow_id": uow_id,
                "key": key,
                "version": version + 1,
                "value": value,
                "actor_id": actor_id,
                "reasoning": reasoning,
                "created_at": now,
            }
        )
    return rows


def new_uow(values: Mapping[str, Any]) -> UowState:
    """The state of a UOW about to be inserted from ``values`` (its row, as far as given)."""
    return UowState(
        id=values["id"],
        instance_id=values["instance_id"],
        parent_id=values.get("parent_id"),
        status=values["status"],
        current_interaction_id=values.get("current_interaction_id"),
        current_role_id=values.get("current_role_id"),
        lease_id=None,
        lease_holder_id=None,
        child_count=values.get("child_count", 0),
        finished_child_count=values.get("finished_child_count", 0),
        failure=values.get("failure"),
    )


def metadata(uow: UowState) -> dict[str, Any]:
    """Reserved metadata names of the condition language for a UOW."""
    return {
        "uow_id": str(uow.id),
        "status": uow.status,
        "parent_id": str(uow.parent_id) if uow.parent_id else None,
        "child_count": uow.child_count,
        "finished_child_count": uow.finished_child_count,
    }


def outcome_json(outcome: Any) -> dict[str, Any]:
    """An outcome record's fields as JSON values, as recorded for replays (no ``replayed``)."""

    def plain(v: Any) -> Any:
        if isinstance(v, uuid.UUID | Enum):
            return str(v.value if isinstance(v, Enum) else v)
        return [plain(x) for x in v] if isinstance(v, list) else v

    return {
        f.name: plain(getattr(outcome, f.name))
        for f in dataclasses.fields(outcome)
        if f.name != "replayed"
    }
