"""API keys: creating (the secret is shown once), listing, revoking, and authenticating.

A key is ``chm_<key id>_<secret>``; the secret is 256 random bits. Only an HMAC-SHA256 of
the secret is stored, keyed with ``CHAMELEON_API_KEY_PEPPER`` (kept outside the database in
production), and compared in constant time. With 256 random bits no guessing is feasible
either way; the pepper also makes a stolen ``api_keys`` table useless for checking guesses.

Authentication reads the key's row at most once per ``AUTH_CACHE_SECONDS`` per process,
so a revocation or expiry takes effect on every replica within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..domain.errors import InvalidInput, NotFound, Unauthenticated
from ..domain.security import Principal, Scope, format_key, parse_key
from ..store import actors
from ..store import keys as store
from ..store.database import Database
from ..store.keys import KeyRecord
from ..store.pagination import DEFAULT_LIMIT, Key, Page
from .clock import Clock

logger = logging.getLogger(__name__)

DEFAULT_PEPPER = "chameleon-api-key-v1"
MAX_EXPIRY_DAYS = 3650
TOUCH_EVERY = timedelta(minutes=1)
MAX_CACHED = 10_000  # keys whose rows each process keeps
UNAUTHENTICATED = (
    "a valid API key is required: send 'Authorization: Bearer <key>' "
    "(create one with 'chameleon keys create')"
)


class UnknownKey(NotFound):
    pass


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: everything but its secret."""

    id: uuid.UUID
    name: str
    scope: Scope
    actor_id: uuid.UUID | None
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, r: KeyRecord) -> KeyInfo:
        return cls(
            r.id, r.name, Scope(r.scope), r.actor_id, r.created_at, r.created_by,
            r.last_used_at, r.expires_at, r.revoked_at,
        )  # fmt: skip

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class KeyService:
    def __init__(
        self, db: Database, clock: Clock, *, pepper: str | None, cache_seconds: float
    ) -> None:
        self.db = db
        self.clock = clock
        self._pepper = (pepper or DEFAULT_PEPPER).encode()
        self._cache_seconds = cache_seconds
        self._cache: dict[uuid.UUID, tuple[float, KeyRecord | None]] = {}
        self._lock = threading.Lock()

    def _hash(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    # --- management -----------------------------------------------------------------------

    def create(
        self,
        scope: Scope | str,
        *,
        actor_id: uuid.UUID | None = None,
        name: str | None = None,
        expires_in_days: float | None = None,
        created_by: str,
    ) -> tuple[KeyInfo, str]:
        """A new key and its text, which is shown this once and never stored."""
        scope = _scope(scope)
        name = (name or f"{scope.value} key").strip()
        if not name or len(name) > 200:
            raise InvalidInput("the key's name must be 1 to 200 characters")
        if expires_in_days is not None and not 0 < expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidInput(f"expires in days must be more than 0 and at most {MAX_EXPIRY_DAYS}")
        if scope is Scope.ACTOR and actor_id is None:
            raise InvalidInput("an actor key needs the actor it acts as (--actor ID)")
        if scope is not Scope.ACTOR and actor_id is not None:
            raise InvalidInput(f"only actor keys are bound to an actor, not {scope.value} keys")
        now = self.clock()
        key_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
        record = KeyRecord(
            id=key_id,
            name=name,
            scope=scope.value,
            actor_id=actor_id,
            secret_hash=self._hash(secret),
            created_at=now,
            created_by=created_by,
            last_used_at=None,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
            revoked_at=None,
        )
        with self.db.begin() as conn:
            if actor_id is not None and actors.get(conn, actor_id) is None:
                raise InvalidInput(f"actor {actor_id} does not exist; register it first")
            store.insert_key(conn, record)
        return KeyInfo.of(record), format_key(key_id, secret)

    def list(self) -> list[KeyInfo]:
        with self.db.connect() as conn:
            return [KeyInfo.of(r) for r in store.list_keys(conn)]

    def page(self, *, after: Key | None = None, limit: int = DEFAULT_LIMIT) -> Page[KeyInfo]:
        """A page of keys, oldest first."""
        with self.db.connect() as conn:
            return store.page_keys(conn, after, limit).map(KeyInfo.of)

    def get(self, key_id: uuid.UUID) -> KeyInfo:
        with self.db.connect() as conn:
            record = store.get(conn, key_id)
        if record is None:
            raise UnknownKey(f"API key {key_id} does not exist", id=str(key_id))
        return KeyInfo.of(record)

    def revoke(self, key_id: uuid.UUID) -> KeyInfo:
        """Revoke the key (revoking a revoked key changes nothing); effective everywhere
        within the authentication cache time."""
        with self.db.begin() as conn:
            if store.get(conn, key_id) is None:
                raise UnknownKey(f"API key {key_id} does not exist", id=str(key_id))
            store.revoke(conn, key_id, self.clock())
        with self._lock:
            self._cache.pop(key_id, None)
        return self.get(key_id)

    # --- authentication -------------------------------------------------------------------

    def authenticate(self, text: str | None) -> Principal:
        """The principal of a valid key; Unauthenticated (one message for every reason,
        which goes to the log) otherwise."""
        parsed = parse_key(text) if text else None
        if parsed is None:
            raise self._refuse("missing" if not text else "malformed")
        key_id, secret = parsed
        record = self._record(key_id)
        if record is None:
            raise self._refuse("unknown", key_id)
        if not hmac.compare_digest(record.secret_hash, self._hash(secret)):
            raise self._refuse("wrong secret", key_id)
        now = self.clock()
        if record.revoked_at is not None:
            raise self._refuse("revoked", key_id)
        if record.expires_at is not None and record.expires_at <= now:
            raise self._refuse("expired", key_id)
        if record.last_used_at is None or record.last_used_at < now - TOUCH_EVERY:
            self._touch(record, now)
        return Principal(record.id, record.name, Scope(record.scope), record.actor_id)

    def _record(self, key_id: uuid.UUID) -> KeyRecord | None:
        moment = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None and moment - cached[0] < self._cache_seconds:
            return cached[1]
        with self.db.connect() as conn:
            record = store.get(conn, key_id)
        with self._lock:
            if record is None:
                # Unknown ids are not kept: a flood of made-up ids (limited per address by
                # the API's rate limit) must not push the real keys out of the cache.
                self._cache.pop(key_id, None)
                return None
            if len(self._cache) >= MAX_CACHED and key_id not in self._cache:
                self._cache.pop(next(iter(self._cache)))  # the oldest entry
            self._cache[key_id] = (moment, record)
        return record

    def _touch(self, record: KeyRecord, now: datetime) -> None:
        with self.db.begin() as conn:
            store.touch(conn, record.id, now, now - TOUCH_EVERY)
        with self._lock:
            moment, _ = self._cache.get(record.id, (time.monotonic(), record))
            fresh = KeyRecord(**{**record.__dict__, "last_used_at": now})
            self._cache[record.id] = (moment, fresh)

    @staticmethod
    def _refuse(reason: str, key_id: uuid.UUID | None = None) -> Unauthenticated:
        logger.warning(
            "authentication refused: %s key", reason, extra={"key_id": str(key_id or "")}
        )
        return Unauthenticated(UNAUTHENTICATED, reason.replace(" ", "_"))


def _scope(value: Scope | str) -> Scope:
    try:
        return Scope(value)
    except ValueError:
        choices = ", ".join(s.value for s in Scope)
        raise InvalidInput(f"unknown scope {value!r}: choose one of {choices}") from None
