"""Checkout -> submit throughput through a three-step workflow.

    python bench/throughput.py --db postgres --mode inprocess --workers 8 --uows 2000
    python bench/throughput.py --db sqlite --mode http --workers 8 --uows 1000

Prints pairs/s (one checkout plus one submit is a pair) and p50/p99 pair latency.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import make_engine, percentiles, scratch_database, setup_instance  # noqa: E402

STEPS = ("Step1", "Step2", "Step3")
SERVE = (
    "import sys; from chameleon_workflow.api.server import run; "
    "run('127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), log_level='warning', access_log=False)"
)

Pair = Callable[[uuid.UUID, uuid.UUID], bool]


def inprocess_pair(engine) -> Pair:  # type: ignore[no-untyped-def]
    def pair(actor: uuid.UUID, role: uuid.UUID) -> bool:
        c = engine.runtime.checkout(actor, role)
        if c is None:
            return False
        engine.runtime.submit(c.uow_id, actor, {"seen": True}, lease_id=c.lease_id)
        return True

    return pair


def http_pair(base: str) -> Callable[[], Pair]:
    def factory() -> Pair:
        client = httpx.Client(base_url=base, timeout=30)

        def pair(actor: uuid.UUID, role: uuid.UUID) -> bool:
            r = client.post(
                "/workflow/checkout", json={"actor_id": str(actor), "role_id": str(role)}
            )
            if r.status_code == 204:
                return False
            r.raise_for_status()
            body = r.json()
            s = client.post(
                "/workflow/submit",
                json={
                    "uow_id": body["uow_id"],
                    "actor_id": str(actor),
                    "lease_id": body["lease_id"],
                    "result_attributes": {"seen": True},
                },
            )
            s.raise_for_status()
            return True

        return pair

    return factory


def drive(
    make_pair: Callable[[], Pair], roles: dict[str, uuid.UUID], actors: list[uuid.UUID], total: int
) -> tuple[float, list[float]]:
    """Workers take work from any step until ``total`` pairs are done."""
    done = 0
    lock = threading.Lock()
    latencies: list[float] = []

    def worker(actor: uuid.UUID) -> None:
        # Stay with the step that last had work; otherwise look deepest step first, so work
        # flows through instead of piling up at the start.
        nonlocal done
        pair = make_pair()
        mine: list[float] = []
        idle = 0
        last = STEPS[-1]
        while True:
            with lock:
                if done >= total:
                    break
            worked = False
            for step in [last, *(s for s in reversed(STEPS) if s != last)]:
                t0 = time.perf_counter()
                if pair(actor, roles[step]):
                    mine.append(time.perf_counter() - t0)
                    worked, last = True, step
                    with lock:
                        done += 1
                    break
            if worked:
                idle = 0
                continue
            idle += 1
            if idle > 500:
                break
            time.sleep(0.002)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(a,)) for a in actors]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--mode", choices=["inprocess", "http"], default="inprocess")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--uows", type=int, default=2000)
    p.add_argument("--server-workers", type=int, default=2, help="uvicorn processes (http mode)")
    args = p.parse_args()

    with scratch_database(args.db) as url:
        engine = make_engine(url, pool_size=args.workers + 2)
        instance_id, roles, actors = setup_instance(engine, args.workers)
        for i in range(args.uows - 1):  # instantiation created the first one
            engine.instances.genesis(instance_id, {"n": i})
        total = args.uows * len(STEPS)
        server = None
        try:
            if args.mode == "inprocess":
                factory: Callable[[], Pair] = lambda: inprocess_pair(engine)  # noqa: E731
            else:
                port = free_port()
                env = dict(
                    os.environ, CHAMELEON_DATABASE_URL=url, CHAMELEON_SCHEDULER_ENABLED="false"
                )
                server = subprocess.Popen(
                    [sys.executable, "-c", SERVE, str(port), str(args.server_workers)],
                    env=env,
                )
                base = f"http://127.0.0.1:{port}"
                for _ in range(100):
                    try:
                        if httpx.get(f"{base}/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                factory = http_pair(base)
            elapsed, latencies = drive(factory, roles, actors, total)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=10)
        pairs = len(latencies)
        print(
            f"throughput db={args.db} mode={args.mode} workers={args.workers} uows={args.uows}: "
            f"{pairs} pairs in {elapsed:.2f} s = {pairs / elapsed:.0f} pairs/s; "
            f"pair latency {percentiles(latencies)}"
        )
        if pairs != total:
            print(f"WARNING: expected {total} pairs, completed {pairs}")
        engine.close()


if __name__ == "__main__":
    main()
