"""OMEGA's checkout of a decomposed base reads every child's latest attributes at once."""

from __future__ import annotations

from chameleon_workflow.engine.core import Engine
from tests.flows import Flow, fixture_text, statements


def _work_children(flow: Flow, n: int) -> None:
    for _ in range(n):
        taken = flow.checkout("Small") or flow.checkout("Big")
        assert taken is not None
        # a second version of amount, a new key, and a key that stays at version 1 elsewhere
        flow.submit(taken, amount=taken.attributes["amount"] + 1, done=True)


def test_omega_sees_the_latest_attributes_of_every_child(engine: Engine) -> None:
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
    c = flow.take("Triage")
    amounts = [5, 6, 5000, 7]
    out = engine.runtime.submit(
        c.uow_id, flow.actor, {}, lease_id=c.lease_id,
        children=[{"amount": a, "line": i} for i, a in enumerate(amounts)],
    )  # fmt: skip
    _work_children(flow, len(amounts))

    final = flow.take("Finish")
    assert final.uow_id == c.uow_id
    assert sorted(k["uow_id"] for k in final.children) == sorted(out.children)
    by_line = {k["attributes"]["line"]: k for k in final.children}
    for line, amount in enumerate(amounts):
        kid = by_line[line]
        assert kid["attributes"] == {"amount": amount + 1, "line": line, "done": True}
        assert kid["status"] == "PENDING"


def test_omega_checkout_costs_the_same_for_one_child_or_many(engine: Engine) -> None:
    counts = []
    for amounts in ([5], [5, 6, 7, 8, 9]):
        flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
        c = flow.take("Triage")
        engine.runtime.submit(
            c.uow_id, flow.actor, {}, lease_id=c.lease_id,
            children=[{"amount": a} for a in amounts],
        )  # fmt: skip
        _work_children(flow, len(amounts))
        with statements(engine) as seen:
            final = flow.take("Finish")
        assert len(final.children) == len(amounts)
        counts.append(len(seen))
    assert counts[0] == counts[1]
