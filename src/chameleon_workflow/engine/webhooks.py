"""Delivering alerts to webhooks: signed JSON POSTs from a background thread.

``submit`` never blocks: it puts the alert on a bounded queue (a full queue drops it and
counts the drop). One daemon thread posts each alert to every URL in turn, with a timeout,
retrying network errors, timeouts, 408, 429 and 5xx with exponential backoff; any other
answer, or the last failed attempt, gives up on that URL and is counted.

Each POST carries ``X-Chameleon-Timestamp`` (Unix seconds when it was sent) and
``X-Chameleon-Signature: sha256=<hex>``, the HMAC-SHA256 under the shared secret of the
timestamp, a dot and the exact body bytes (see ``signature``), so a receiver can reject
forged, altered and replayed deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import __version__
from .telemetry import Telemetry

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Chameleon-Signature"
TIMESTAMP_HEADER = "X-Chameleon-Timestamp"
RETRIED_STATUSES = frozenset({408, 429})
CLOSE_GRACE_SECONDS = 2.0  # how long stopping waits for deliveries in flight, at most
_STOP = object()


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """True if ``header`` is the signature of ``body`` at ``timestamp`` (constant time)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def where(url: str) -> str:
    """``scheme://host:port`` of ``url``: what logs may show (paths often hold tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class WebhookSender:
    """The delivery queue and its thread (started on the first alert, stopped by ``close``)."""

    def __init__(
        self,
        urls: Sequence[str],
        secret: bytes,
        telemetry: Telemetry,
        *,
        timeout_seconds: float,
        retries: int,
        backoff_seconds: float,
        queue_size: int,
    ) -> None:
        self.urls = list(urls)
        self.secret = secret
        self.telemetry = telemetry
        self.timeout = timeout_seconds
        self.retries = retries
        self.backoff = backoff_seconds
        self.queue_size = queue_size
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, payload: dict[str, Any]) -> bool:
        """Queue ``payload`` for delivery; False (and counted) if the queue is full."""
        if not self.urls:
            return False
        try:
            self._start().put_nowait(payload)
        except queue.Full:
            self.telemetry.alerts_dropped.inc()
            logger.warning("alert dropped: the delivery queue is full", extra={"alert": payload})
            return False
        return True

    def close(self, timeout: float | None = None) -> None:
        """Stop retrying, post what is queued (one attempt each) and wait for that at most
        ``timeout`` seconds (default: the delivery timeout, at most ``CLOSE_GRACE_SECONDS``);
        a delivery still hanging then is left to its daemon thread."""
        with self._lock:
            thread, pending, closing = self._thread, self._queue, self._closing
            self._thread = None
        if thread is None:
            return
        closing.set()
        try:
            pending.put_nowait(_STOP)
        except queue.Full:
            pass  # the thread stops when it finds the queue empty after closing
        thread.join(min(self.timeout, CLOSE_GRACE_SECONDS) if timeout is None else timeout)

    def _start(self) -> queue.Queue[Any]:
        """The queue of the running thread, starting one (with a new queue) if none runs."""
        with self._lock:
            if self._thread is None:
                self._queue = queue.Queue(maxsize=self.queue_size)
                self._closing = threading.Event()
                self._thread = threading.Thread(
                    target=self._work,
                    args=(self._queue, self._closing),
                    name="chameleon-alerts",
                    daemon=True,
                )
                self._thread.start()
            return self._queue

    def _work(self, pending: queue.Queue[Any], closing: threading.Event) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": f"chameleon/{__version__}"}
        with httpx.Client(timeout=self.timeout, headers=headers) as client:
            while not (closing.is_set() and pending.empty()):
                payload = pending.get()
                if payload is _STOP:
                    return
                body = json.dumps(payload, separators=(",", ":"), default=str).encode()
                for url in self.urls:
                    self._deliver(client, url, body, closing)

    def _deliver(
        self, client: httpx.Client, url: str, body: bytes, closing: threading.Event
    ) -> bool:
        reason = "network"
        for attempt in range(self.retries + 1):
            if attempt and closing.wait(self.backoff * 2 ** (attempt - 1)):
                break  # closing: no more retries
            timestamp = str(int(time.time()))
            signed = {
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(self.secret, timestamp, body),
            }
            try:
                response = client.post(url, content=body, headers=signed)
            except httpx.TimeoutException:
                reason = "timeout"
                continue
            except httpx.HTTPError:
                reason = "network"
                continue
            if response.is_success:
                return True
            reason = f"http_{response.status_code // 100}xx"
            if response.status_code < 500 and response.status_code not in RETRIED_STATUSES:
                break
        self.telemetry.alert_delivery_failures.labels(reason).inc()
        logger.warning(
            "alert delivery failed: %s (%s)", where(url), reason, extra={"alert": json.loads(body)}
        )
        return False
