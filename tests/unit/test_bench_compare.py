"""bench/compare.py without running a bench: parsing the benches' output, the order, the verdict."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from bench.compare import BENCHES, Side, change, order, parse_run, selected, spread, verdict

# Lines in the format the bench scripts print (the f-strings of their main functions).
OUTPUT = {
    "throughput": (
        "throughput db=postgres mode=inprocess workers=8 uows=2000: 6000 pairs in 11.54 s = "
        "520 pairs/s; pair latency p50 13.05 ms, p99 41.20 ms, max 95.31 ms\n"
    ),
    "checkout": (
        "seeded 100000 UOWs and 1000 memories in 9.1 s\n"
        "checkout latency db=sqlite queue=100000 memories=1000: p50 6.52 ms, p99 9.90 ms, "
        "max 12.01 ms over 500 checkouts\n"
    ),
    "zombie": (
        "sqlite: seeded 100,000 zombies in 0.9 s\n"
        "sqlite: reclaimed 100,000 zombies in 1.712 s (58,411/s, 20 batches of 5,000); "
        "log rows for 100,000 UOWs; 0 still ACTIVE\n"
        "sqlite: target 1.00 s -> OVER target\n"
    ),
    "decay": (
        "postgres: decayed 1,000,000 memories in 4.40 s (227,272/s, 200 batches of 5,000)\n"
        "postgres: 812 checkouts during the decay: p50 3.1 ms, p99 20.4 ms, "
        "max checkout wait 53.0 ms\n"
    ),
}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("throughput", {"pairs/s": 520, "pair p50": 13.05}),
        ("http", {"pairs/s": 520}),
        ("checkout", {"checkout p50": 6.52, "checkout p99": 9.9}),
        ("zombie", {"sweep": 1.712}),
        ("decay", {"decay": 4.4, "max checkout wait": 53.0}),
    ],
)
def test_each_bench_figure_is_read_from_its_human_output(
    name: str, expected: dict[str, float]
) -> None:
    run = parse_run(BENCHES[name], 0, OUTPUT.get(name, OUTPUT["throughput"]))
    assert run.values == expected
    assert run.notes == []


def test_a_failed_or_suspect_run_carries_notes() -> None:
    crashed = parse_run(BENCHES["zombie"], 1, "Traceback ...\nRuntimeError: boom\n")
    assert crashed.values == {} and crashed.notes == ["exit 1: Traceback ... | RuntimeError: boom"]
    short = OUTPUT["throughput"] + "WARNING: expected 6000 pairs, completed 5990\n"
    assert parse_run(BENCHES["throughput"], 0, short).notes == [
        "WARNING: expected 6000 pairs, completed 5990"
    ]
    left = OUTPUT["zombie"].replace("0 still ACTIVE", "12 still ACTIVE")
    assert len(parse_run(BENCHES["zombie"], 0, left).notes) == 1


def test_the_sides_alternate_abba() -> None:
    old, new = Side("old", Path("/old"), "main"), Side("new", Path("/new"), "work")
    labels = [s.label for r in range(4) for s in order(r, (old, new))]
    assert labels == ["old", "new", "new", "old", "old", "new", "new", "old"]


def test_noise_change_and_verdict() -> None:
    pairs, sweep = BENCHES["throughput"].figures[0], BENCHES["zombie"].figures[0]
    old = [500.0, 520.0, 440.0]
    assert spread(old) == pytest.approx(80 / 500)
    assert spread([500.0]) is None
    assert change(old, [450.0]) == pytest.approx(-0.1)
    assert verdict(pairs, old, [450.0]) == "within noise"  # 10 % fewer, noise 16 %
    assert verdict(pairs, old, [400.0]) == "WORSE THAN NOISE"
    assert verdict(sweep, [1.0, 1.1], [1.2]) == "WORSE THAN NOISE"  # lower is better
    assert verdict(sweep, [1.0], [0.9]) == "not worse (noise unknown)"
    assert verdict(sweep, [], [0.9]) == "no figures"


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"only": None, "db": None, "quick": False, "size": []}
    return argparse.Namespace(**(base | kw))


def test_the_default_plan_is_the_matrix_of_issue_8() -> None:
    plan = [(b.name, db, size) for b, db, size in selected(_args())]
    assert [(n, db) for n, db, _ in plan] == [
        ("throughput", "postgres"),
        ("http", "postgres"),
        ("checkout", "sqlite"),
        ("checkout", "postgres"),
        ("zombie", "sqlite"),
        ("zombie", "postgres"),
        ("decay", "sqlite"),
        ("decay", "postgres"),
    ]
    assert plan[-1][2] == ("--n", "1000000")


def test_db_only_quick_and_size_narrow_the_plan() -> None:
    plan = selected(_args(only="throughput,decay", db="sqlite", quick=True, size=["decay=--n 7"]))
    assert [(b.name, db, size) for b, db, size in plan] == [
        ("throughput", "sqlite", BENCHES["throughput"].quick),
        ("decay", "sqlite", ("--n", "7")),
    ]
