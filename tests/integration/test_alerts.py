"""Alerts: conditions, episodes, and signed webhook delivery to a real receiver on 127.0.0.1.

The receivers are real HTTP servers in threads (real sockets). Waits are bounded polls for a
condition (slack for a loaded machine), never assertions on elapsed time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from chameleon_workflow.domain.enums import Trigger
from chameleon_workflow.engine.alerts import Alerts
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.maintenance import STALE_TOKEN_SWEEP, ZOMBIE_SWEEP
from chameleon_workflow.engine.scheduler import Scheduler
from chameleon_workflow.engine.telemetry import Telemetry
from chameleon_workflow.engine.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSender,
    signature,
    verify,
    where,
)
from chameleon_workflow.settings import Settings
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

SECRET = "s3cret-for-tests"
BOUND = 30.0  # seconds: slack for a loaded machine, not a speed requirement
FAST = {
    "zombie_interval_seconds": 0.05,
    "stale_token_interval_seconds": 0.05,
    "leader_lease_seconds": 1.0,
}


# --- a real receiver ------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers ``status`` (or hangs until released)."""

    status: int = 200
    hang: bool = False
    got: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def wait_for(self, n: int) -> list[Received]:
        until(lambda: len(self.got) >= n, f"{n} request(s) at the receiver")
        return list(self.got)


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(status: int = 200, *, hang: bool = False) -> Receiver:
        state = Receiver(status=status, hang=hang)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server interface)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                state.got.append(Received(dict(self.headers.items()), body))
                if state.hang:
                    state.released.wait(BOUND * 2)
                    return  # no answer at all
                self.send_response(state.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/t0ken"
        servers.append((server, state))
        return state

    yield start
    for server, state in servers:
        state.released.set()
        server.shutdown()
        server.server_close()


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"not reached: {what}"
        time.sleep(0.01)


def counter(telemetry: Telemetry, sample: str, **labels: str) -> float:
    for metric in telemetry.collect():
        for s in metric.samples:
            if s.name == sample and s.labels == labels:
                return float(s.value)
    return 0.0


def verified(got: Received) -> dict[str, Any]:
    """The alert of a delivery whose signature checks out (the receiver's side)."""
    timestamp = got.headers[TIMESTAMP_HEADER]
    assert verify(SECRET.encode(), timestamp, got.body, got.headers[SIGNATURE_HEADER])
    assert abs(time.time() - int(timestamp)) < 300  # the receiver's replay window
    assert got.headers["Content-Type"] == "application/json"
    return got.json()  # type: ignore[no-any-return]


def alerting(settings: Settings, *urls: str, **update: Any) -> Settings:
    return settings.model_copy(
        update={
            "alert_webhook_urls": list(urls),
            "alert_webhook_secret": SecretStr(SECRET),
            "alert_backoff_seconds": 0.01,
            "alert_maintenance_missed_intervals": 0,
            **update,
        }
    )


def sender(*urls: str, **kw: Any) -> WebhookSender:
    options: dict[str, Any] = {
        "timeout_seconds": 5.0, "retries": 2, "backoff_seconds": 0.01, "queue_size": 10,
    } | kw  # fmt: skip
    return WebhookSender(list(urls), SECRET.encode(), Telemetry(), **options)


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})


def finished_sweeps(engine: Engine) -> int:
    runs = engine.maintenance.runs(job=ZOMBIE_SWEEP, limit=1000)
    return sum(1 for r in runs if r.finished_at is not None)


# --- signatures -------------------------------------------------------------------------------


