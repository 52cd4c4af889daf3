"""The storage seam: every operation whose SQL differs between databases, declared once.

A :class:`SqlDialect` is chosen when the database is opened (``Database.sql``); the
engine calls these methods and never asks which database it runs on. Operations that are
the same on both databases stay plain SQLAlchemy Core in the store modules; the methods
here are the ones a database can do better (one statement on PostgreSQL) or must do
differently (locking, JSON, arrays, UUID text, date arithmetic).

Each method says what it guarantees; both implementations keep the same guarantee, and
``tests/integration/test_dialect_equivalence.py`` compares the rows they write.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Insert, Select, Table

from ..work import Claimed, ClaimRequest, FencedWrite, HeldRead, LogEntry, RoutedSubmit, UowState

if TYPE_CHECKING:
    from ..maintenance.moves import BatchMove, Moved
    from ..pause import PauseMove


class SqlDialect(ABC):
    """What the store needs from a database beyond portable SQLAlchemy Core."""

    name: str
    #: Whether a write of one statement needs no transaction around it (it commits on its
    #: own). On SQLite every write takes the write lock with ``BEGIN IMMEDIATE`` instead.
    single_statement_writes: bool

    # --- locking -----------------------------------------------------------------------

    @abstractmethod
    def lock(self, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` locking the rows it reads until the transaction ends."""

    @abstractmethod
    def lock_skipping(self, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` locking the rows it reads, skipping rows another transaction holds."""

    @abstractmethod
    def serialize(self, conn: Connection, name: str) -> None:
        """Hold a lock on ``name`` until the transaction ends: writers of the same name take
        turns (e.g. two first writes of one memory key, where no row exists to lock yet)."""

    # Whether other processes can be woken by :meth:`notify` (``store.listen``); if not,
    # they poll.
    notifies: bool = False

    @abstractmethod
    def notify(self, conn: Connection, channel: str, message: str) -> None:
        """Wake listeners of ``channel`` in other processes when this transaction commits
        (PostgreSQL ``NOTIFY``); a no-op where listeners poll instead (SQLite)."""

    # --- leased work -------------------------------------------------------------------

    @abstractmethod
    def claim(self, conn: Connection, request: ClaimRequest) -> Claimed | None:
        """Lease the oldest eligible UOW to the actor if assigned, log the checkout, read
        its attributes and inject the role's memory. None: no work, or not assigned."""

    def lease(self, conn: Connection, uow: UowState, request: ClaimRequest) -> Claimed:
        """Lease a UOW already chosen and locked (a gated checkout), as :meth:`claim` does:
        the same portable steps on both databases, with this dialect's memory injection."""
        from . import portable  # portable reads the store modules, which import this one

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

    @abstractmethod
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
        """The role's memory for a checkout (personal overriding global key by key, toxic
        excluded), recorded in ``memory_injections`` and stamped as accessed."""

    @abstractmethod
    def read_held(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        *,
        actor_id: uuid.UUID,
        lease_id: uuid.UUID | None,
        lock: bool,
    ) -> HeldRead:
        """The UOW (locked when ``lock``) and its latest attributes if ``actor_id`` holds its
        lease; otherwise the lease's story, read in the same statement where possible."""

    @abstractmethod
    def submit_routed(self, conn: Connection, submit: RoutedSubmit) -> FencedWrite:
        """Write a plain submit if the lease still holds: versions, move, log rows and the
        recorded outcome. Nothing is written otherwise."""

    @abstractmethod
    def move(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        values: Mapping[str, Any],
        logs: Sequence[LogEntry],
    ) -> None:
        """Update the UOW with ``values`` and append ``logs``."""

    # --- maintenance batches -----------------------------------------------------------

    @abstractmethod
    def move_batch(self, conn: Connection, batch: BatchMove) -> Moved:
        """Move at most ``batch.limit`` UOWs still matching the condition; log each move."""

    @abstractmethod
    def locked_ids(
        self, id_column: Any, condition: Any, order_by: Sequence[Any], limit: int
    ) -> Any:
        """Up to ``limit`` ids matching ``condition``, in ``order_by``, as an expression a
        batch statement selects its rows by (locked, skipping locked rows, where possible)."""

    @abstractmethod
    def delete_memories(self, conn: Connection, cond: ColumnElement[bool], limit: int) -> int:
        """Delete at most ``limit`` memories matching ``cond`` in one conditional statement."""

    @abstractmethod
    def archive_memories(
        self, conn: Connection, cond: ColumnElement[bool], limit: int, now: datetime, reason: str
    ) -> int:
        """Archive at most ``limit`` memories matching ``cond`` (decay), each audited."""

    # --- the kill switch -----------------------------------------------------------------

    @abstractmethod
    def pause_uows(self, conn: Connection, move: PauseMove) -> int:
        """Pause the instance's PENDING, ACTIVE and FAILED UOWs (leases end; ``paused_from``
        keeps what resume restores) with one log row each, set-based; rows another
        transaction holds are skipped where the database has row locks. How many."""

    @abstractmethod
    def resume_uows(self, conn: Connection, move: PauseMove) -> int:
        """Put the instance's PAUSED UOWs back to ``paused_from``, one log row each. How many."""

    # --- expressions -------------------------------------------------------------------

    @abstractmethod
    def json_object(self, pairs: Mapping[str, Any]) -> Any:
        """A JSON object built in SQL from ``name -> SQL expression`` pairs."""

    @abstractmethod
    def uuid_text(self, column: Any) -> Any:
        """A UUID column as its canonical hyphenated text."""

    @abstractmethod
    def time_text(self, column: Any) -> Any:
        """A UTC timestamp column as ISO-8601 text (``+00:00``)."""

    @abstractmethod
    def seconds_between(self, now: datetime, column: Any) -> Any:
        """Whole seconds from ``column`` to ``now``."""

    @abstractmethod
    def json_path_text(self, column: Any, path: Sequence[str]) -> Any:
        """The text at ``path`` inside a JSON column."""

    @abstractmethod
    def uuid_list(self, ids: Sequence[uuid.UUID | str]) -> Any:
        """A list of ids as the ``UuidList`` column type stores it."""

    @abstractmethod
    def list_contains(self, column: Any, value: uuid.UUID) -> ColumnElement[bool]:
        """A ``UuidList`` column holds ``value``."""

    @abstractmethod
    def insert_ignoring_conflict(self, t: Table, values: Mapping[str, Any]) -> Insert:
        """Insert a row unless one with the same key exists (then nothing happens)."""
