"""Rate limits: failed authentication per client address, admin and operator requests per key.

A burst of bad keys from one address is answered 429 (with Retry-After) before any key is
looked up, changes nothing, and does not stop good keys; the limits follow the settings.
The limiters' clock is a fake one the tests move.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.api.ratelimit import RateLimits, TokenBuckets
from chameleon_workflow.settings import Settings
from tests.api.conftest import ok, problem
from tests.conftest import bearer, make_key

ADDRESS = ("203.0.113.7", 40000)
OTHER_ADDRESS = ("198.51.100.9", 40000)


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def unknown_key() -> str:
    """A well-formed key that does not exist: checking it reads the database."""
    return f"chm_{uuid.uuid4().hex}_{'A' * 43}"


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


def limited_app(settings: Settings, ticks: Ticks, **limits: Any) -> Iterator[FastAPI]:
    s = settings.model_copy(update=limits)
    app = create_app(s)
    app.state.rate_limits = RateLimits.of(
        enabled=s.rate_limit_enabled,
        auth_failures_per_minute=s.rate_limit_auth_failures_per_minute,
        actions_per_minute=s.rate_limit_actions_per_minute,
        max_tracked=s.rate_limit_max_tracked,
        clock=ticks,
    )
    with TestClient(app):  # runs the lifespan: the engine lives while the test does
        yield app


@pytest.fixture
def app(settings: Settings, ticks: Ticks) -> Iterator[FastAPI]:
    """The app allowing 3 failed authentications per address and 4 admin requests per key."""
    yield from limited_app(
        settings, ticks, rate_limit_auth_failures_per_minute=3, rate_limit_actions_per_minute=4
    )


def caller(app: FastAPI, key: str | None = None, address: tuple[str, int] = ADDRESS) -> TestClient:
    return TestClient(
        app, client=address, headers=bearer(key) if key else {}, raise_server_exceptions=False
    )


class Statements:
    """Counts the SQL statements the app's engine sends."""

    def __init__(self, app: FastAPI) -> None:
        self.engine = app.state.engine.db.engine
        self.count = 0
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def audit_rows(app: FastAPI) -> int:
    with app.state.engine.db.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM admin_audit").scalar_one())


def key_rows(app: FastAPI) -> list[Any]:
    with app.state.engine.db.connect() as conn:
        return list(conn.exec_driver_sql("SELECT id, last_used_at, revoked_at FROM api_keys"))


# --- failed authentication per address --------------------------------------------------------


def test_a_burst_of_bad_keys_is_refused_before_the_database(
    app: FastAPI, settings: Settings, admin_key: str, ticks: Ticks
) -> None:
    good = caller(app, admin_key)
    ok(good.get("/instances"))  # the good key has authenticated in this process
    before = (audit_rows(app), key_rows(app))
    bad = [unknown_key(), "chm_not-even-shaped", unknown_key()]
    for key in bad:
        problem(caller(app, key).get("/instances"), 401, "valid API key")

    statements = Statements(app)
    try:
        for key in [unknown_key() for _ in range(20)] + ["garbage"] * 5:
            refused = caller(app, key).post("/admin/run-zombie-protocol", json={})
            body = problem(refused, 429, "failed authentications", "retry after")
            assert body["error"] == "RateLimited" and body["details"]["limit_per_minute"] == 3
            assert refused.headers["retry-after"] == "20"  # one failure per 20 s refills
        assert statements.count == 0  # not one key was looked up
    finally:
        statements.close()
    assert (audit_rows(app), key_rows(app)) == before  # nothing changed

    # The good key still works from the same address, checkout included.
    ok(good.get("/instances"))
    actor = ok(good.post("/actors", json={"name": "w", "type": "AI_AGENT"}), 201)["actor_id"]
    checkout = {"actor_id": actor, "role_id": str(uuid.uuid4())}
    problem(good.post("/workflow/checkout", json=checkout), 404)  # looked up: not a 429
    # Another address is not affected.
    problem(caller(app, unknown_key(), OTHER_ADDRESS).get("/instances"), 401)
    # A key this process has not seen is refused at that address until the allowance refills.
    fresh = make_key(settings, "viewer")
    late = caller(app, fresh).get("/instances")
    assert late.status_code == 429 and int(late.headers["retry-after"]) >= 1
    ticks.now += 20
    ok(caller(app, fresh).get("/instances"))
    problem(caller(app, unknown_key()).get("/instances"), 401)  # one failure was allowed again
    problem(caller(app, unknown_key()).get("/instances"), 429)


def test_a_missing_key_is_not_a_guess(app: FastAPI) -> None:
    for _ in range(10):
        problem(caller(app).get("/instances"), 401)
    problem(caller(app, unknown_key()).get("/instances"), 401)


def test_a_wrong_secret_on_a_good_key_id_counts(app: FastAPI, admin_key: str) -> None:
    ok(caller(app, admin_key).get("/instances"))
    wrong = admin_key[:-5] + ("AAAAA" if not admin_key.endswith("AAAAA") else "BBBBB")
    for _ in range(3):
        problem(caller(app, wrong).get("/instances"), 401)
    problem(caller(app, wrong).get("/instances"), 429)
    ok(caller(app, admin_key).get("/instances"))


