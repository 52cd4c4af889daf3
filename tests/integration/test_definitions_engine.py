"""The bundled invoice example's remediation paths, and the bounded topology cache."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import pytest

from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from tests.conftest import FakeClock
from tests.flows import Flow, statements


def _bundled(name: str) -> str:
    return resources.files("chameleon_workflow.examples").joinpath(name).read_text("utf-8")


def test_failed_invoices_reenter_the_flow_through_epsilon(engine: Engine) -> None:
    flow = Flow(engine, _bundled("invoice_processing_workflow.yml"), {"invoice_id": "INV-1"})
    work = flow.take("Invoice_Validator")
    engine.runtime.fail(work.uow_id, flow.actor, "BAD_VAT", lease_id=work.lease_id)
    assert flow.where(flow.first_uow) == ("FAILED", "Error_Queue")

    flow.submit(flow.take("Error_Handler"), vat="fixed")
    assert flow.where(flow.first_uow) == ("PENDING", "Validation_Queue")
    assert flow.take("Invoice_Validator").uow_id == flow.first_uow


def test_epsilon_escalates_and_tau_sends_work_back_to_validation(engine: Engine) -> None:
    flow = Flow(engine, _bundled("invoice_processing_workflow.yml"), {"invoice_id": "INV-2"})
    work = flow.take("Invoice_Validator")
    engine.runtime.fail(work.uow_id, flow.actor, "UNREADABLE", lease_id=work.lease_id)
    flow.submit(flow.take("Error_Handler"), escalate=True)
    assert flow.where(flow.first_uow) == ("PENDING", "Timeout_Queue")

    flow.submit(flow.take("Timeout_Manager"), escalate=False)
    assert flow.where(flow.first_uow) == ("PENDING", "Validation_Queue")


@pytest.fixture
def small_cache_engine(settings: Settings, clock: FakeClock) -> Iterator[Engine]:
    eng = Engine(settings.model_copy(update={"topology_cache_size": 2}), clock=clock)
    yield eng
    eng.close()


def test_the_topology_cache_keeps_only_the_most_recent_instances(
    small_cache_engine: Engine,
) -> None:
    engine = small_cache_engine
    text = _bundled("mixed_agent_workflow.yaml")
    flows = [Flow(engine, text, {"input_text": f"hello {n}"}) for n in range(3)]
    for flow in flows:
        flow.take("AI_Analyzer")  # a checkout loads the instance's topology
    cache = engine.topologies
    assert len(cache) == 2
    evicted = flows[0]
    assert cache.of_instance(evicted.instance_id).id == evicted.instance_id  # loaded again
    assert len(cache) == 2
    roles = list(cache.of_instance(evicted.instance_id).roles)
    assert cache.of_role(roles[0]).id == evicted.instance_id


def test_instantiate_leaves_the_new_topology_cached(engine: Engine) -> None:
    template = engine.templates.import_yaml(_bundled("mixed_agent_workflow.yaml")).template
    genesis = engine.instances.instantiate(template.id, {"input_text": "hello"})
    with statements(engine) as seen:
        topo = engine.topologies.of_instance(genesis.instance.id)
    assert seen == []  # no reload
    assert topo.id == genesis.instance.id and "AI_Analyzer" in topo.role_ids
    role_id = topo.role_ids["AI_Analyzer"]
    assert engine.topologies.of_role(role_id) is topo
