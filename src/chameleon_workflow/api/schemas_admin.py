"""Bodies of the admin endpoints. Counts, flags and ids are strict: ``0`` is not false,
``"300"`` is not a count. A field left out or null takes the server's default."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StrictBool

from .schemas import Body

PositiveInt = Annotated[int, Field(gt=0, strict=True)]
Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
By = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="Accepted but not trusted: the change is written as the API key's name and "
        "id; this value is kept only in the audit trail's parameters (it is the author only "
        "with authentication off).",
    ),
]


class ZombieProtocolRequest(Body):
    timeout_seconds: PositiveInt | None = None
    dry_run: StrictBool = False
    batch_size: PositiveInt | None = None


class StaleTokenProtocolRequest(Body):
    dry_run: StrictBool = False
    batch_size: PositiveInt | None = None


class MemoryDecayRequest(Body):
    retention_days: PositiveInt | None = None
    dry_run: StrictBool = False
    archive: StrictBool = False
    instance_id: uuid.UUID | None = None
    batch_size: PositiveInt | None = None


class ToxicRequest(Body):
    memory_id: uuid.UUID
    reason: Reason
    by: By = "admin"


class BulkToxicRequest(Body):
    memory_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)
    reason: Reason
    by: By = "admin"
