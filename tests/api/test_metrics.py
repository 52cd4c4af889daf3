"""``/metrics`` read with prometheus-client's own parser, after real actions on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from chameleon_workflow.api.app import create_app
from chameleon_workflow.api.metrics import AUTH_FAILURE_REASONS, record_auth_failure
from chameleon_workflow.engine.telemetry import Telemetry
from chameleon_workflow.settings import Settings
from tests.api.conftest import Api, Run, ok, problem, start_run, unknown
from tests.conftest import TEST_HOSTS, FakeClock, bearer, make_key

NEW_FAMILIES = {
    "chameleon_checkout_seconds": "histogram",
    "chameleon_lease_conflicts": "counter",
    "chameleon_auth_failures": "counter",
    "chameleon_zombies_reclaimed": "counter",
    "chameleon_maintenance_run_seconds": "histogram",
    "chameleon_maintenance_last_success_timestamp_seconds": "gauge",
    "chameleon_oldest_active_heartbeat_age_seconds": "gauge",
    "chameleon_alerts": "counter",
    "chameleon_alert_delivery_failures": "counter",
    "chameleon_alerts_dropped": "counter",
}
OLD_FAMILIES = {
    "chameleon_http_requests": "counter",
    "chameleon_http_request_seconds": "histogram",
    "chameleon_uows": "gauge",
}


class Scrape:
    """One parsed ``/metrics`` answer."""

    def __init__(self, client: TestClient) -> None:
        answer = client.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        self.families = {f.name: f for f in text_string_to_metric_families(answer.text)}

    def value(self, sample: str, **labels: str) -> float | None:
        """The value of the sample named ``sample`` with exactly these labels (None: absent)."""
        family = self.families[_family_of(sample)]
        found = [s.value for s in family.samples if s.name == sample and s.labels == labels]
        assert len(found) <= 1
        return found[0] if found else None


def _family_of(sample: str) -> str:
    for suffix in ("_total", "_count", "_sum", "_bucket", "_created"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


@pytest.fixture
def clocked_run(clocked_client: TestClient) -> Run:
    return start_run(Api(clocked_client))


def test_every_family_is_exposed_with_its_type(client: TestClient) -> None:
    scrape = Scrape(client)
    for name, kind in (NEW_FAMILIES | OLD_FAMILIES).items():
        assert scrape.families[name].type == kind, name


def test_the_known_auth_failure_reasons_start_at_zero(client: TestClient) -> None:
    scrape = Scrape(client)
    for reason in AUTH_FAILURE_REASONS:
        assert scrape.value("chameleon_auth_failures_total", reason=reason) == 0


def test_auth_failures_are_counted_by_reason_through_the_app_or_its_registry(
    client: TestClient,
) -> None:
    app = client.app
    registry: CollectorRegistry = app.state.metrics_registry  # type: ignore[attr-defined]
    record_auth_failure(app, "expired")
    record_auth_failure(registry, "expired")
    record_auth_failure(app, "key_format")
    record_auth_failure(app, "Not A Reason {}")
    scrape = Scrape(client)
    assert scrape.value("chameleon_auth_failures_total", reason="expired") == 2
    assert scrape.value("chameleon_auth_failures_total", reason="key_format") == 1
    assert scrape.value("chameleon_auth_failures_total", reason="other") == 1
    assert scrape.value("chameleon_auth_failures_total", reason="revoked") == 0


def test_checkouts_are_timed_by_status(clocked_run: Run, clocked_client: TestClient) -> None:
    clocked_run.take("Triage")
    assert clocked_run.checkout("Triage").status_code == 204  # nothing else waits
    scrape = Scrape(clocked_client)
    assert scrape.value("chameleon_checkout_seconds_count", status="200") == 1
    assert scrape.value("chameleon_checkout_seconds_count", status="204") == 1
    assert scrape.value("chameleon_checkout_seconds_count", status="409") is None
    total = scrape.value("chameleon_checkout_seconds_sum", status="200")
    assert total is not None and total > 0
    assert scrape.value("chameleon_checkout_seconds_bucket", status="200", le="+Inf") == 1


def test_lease_conflicts_are_counted_by_route_and_other_409s_are_not(run: Run) -> None:
    lease = run.take("Triage")
    stale = lease | {"lease_id": unknown()}
    assert problem(run.api.submit(stale, run.actor, amount=1), 409)["error"] == "LeaseLost"
    assert problem(run.api.submit(stale, run.actor, amount=2), 409)["error"] == "LeaseLost"
    beat = run.api.c.post(
        f"/workflow/uow/{lease['uow_id']}/heartbeat",
        json={"actor_id": run.actor, "lease_id": unknown()},
    )
    assert problem(beat, 409)["error"] == "LeaseLost"
    assert problem(run.checkout("Origin"), 409)["error"] == "InvalidState"  # not a lease conflict
    scrape = Scrape(run.api.c)  # type: ignore[arg-type]
    conflicts = "chameleon_lease_conflicts_total"
    assert scrape.value(conflicts, method="POST", route="/workflow/submit") == 2
    heartbeat = "/workflow/uow/{uow_id}/heartbeat"
    assert scrape.value(conflicts, method="POST", route=heartbeat) == 1
    assert scrape.value(conflicts, method="POST", route="/workflow/checkout") is None
    requests = "chameleon_http_requests_total"
    assert scrape.value(requests, method="POST", route="/workflow/checkout", status="409") == 1


def test_the_oldest_active_heartbeat_age_follows_the_clock(
    clocked_run: Run, clocked_client: TestClient, clock: FakeClock
) -> None:
    gauge = "chameleon_oldest_active_heartbeat_age_seconds"
    assert Scrape(clocked_client).value(gauge) == 0  # nothing is ACTIVE
    lease = clocked_run.take("Triage")
    clock.advance(100)
    assert Scrape(clocked_client).value(gauge) == 100
    body = {"actor_id": clocked_run.actor, "lease_id": lease["lease_id"]}
    ok(clocked_client.post(f"/workflow/uow/{lease['uow_id']}/heartbeat", json=body))
    clock.advance(7)
    assert Scrape(clocked_client).value(gauge) == 7


def test_a_sweep_counts_reclaimed_zombies_by_outcome_and_times_the_run(
    clocked_run: Run, clocked_client: TestClient, clock: FakeClock
) -> None:
    clocked_run.take("Triage")
    clock.advance(301)  # past the default zombie timeout
    dry = ok(clocked_client.post("/admin/run-zombie-protocol", json={"dry_run": True}))
    assert dry["zombies_reclaimed"] == 0
    scrape = Scrape(clocked_client)
    assert scrape.value("chameleon_maintenance_run_seconds_count", job="zombie_sweep") is None
    swept = ok(clocked_client.post("/admin/run-zombie-protocol"))
    assert swept["zombies_reclaimed"] == 1
    scrape = Scrape(clocked_client)
    assert scrape.value("chameleon_zombies_reclaimed_total", outcome="failed") == 1
    assert scrape.value("chameleon_zombies_reclaimed_total", outcome="requeued") == 0
    runs = "chameleon_maintenance_run_seconds_count"
    assert scrape.value(runs, job="zombie_sweep", result="ok") == 1
    assert scrape.value(runs, job="zombie_sweep", result="error") is None
    last = "chameleon_maintenance_last_success_timestamp_seconds"
    assert scrape.value(last, job="zombie_sweep") == clock.now.timestamp()
    assert scrape.value("chameleon_uows", status="FAILED") == 1
    assert scrape.value("chameleon_oldest_active_heartbeat_age_seconds") == 0


def test_a_failed_run_is_timed_as_an_error_and_leaves_the_last_success(
    clock: FakeClock,
) -> None:
    telemetry = Telemetry()
    ok_at, failed_at = clock.now, clock.now + timedelta(minutes=1)
    telemetry.run_finished("memory_decay", {}, {"deleted": 3}, seconds=0.2, failed=False, now=ok_at)
    telemetry.run_finished(
        "memory_decay", {}, {"deleted": 0}, seconds=0.1, failed=True, now=failed_at
    )
    telemetry.run_finished(
        "memory_decay", {"dry_run": True}, {}, seconds=9, failed=False, now=failed_at
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in telemetry.collect()
        for s in m.samples
    }
    job = ("job", "memory_decay")
    assert samples[("chameleon_maintenance_run_seconds_count", (job, ("result", "ok")))] == 1
    assert samples[("chameleon_maintenance_run_seconds_count", (job, ("result", "error")))] == 1
    last = "chameleon_maintenance_last_success_timestamp_seconds"
    assert samples[(last, (job,))] == ok_at.timestamp()


@pytest.fixture
def two_apps(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    from chameleon_workflow.api.app import create_app

    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        yield a, b


def test_each_app_counts_in_its_own_registry(two_apps: tuple[TestClient, TestClient]) -> None:
    a, b = two_apps
    record_auth_failure(a.app, "missing")
    assert Scrape(a).value("chameleon_auth_failures_total", reason="missing") == 1
    assert Scrape(b).value("chameleon_auth_failures_total", reason="missing") == 0
    # and the DB-read gauges agree, since both read the same database
    assert Scrape(a).value("chameleon_oldest_active_heartbeat_age_seconds") == 0


# --- the docs name what is exposed ------------------------------------------------------------

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
_CONFIG_BLOCK = re.compile(r"^<!-- config: prometheus -->\n```yaml\n(.*?)^```$", re.M | re.S)
_TABLE_ROW = re.compile(r"^\| `(chameleon_[a-z_]+)` \| (\w+) \|", re.M)


def test_the_documented_families_are_the_exposed_ones(client: TestClient) -> None:
    documented = {
        _family_of(name): kind for name, kind in _TABLE_ROW.findall(OPERATIONS.read_text())
    }
    assert documented == NEW_FAMILIES | OLD_FAMILIES
    exposed = {name for name in Scrape(client).families if not name.endswith("_created")}
    assert exposed == set(documented)  # (a counter's _created gauge is listed as a family)


def test_the_sample_alert_rules_use_only_exposed_metrics(client: TestClient) -> None:
    families = Scrape(client).families
    blocks = [yaml.safe_load(b) for b in _CONFIG_BLOCK.findall(OPERATIONS.read_text())]
    rules = [r for b in blocks for g in b.get("groups", []) for r in g["rules"]]
    assert len(rules) >= 5
    for rule in rules:
        for name in re.findall(r"chameleon_[a-z_]+", rule["expr"]):
            assert _family_of(name) in families, (rule["alert"], name)


def test_an_unreachable_database_leaves_out_only_the_database_gauges(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chameleon_workflow.api.app import create_app

    url = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test"
    app = create_app(Settings(database_url=url, scheduler_enabled=False, allowed_hosts=TEST_HOSTS))
    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level("WARNING"):
        record_auth_failure(c.app, "missing")
        scrape = Scrape(c)
    assert scrape.value("chameleon_auth_failures_total", reason="missing") == 1
    assert "chameleon_maintenance_run_seconds" in scrape.families
    assert "chameleon_uows" not in scrape.families
    assert "chameleon_oldest_active_heartbeat_age_seconds" not in scrape.families
    assert "database gauges skipped" in caplog.text and "s3cret" not in caplog.text


def test_metrics_can_require_a_key_that_may_read(settings: Settings) -> None:
    closed = settings.model_copy(update={"metrics_public": False})
    viewer, operator = make_key(closed, "viewer"), make_key(closed, "operator")
    with TestClient(create_app(closed), raise_server_exceptions=False) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=bearer(viewer)).status_code == 200
        assert c.get("/metrics", headers=bearer(operator)).status_code == 200
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert c.get("/metrics").status_code == 200  # open by default
