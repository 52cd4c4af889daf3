"""Bodies of the admin endpoints. Counts and ids are strict: no booleans, floats or strings."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, field_validator

from .schemas import Body

PositiveInt = Annotated[int, Field(gt=0, strict=True)]
Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
By = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]


def _not_null(value: Any) -> Any:
    # Leaving a field out means "the default"; an explicit null is a mistake.
    if value is None:
        raise ValueError("must be a positive integer, not null")
    return value


class ZombieProtocolRequest(Body):
    timeout_seconds: PositiveInt | None = None
    dry_run: bool = False
    batch_size: PositiveInt | None = None

    _no_null = field_validator("timeout_seconds", "batch_size", mode="before")(_not_null)


class StaleTokenProtocolRequest(Body):
    dry_run: bool = False
    batch_size: PositiveInt | None = None

    _no_null = field_validator("batch_size", mode="before")(_not_null)


class MemoryDecayRequest(Body):
    retention_days: PositiveInt | None = None
    dry_run: bool = False
    archive: bool = False
    instance_id: uuid.UUID | None = None
    batch_size: PositiveInt | None = None

    _no_null = field_validator("retention_days", "batch_size", mode="before")(_not_null)


class ToxicRequest(Body):
    memory_id: uuid.UUID
    reason: Reason
    by: By = "admin"


class BulkToxicRequest(Body):
    memory_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)
    reason: Reason
    by: By = "admin"