def test_refusals_are_counted_in_the_auth_failure_metric(app: FastAPI) -> None:
    for _ in range(5):
        caller(app, unknown_key()).get("/instances")
    metrics = caller(app).get("/metrics").text
    assert 'chameleon_auth_failures_total{reason="rate_limited"} 2.0' in metrics
    assert 'chameleon_auth_failures_total{reason="unknown"} 3.0' in metrics


# --- admin and operator requests per key ------------------------------------------------------


def test_operator_requests_are_limited_per_key(
    app: FastAPI, settings: Settings, ticks: Ticks
) -> None:
    operator = caller(app, make_key(settings, "operator"))
    other = caller(app, make_key(settings, "operator"))
    for _ in range(4):
        ok(operator.post("/admin/run-stale-token-protocol"))
    for _ in range(3):
        refused = operator.post("/admin/run-stale-token-protocol")
        body = problem(refused, 429, "admin and operator requests", "4 a minute")
        assert refused.headers["retry-after"] == "15"
        assert body["details"] == {"limit_per_minute": 4}
    ok(other.post("/admin/run-stale-token-protocol"))  # another key has its own allowance
    for _ in range(10):
        ok(operator.get("/admin/zombies"))  # reads are not limited
    ticks.now += 15
    ok(operator.post("/admin/run-stale-token-protocol"))

    entries = ok(operator.get("/admin/audit?action=maintenance.stale_token_protocol"))["items"]
    statuses = [e["result"]["status"] for e in reversed(entries)]
    # Only the first refusal of the run is recorded: a hammering key cannot flood the trail.
    assert statuses == [200] * 4 + [429] + [200, 200]


def test_refused_scopes_count_too(app: FastAPI, settings: Settings) -> None:
    viewer = caller(app, make_key(settings, "viewer"))
    for _ in range(4):
        problem(viewer.post("/admin/run-zombie-protocol"), 403)
    problem(viewer.post("/admin/run-zombie-protocol"), 429)


def test_work_is_not_an_admin_request(app: FastAPI, admin_key: str) -> None:
    good = caller(app, admin_key)
    actor = ok(good.post("/actors", json={"name": "w", "type": "AI_AGENT"}), 201)["actor_id"]
    body = {"actor_id": actor, "role_id": str(uuid.uuid4())}
    for _ in range(10):
        problem(good.post("/workflow/checkout", json=body), 404)


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [
        {"rate_limit_enabled": False},
        {"rate_limit_auth_failures_per_minute": 0, "rate_limit_actions_per_minute": 0},
    ],
)
def test_limits_can_be_switched_off(
    settings: Settings, ticks: Ticks, admin_key: str, limits: dict[str, Any]
) -> None:
    for app in limited_app(settings, ticks, **limits):
        for _ in range(70):
            problem(caller(app, unknown_key()).get("/instances"), 401)
        for _ in range(5):
            ok(caller(app, admin_key).post("/admin/run-stale-token-protocol"))


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAMELEON_RATE_LIMIT_ENABLED", "false")
    monkeypatch.setenv("CHAMELEON_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "7")
    monkeypatch.setenv("CHAMELEON_RATE_LIMIT_ACTIONS_PER_MINUTE", "9")
    monkeypatch.setenv("CHAMELEON_RATE_LIMIT_MAX_TRACKED", "11")
    s = Settings()
    assert (s.rate_limit_enabled, s.rate_limit_auth_failures_per_minute) == (False, 7)
    assert (s.rate_limit_actions_per_minute, s.rate_limit_max_tracked) == (9, 11)
    monkeypatch.setenv("CHAMELEON_RATE_LIMIT_ACTIONS_PER_MINUTE", "-1")
    with pytest.raises(ValueError, match="rate_limit_actions_per_minute"):
        Settings()


def test_defaults(settings: Settings) -> None:
    limits = create_app(settings).state.rate_limits
    assert limits.auth_failures.buckets.capacity == 60
    assert limits.actions.buckets.capacity == 600


# --- the buckets --------------------------------------------------------------------------------


def test_a_bucket_allows_its_minute_then_refills(ticks: Ticks) -> None:
    buckets = TokenBuckets(6, max_tracked=10, clock=ticks)
    assert all(buckets.take("a").allowed for _ in range(6))
    first, second = buckets.take("a"), buckets.take("a")
    assert (first.allowed, first.retry_after, first.first_refusal) == (False, 10, True)
    assert (second.allowed, second.first_refusal) == (False, False)
    assert buckets.exhausted("a") == 10 and buckets.exhausted("b") is None
    ticks.now += 10
    assert buckets.exhausted("a") is None and buckets.take("a").allowed
    assert buckets.take("a").first_refusal


def test_memory_is_bounded(ticks: Ticks) -> None:
    buckets = TokenBuckets(6, max_tracked=3, clock=ticks)
    for i in range(100):
        buckets.take(f"addr-{i}")
        assert len(buckets) <= 3
    quiet = TokenBuckets(6, max_tracked=3, clock=ticks)
    quiet.take("a")
    quiet.take("b")
    for _ in range(7):
        quiet.take("hot")
    ticks.now += 30  # a and b are full again (idle: nothing to remember); hot is not
    quiet.take("new")
    assert ("a" in quiet, "b" in quiet, "hot" in quiet, "new" in quiet) == (
        False, False, True, True
    )  # fmt: skip