def test_the_signature_covers_the_timestamp_and_the_exact_body() -> None:
    body = b'{"kind":"heartbeat_age"}'
    header = signature(b"k", "1700000000", body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify(b"k", "1700000000", body, header)
    assert not verify(b"k", "1700000001", body, header)  # a replay with a new timestamp
    assert not verify(b"k", "1700000000", body + b" ", header)  # one byte more
    assert not verify(b"other", "1700000000", body, header)


def test_logs_show_where_a_webhook_is_but_not_its_path_or_credentials() -> None:
    assert where("https://user:pw@hooks.example.com:8443/services/T0/B1/xyz") == (
        "https://hooks.example.com:8443"
    )


def test_settings_refuse_webhooks_without_a_secret_or_of_another_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAMELEON_ALERT_WEBHOOK_URLS", "http://127.0.0.1:9/a, https://h/b")
    with pytest.raises(ValueError, match="ALERT_WEBHOOK_SECRET"):
        Settings()
    monkeypatch.setenv("CHAMELEON_ALERT_WEBHOOK_SECRET", SECRET)
    assert Settings().alert_webhook_urls == ["http://127.0.0.1:9/a", "https://h/b"]
    monkeypatch.setenv("CHAMELEON_ALERT_WEBHOOK_URLS", '["https://h/c"]')
    assert Settings().alert_webhook_urls == ["https://h/c"]
    monkeypatch.setenv("CHAMELEON_ALERT_WEBHOOK_URLS", "file:///etc/passwd")
    with pytest.raises(ValueError, match="http"):
        Settings()


# --- delivery ---------------------------------------------------------------------------------


def test_an_alert_is_posted_signed_to_every_url(receiver: Callable[..., Receiver]) -> None:
    one, two = receiver(), receiver(204)
    s = sender(one.url, two.url)
    assert s.submit({"kind": "test", "n": 1})
    for r in (one, two):
        (got,) = r.wait_for(1)
        assert verified(got) == {"kind": "test", "n": 1}
    s.close()
    assert counter(s.telemetry, "chameleon_alert_delivery_failures_total", reason="http_5xx") == 0


@pytest.mark.parametrize(
    ("status", "attempts", "reason"),
    [(500, 3, "http_5xx"), (503, 3, "http_5xx"), (429, 3, "http_4xx"), (404, 1, "http_4xx")],
)
def test_a_failing_receiver_is_retried_then_given_up_and_counted(
    receiver: Callable[..., Receiver], status: int, attempts: int, reason: str
) -> None:
    failing = receiver(status)
    s = sender(failing.url, retries=2)
    s.submit({"kind": "test"})
    failures = "chameleon_alert_delivery_failures_total"
    until(lambda: counter(s.telemetry, failures, reason=reason) == 1, "the failure counted")
    s.close()
    got = failing.got
    assert len(got) == attempts  # retries + 1 for what may pass later, else one
    assert all(verified(g) == {"kind": "test"} for g in got)  # each attempt freshly signed


def test_a_hanging_receiver_times_out_and_is_counted(receiver: Callable[..., Receiver]) -> None:
    hanging = receiver(hang=True)
    s = sender(hanging.url, timeout_seconds=0.2, retries=1)
    s.submit({"kind": "test"})
    failures = "chameleon_alert_delivery_failures_total"
    until(lambda: counter(s.telemetry, failures, reason="timeout") == 1, "the timeout counted")
    assert len(hanging.got) == 2
    s.close()


def test_a_full_queue_drops_and_counts_without_blocking(
    receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    hanging = receiver(hang=True)
    s = sender(hanging.url, queue_size=1, timeout_seconds=BOUND)
    assert s.submit({"n": 1})
    hanging.wait_for(1)  # the thread holds alert 1 (the receiver hangs) ...
    assert s.submit({"n": 2})  # ... alert 2 waits in the queue ...
    with caplog.at_level(logging.WARNING):
        assert not s.submit({"n": 3})  # ... and alert 3 finds it full
    assert counter(s.telemetry, "chameleon_alerts_dropped_total") == 1
    assert "delivery queue is full" in caplog.text
    hanging.released.set()
    s.close(timeout=BOUND)


def test_no_urls_no_thread() -> None:
    s = sender()
    assert not s.submit({"n": 1})
    s.close()


# --- conditions and episodes (both databases) -------------------------------------------------


@pytest.fixture
def watch(
    engine: Engine, settings: Settings, receiver: Callable[..., Receiver]
) -> Callable[..., tuple[Alerts, Receiver]]:
    """Alerts over ``engine`` with the given thresholds, posting to a receiver."""
    made: list[Alerts] = []

    def make(**thresholds: Any) -> tuple[Alerts, Receiver]:
        hook = receiver()
        quiet = {"alert_maintenance_failures": False}
        alerts = Alerts(
            alerting(settings, hook.url, **(quiet | thresholds)),
            engine.maintenance,
            {ZOMBIE_SWEEP: 60.0},
        )
        made.append(alerts)
        return alerts, hook

    yield make  # type: ignore[misc]
    for alerts in made:
        alerts.close()


def kinds(hook: Receiver, n: int) -> list[tuple[str, str]]:
    return [(a["kind"], a["status"]) for a in map(verified, hook.wait_for(n))]


def test_a_failing_job_fires_once_per_episode(
    watch: Callable[..., tuple[Alerts, Receiver]], caplog: pytest.LogCaptureFixture
) -> None:
    alerts, hook = watch(alert_maintenance_failures=True)
    ok = alerts.maintenance.stale_token_sweep(trigger=Trigger.SCHEDULE)
    with caplog.at_level(logging.INFO, logger="chameleon_workflow.engine.alerts"):
        alerts.after_run(STALE_TOKEN_SWEEP, RuntimeError("disk full"))
        alerts.after_run(STALE_TOKEN_SWEEP, RuntimeError("disk full"))  # same episode
        alerts.after_run(STALE_TOKEN_SWEEP, ok)
        alerts.after_run(STALE_TOKEN_SWEEP, ok)
        alerts.after_run(STALE_TOKEN_SWEEP, RuntimeError("again"))
    assert kinds(hook, 3) == [
        ("maintenance_failed", "firing"),
        ("maintenance_failed", "resolved"),
        ("maintenance_failed", "firing"),
    ]
    first = verified(hook.got[0])
    assert first["subject"] == STALE_TOKEN_SWEEP and "disk full" in first["message"]
    assert first["version"] == 1 and first["replica"] == alerts.maintenance.replica
    assert counter(alerts.telemetry, "chameleon_alerts_total", kind="maintenance_failed") == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == ["alert maintenance_failed"] * 2


def test_the_oldest_heartbeat_alert_fires_and_resolves(
    watch: Callable[..., tuple[Alerts, Receiver]], flow: Flow, clock: FakeClock
) -> None:
    alerts, hook = watch(alert_heartbeat_age_seconds=60)
    c = flow.take("Triage")
    clock.advance(59)
    alerts.after_run(ZOMBIE_SWEEP, None)
    clock.advance(2)
    alerts.after_run(ZOMBIE_SWEEP, None)
    alerts.after_run(ZOMBIE_SWEEP, None)
    flow.engine.runtime.heartbeat(c.uow_id, flow.actor, lease_id=c.lease_id)
    alerts.after_run(ZOMBIE_SWEEP, None)
    assert kinds(hook, 2) == [("heartbeat_age", "firing"), ("heartbeat_age", "resolved")]
    fired = verified(hook.got[0])
    assert fired["value"] == 61 and fired["threshold"] == 60


def test_the_epsilon_queue_alert_counts_failed_work_waiting_for_epsilon(
    watch: Callable[..., tuple[Alerts, Receiver]], flow: Flow
) -> None:
    alerts, hook = watch(alert_epsilon_queue_depth=2)
    first = flow.take("Triage")
    flow.engine.runtime.fail(first.uow_id, flow.actor, "BAD_INPUT", lease_id=first.lease_id)
    alerts.after_run(ZOMBIE_SWEEP, None)  # one waits: under the threshold
    second = flow.genesis(amount=7)
    c = flow.take("Triage")
    assert c.uow_id == second
    flow.engine.runtime.fail(second, flow.actor, "BAD_INPUT", lease_id=c.lease_id)
    alerts.after_run(ZOMBIE_SWEEP, None)
    flow.take("Fixer")  # one leaves the queue (ACTIVE now)
    alerts.after_run(ZOMBIE_SWEEP, None)
    assert kinds(hook, 2) == [
        ("epsilon_queue_depth", "firing"),
        ("epsilon_queue_depth", "resolved"),
    ]
    assert verified(hook.got[0])["value"] == 2


def test_a_job_without_a_recent_scheduled_success_is_overdue(
    watch: Callable[..., tuple[Alerts, Receiver]], clock: FakeClock
) -> None:
    alerts, hook = watch(alert_maintenance_missed_intervals=3)
    clock.advance(180)  # three intervals of 60 s: not yet
    alerts.after_run(STALE_TOKEN_SWEEP, None)
    clock.advance(1)
    alerts.after_run(STALE_TOKEN_SWEEP, None)
    alerts.maintenance.zombie_sweep(trigger=Trigger.ADMIN)  # an admin run does not count
    alerts.after_run(STALE_TOKEN_SWEEP, None)
    alerts.maintenance.zombie_sweep(trigger=Trigger.SCHEDULE)
    alerts.after_run(STALE_TOKEN_SWEEP, None)
    assert kinds(hook, 2) == [
        ("maintenance_overdue", "firing"),
        ("maintenance_overdue", "resolved"),
    ]
    assert verified(hook.got[0])["subject"] == ZOMBIE_SWEEP


def test_a_failing_check_is_logged_and_the_others_still_run(
    watch: Callable[..., tuple[Alerts, Receiver]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts, hook = watch(alert_heartbeat_age_seconds=1, alert_maintenance_failures=True)

    def broken() -> None:
        raise RuntimeError("database away")

    monkeypatch.setattr(alerts, "_check_heartbeat", broken)
    with caplog.at_level(logging.WARNING):
        alerts.after_run(ZOMBIE_SWEEP, RuntimeError("boom"))  # does not raise
    assert kinds(hook, 1) == [("maintenance_failed", "firing")]
    assert "alert check broken failed" in caplog.text


# --- through the scheduler (both databases) ---------------------------------------------------


def test_the_scheduler_alerts_on_a_sweep_that_reclaims_too_many(
    engine: Engine,
    settings: Settings,
    flow: Flow,
    clock: FakeClock,
    receiver: Callable[..., Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = receiver()
    fast = alerting(settings, hook.url, alert_zombies_reclaimed=1, **FAST)
    flow.take("Triage")
    clock.advance(301)
    scheduler = Scheduler(engine.maintenance, fast, tick_seconds=0.02)

    async def scenario() -> None:
        await scheduler.start()
        await asyncio.to_thread(hook.wait_for, 2)  # firing, then resolved by the next sweep
        await scheduler.stop()

    with caplog.at_level(logging.WARNING, logger="chameleon_workflow.engine.alerts"):
        asyncio.run(scenario())
    firing, resolved = map(verified, hook.got[:2])
    assert (firing["kind"], firing["status"], firing["value"]) == ("zombies_reclaimed", "firing", 1)
    assert (resolved["kind"], resolved["status"], resolved["value"]) == (
        "zombies_reclaimed", "resolved", 0,
    )  # fmt: skip
    telemetry = engine.maintenance.telemetry
    assert counter(telemetry, "chameleon_alerts_total", kind="zombies_reclaimed") == 1
    assert counter(telemetry, "chameleon_zombies_reclaimed_total", outcome="failed") == 1
    assert "alert zombies_reclaimed: one zombie sweep reclaimed 1 UOWs" in caplog.text


def test_a_hanging_receiver_never_holds_up_the_sweeps(
    engine: Engine,
    settings: Settings,
    flow: Flow,
    clock: FakeClock,
    receiver: Callable[..., Receiver],
) -> None:
    """While the receiver holds the alert's POST unanswered, the scheduler keeps sweeping."""
    hanging = receiver(hang=True)
    fast = alerting(
        settings, hanging.url, alert_zombies_reclaimed=1, alert_timeout_seconds=BOUND * 2, **FAST
    )
    flow.take("Triage")
    clock.advance(301)
    scheduler = Scheduler(engine.maintenance, fast, tick_seconds=0.02)

    async def scenario() -> None:
        await scheduler.start()
        await asyncio.to_thread(hanging.wait_for, 1)
        seen = await asyncio.to_thread(finished_sweeps, engine)
        await asyncio.to_thread(
            until, lambda: finished_sweeps(engine) > seen + 1, "more sweeps during the hang"
        )
        assert len(hanging.got) == 1 and not hanging.released.is_set()  # still unanswered
        await scheduler.stop()  # does not wait for the hung delivery beyond a short grace

    asyncio.run(scenario())
    assert engine.maintenance.leadership().leases == []
    # Released, the receiver hangs up without an answer: after the stop, the firing alert
    # and the resolution queued behind it are each tried once more, not retried.
    hanging.released.set()
    failures = "chameleon_alert_delivery_failures_total"
    telemetry = engine.maintenance.telemetry
    until(lambda: counter(telemetry, failures, reason="network") == 2, "the failures counted")
    assert [verified(g)["status"] for g in hanging.got] == ["firing", "resolved"]


def test_a_failure_alert_says_one_line_without_sql_or_parameters(
    watch: Callable[..., tuple[Alerts, Receiver]],
) -> None:
    alerts, hook = watch(alert_maintenance_failures=True)
    leaky = RuntimeError("(psycopg.errors.Whatever) it broke\n[SQL: SELECT 1]\n[parameters: (7,)]")
    alerts.after_run(ZOMBIE_SWEEP, leaky)
    (got,) = hook.wait_for(1)
    assert verified(got)["message"] == (
        "scheduled run of zombie_sweep failed: RuntimeError: (psycopg.errors.Whatever) it broke"
    )
