"""Rate limits on failed authentication (per client address) and on admin and operator
requests (per key): in-process token buckets, answered with 429 and ``Retry-After``.

Each bucket holds up to one minute's allowance and refills continuously. The limits are per
process: with N replicas a client can get up to N times the allowance (docs/security.md).
Memory is bounded: at most ``max_tracked`` buckets per limiter; a full bucket (an idle
client) carries no information and goes first, then the least recently used.

Failed authentication is counted only for requests that present a credential (a malformed,
unknown, wrong, revoked or expired key; a missing key is not a guess). Once an address has
used up its allowance, its requests are answered 429 *before* the key is looked up, so a
burst of bad keys costs the database nothing. Only failures count: a key that authenticated
in this process recently (:meth:`AuthFailures.succeeded`) still gets in from that address,
so a good client behind the same address as a guesser keeps working. The path of a good key
takes no lock of the failure limiter and shares no bucket with bad keys.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from ..domain.errors import RateLimited
from ..domain.security import Principal

Clock = Callable[[], float]
SKIP_AUDIT = "audit_skip"  # on the request state: leave this request out of the audit trail


@dataclass
class _Bucket:
    tokens: float
    at: float  # monotonic time of the last update
    refused: bool = False  # refused since it last allowed one (for "first refusal")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds until one request is allowed again
    first_refusal: bool = False  # the first refusal since the bucket last allowed one


class TokenBuckets:
    """One bucket per key (an address or an API key id) of ``per_minute`` requests."""

    def __init__(self, per_minute: int, max_tracked: int, clock: Clock = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_tracked = max_tracked
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, bucket: _Bucket, now: float) -> float:
        return min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)

    def _wait(self, level: float) -> int:
        return max(1, math.ceil((1.0 - level) / self.rate))

    def take(self, key: str) -> Verdict:
        """Spend one token of ``key``'s bucket if there is one."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            else:
                self._buckets.move_to_end(key)
            level = self._level(bucket, now)
            bucket.at = now
            if level >= 1.0:
                bucket.tokens, bucket.refused = level - 1.0, False
                return Verdict(True)
            first = not bucket.refused
            bucket.tokens, bucket.refused = level, True
            return Verdict(False, self._wait(level), first)

    def exhausted(self, key: str) -> int | None:
        """Seconds to wait if ``key``'s bucket is empty, else None; spends nothing.

        Lock-free: a read of one dict entry, so callers that only check never wait on the
        callers that spend (a stale read errs by one request at most).
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        level = self._level(bucket, self.clock())
        return None if level >= 1.0 else self._wait(level)

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: str) -> bool:
        return key in self._buckets

    def _make_room(self, now: float) -> None:
        """Drop idle (full) buckets from the least recently used end, and that end's bucket
        whatever its state while the limiter is at its size."""
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if len(self._buckets) < self.max_tracked and self._level(oldest, now) < self.capacity:
                return
            del self._buckets[key]


class AuthFailures:
    """Failed authentications per client address, and the keys that recently succeeded."""

    def __init__(
        self, per_minute: int, max_tracked: int, *, remember_seconds: float = 600.0,
        clock: Clock = time.monotonic,
    ) -> None:  # fmt: skip
        self.buckets = TokenBuckets(per_minute, max_tracked, clock)
        self.remember_seconds = remember_seconds
        self.max_tracked = max_tracked
        self.clock = clock
        self._good: OrderedDict[bytes, float] = OrderedDict()  # key digest -> last success
        self._good_lock = threading.Lock()  # never taken by a failing request

    def check(self, address: str, key: str | None) -> None:
        """RateLimited if ``address`` has used up its failures and ``key`` is not one that
        recently authenticated here; touches no database."""
        wait = self.buckets.exhausted(address)
        if wait is None or (key and self._known_good(key)):
            return
        raise RateLimited(
            "too many failed authentications from this address: retry after "
            f"{wait} s with a valid API key",
            retry_after=wait,
            limit_per_minute=int(self.buckets.capacity),
        )

    def failed(self, address: str) -> None:
        self.buckets.take(address)

    def succeeded(self, key: str) -> None:
        """Remember that ``key`` authenticated (only a digest of it is kept)."""
        digest, now = _digest(key), self.clock()
        seen = self._good.get(digest)
        if seen is not None and now - seen < self.remember_seconds / 2:
            return  # fresh enough: the common path takes no lock
        with self._good_lock:
            self._good[digest] = now
            self._good.move_to_end(digest)
            while len(self._good) > self.max_tracked:
                self._good.popitem(last=False)

    def _known_good(self, key: str) -> bool:
        seen = self._good.get(_digest(key))
        return seen is not None and self.clock() - seen < self.remember_seconds


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=16).digest()


class ActionLimit:
    """Admin and operator requests per API key (per address when authentication is off)."""

    def __init__(self, per_minute: int, max_tracked: int, clock: Clock = time.monotonic) -> None:
        self.buckets = TokenBuckets(per_minute, max_tracked, clock)

    def take(self, who: str) -> Verdict:
        return self.buckets.take(who)

    def refusal(self, verdict: Verdict) -> RateLimited:
        per_minute = int(self.buckets.capacity)
        return RateLimited(
            f"too many admin and operator requests from this API key (at most {per_minute} a "
            f"minute): retry after {verdict.retry_after} s",
            retry_after=verdict.retry_after,
            limit_per_minute=per_minute,
        )


@dataclass(frozen=True)
class RateLimits:
    """The limiters of one app (None: that limit is off)."""

    auth_failures: AuthFailures | None
    actions: ActionLimit | None

    @classmethod
    def of(
        cls, *, enabled: bool, auth_failures_per_minute: int, actions_per_minute: int,
        max_tracked: int, clock: Clock = time.monotonic,
    ) -> RateLimits:  # fmt: skip
        """From the settings; a limit of 0 (or ``enabled`` false) switches it off."""
        return cls(
            AuthFailures(auth_failures_per_minute, max_tracked, clock=clock)
            if enabled and auth_failures_per_minute > 0
            else None,
            ActionLimit(actions_per_minute, max_tracked, clock)
            if enabled and actions_per_minute > 0
            else None,
        )


def limits_of(request: Request) -> RateLimits | None:
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    return limits


def client_address(request: Request) -> str:
    """The peer's address as the server sees it (behind a proxy: the proxy's)."""
    return request.client.host if request.client is not None else "unknown"


def limit_action(request: Request, principal: Principal) -> None:
    """Spend one admin/operator request of the caller's key; RateLimited when none is left.

    Only the first refusal of a run of refusals goes into the audit trail, so a key that
    keeps hammering cannot flood it.
    """
    limits = limits_of(request)
    if limits is None or limits.actions is None:
        return
    who = f"key:{principal.key_id}" if principal.key_id else f"addr:{client_address(request)}"
    verdict = limits.actions.take(who)
    if verdict.allowed:
        return
    if not verdict.first_refusal:
        setattr(request.state, SKIP_AUDIT, True)
    raise limits.actions.refusal(verdict)
