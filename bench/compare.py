"""Old code against new code: the benches run alternately in one run (issue 8, "must not regress").

    .venv/bin/python bench/compare.py --old main --rounds 3
    .venv/bin/python bench/compare.py --old HEAD~3 --quick --rounds 1 --only zombie,decay

The old revision is checked out once into a detached git worktree under ``.bench-old/<sha>``
(gitignored, reused by later runs); the current working tree, uncommitted changes included, is
"new". For each round and each selected bench, the two sides run one after the other, the
order flipped every other round (old, new, then new, old, ...), each as a subprocess of this
Python with ``PYTHONPATH=<tree>/src`` and its tree as working directory, so each imports its
own ``chameleon_workflow`` (checked once per side before any bench). Figures are parsed from
the benches' human output; the report gives, per figure, both sides' runs, their medians and
ranges, the change of the medians and the noise: the spread of the old side's own runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench-old"
SHARED = ("common.py", "three_step.yml")  # what every bench script uses besides itself
PROBE = "import chameleon_workflow; print(chameleon_workflow.__file__)"
SUSPECT = re.compile(r"^WARNING.*|.*\b[1-9][\d,]* still ACTIVE.*", re.MULTILINE)


@dataclass(frozen=True)
class Figure:
    """One number a bench prints: the first group of ``pattern`` in its output."""

    name: str
    pattern: str
    unit: str
    higher_is_better: bool = False

    def parse(self, output: str) -> float | None:
        match = re.search(self.pattern, output)
        return float(match.group(1).replace(",", "")) if match else None


@dataclass(frozen=True)
class Bench:
    """A bench script, its issue-8 sizes, its quick sizes and the databases it runs on."""

    name: str
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    dbs: tuple[str, ...]
    figures: tuple[Figure, ...]


PAIRS = Figure("pairs/s", r"= (\d+) pairs/s", "pairs/s", higher_is_better=True)
BENCHES = {
    b.name: b
    for b in (
        Bench(
            "throughput", "throughput.py",
            ("--mode", "inprocess", "--workers", "8", "--uows", "2000"),
            ("--mode", "inprocess", "--workers", "4", "--uows", "150"),
            ("postgres",),
            (PAIRS, Figure("pair p50", r"pair latency p50 ([\d.]+) ms", "ms")),
        ),
        Bench(
            "http", "throughput.py",
            ("--mode", "http", "--workers", "8", "--uows", "1000"),
            ("--mode", "http", "--workers", "4", "--uows", "60"),
            ("postgres",),
            (PAIRS,),
        ),
        Bench(
            "checkout", "checkout_latency.py",
            ("--queue", "100000", "--memories", "1000", "--samples", "500"),
            ("--queue", "2000", "--memories", "100", "--samples", "100"),
            ("sqlite", "postgres"),
            (
                Figure("checkout p50", r"checkout latency .*?: p50 ([\d.]+) ms", "ms"),
                Figure("checkout p99", r"checkout latency .*?, p99 ([\d.]+) ms", "ms"),
            ),
        ),
        Bench(
            "zombie", "zombie_sweep.py", ("--n", "100000"), ("--n", "5000"),
            ("sqlite", "postgres"),
            (Figure("sweep", r"reclaimed [\d,]+ zombies in ([\d.]+) s", "s"),),
        ),
        Bench(
            "decay", "memory_decay.py", ("--n", "1000000"), ("--n", "20000", "--work", "2000"),
            ("sqlite", "postgres"),
            (
                Figure("decay", r"decayed [\d,]+ memories in ([\d.]+) s", "s"),
                Figure("max checkout wait", r"max checkout wait ([\d.]+) ms", "ms"),
            ),
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Side:
    """One tree of the comparison: its label, its root, and the revision it shows."""

    label: str
    tree: Path
    rev: str


@dataclass
class Run:
    """One bench run of one side: its figures, or why it has none."""

    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def old_side(rev: str | None) -> Side:
    """A detached worktree of ``rev`` (default: the merge-base with main), created or reused."""
    rev = rev or git(ROOT, "merge-base", "HEAD", "main")
    sha = git(ROOT, "rev-parse", "--verify", f"{rev}^{{commit}}")
    path = CACHE / sha[:12]
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        git(ROOT, "worktree", "add", "--detach", str(path), sha)
    elif git(path, "rev-parse", "HEAD") != sha:
        sys.exit(f"{path} is not at {sha}; remove it with `git worktree remove {path}`")
    return Side("old", path, f"{rev} ({sha[:12]})")


def side_env(side: Side) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(side.tree / "src"), PYTHONDONTWRITEBYTECODE="1")


def check_imports(side: Side) -> str:
    """The file of ``chameleon_workflow`` the side's subprocesses import; must be its own."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=side.tree,
        env=side_env(side),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to((side.tree / "src").resolve()):
        sys.exit(f"{side.label} imports {out}, not its own tree {side.tree}")
    return out


def script_for(name: str, side: Side, new: Side, driver: str) -> Path:
    """The bench file for ``side``: its own tree's (default) or the new tree's (``--driver new``,
    or when the old tree has no such file)."""
    own = side.tree / "bench" / name
    return own if driver == "own" and own.exists() else new.tree / "bench" / name


def run_bench(cmd: list[str], side: Side, timeout: float) -> tuple[int, str]:
    """Run one bench in its own process group, so a timeout also ends its server processes."""
    proc = subprocess.Popen(
        cmd,
        cwd=side.tree,
        env=side_env(side),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -1, out + f"\nTIMEOUT after {timeout:.0f} s"
    return proc.returncode, out


def parse_run(bench: Bench, code: int, output: str) -> Run:
    run = Run()
    for fig in bench.figures:
        value = fig.parse(output)
        if value is not None:
            run.values[fig.name] = value
    if code != 0 or not run.values:
        tail = " | ".join(output.strip().splitlines()[-3:])
        run.notes.append(f"exit {code}: {tail}")
    run.notes.extend(m.group(0).strip() for m in SUSPECT.finditer(output))
    return run


def order(round_no: int, sides: tuple[Side, Side]) -> tuple[Side, Side]:
    """old, new in even rounds; new, old in odd ones (ABBA), so drift favours neither side."""
    return sides if round_no % 2 == 0 else (sides[1], sides[0])


def spread(values: list[float]) -> float | None:
    """(max - min) / median, the relative spread of a side's runs; None below two runs."""
    if len(values) < 2 or statistics.median(values) == 0:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def change(old: list[float], new: list[float]) -> float | None:
    if not old or not new or statistics.median(old) == 0:
        return None
    return statistics.median(new) / statistics.median(old) - 1


def verdict(fig: Figure, old: list[float], new: list[float]) -> str:
    """Whether the new median is worse than the old one by more than the old side's noise."""
    delta, noise = change(old, new), spread(old)
    if delta is None:
        return "no figures"
    worse = -delta if fig.higher_is_better else delta
    if noise is None:
        return "worse (noise unknown)" if worse > 0 else "not worse (noise unknown)"
    return "WORSE THAN NOISE" if worse > noise else "within noise" if worse > 0 else "not worse"


def pct(x: float | None, sign: str = "+") -> str:
    return "n/a" if x is None else f"{x * 100:{sign}.1f} %"


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in values) or "-"


def report(fig: Figure, title: str, old: list[float], new: list[float]) -> list[str]:
    """The block of one figure: both sides' runs, medians, ranges, noise and the change."""
    better = "higher" if fig.higher_is_better else "lower"
    lines = [f"{title}: {fig.name} ({fig.unit}, {better} is better)"]
    for label, vals in (("old", old), ("new", new)):
        med = f"{statistics.median(vals):g}" if vals else "-"
        rng = f"{min(vals):g}-{max(vals):g}" if vals else "-"
        lines.append(
            f"  {label}: {fmt(vals):<32} median {med:<8} range {rng:<16} "
            f"spread {pct(spread(vals), '')}"
        )
    lines.append(
        f"  change of the median {pct(change(old, new))}; noise (old vs old) "
        f"{pct(spread(old), '')} -> {verdict(fig, old, new)}"
    )
    return lines


def selected(args: argparse.Namespace) -> list[tuple[Bench, str, tuple[str, ...]]]:
    """(bench, db, size args) to run: issue 8's matrix, or every bench on ``--db``."""
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(names) - set(BENCHES)
    if unknown:
        sys.exit(f"unknown bench {', '.join(sorted(unknown))}; known: {', '.join(BENCHES)}")
    sizes = dict(s.split("=", 1) for s in args.size)
    dbs = {"sqlite": ("sqlite",), "postgres": ("postgres",), "both": ("sqlite", "postgres")}
    out: list[tuple[Bench, str, tuple[str, ...]]] = []
    for name in names:
        b = BENCHES[name]
        size = b.quick if args.quick else b.args
        if name in sizes:
            size = tuple(shlex.split(sizes[name]))
        out.extend((b, db, size) for db in (dbs[args.db] if args.db else b.dbs))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", help="git revision of the old code (default: merge-base with main)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)}")
    p.add_argument(
        "--db",
        choices=("sqlite", "postgres", "both"),
        help="run every bench on these (default: issue 8's matrix)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, to try the comparison")
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="size arguments for one bench, e.g. 'decay=--n 200000'",
    )
    p.add_argument(
        "--driver",
        choices=("own", "new"),
        default="own",
        help="which tree's bench scripts drive the old code (default: its own)",
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds per bench run")
    args = p.parse_args()
    plan = selected(args)
    new = Side("new", ROOT, f"working tree of {git(ROOT, 'rev-parse', '--short', 'HEAD')}")
    old = old_side(args.old)
    for side in (old, new):
        print(f"{side.label}: {side.rev} at {side.tree}; imports {check_imports(side)}")
    for bench in {b.script: b for b, _, _ in plan}.values():
        for name in (bench.script, *SHARED):
            scripts = [script_for(name, s, new, args.driver) for s in (old, new)]
            if scripts[0].read_bytes() != scripts[1].read_bytes():
                print(f"note: bench/{name} differs between the scripts of the two sides")
    runs = run_all(plan, (old, new), args)
    print()
    summarise(plan, runs)


def run_all(
    plan: list[tuple[Bench, str, tuple[str, ...]]],
    sides: tuple[Side, Side],
    args: argparse.Namespace,
) -> dict[tuple[str, str, str], list[Run]]:
    """Every (bench, db) of the plan, ``--rounds`` times, the sides alternating."""
    runs: dict[tuple[str, str, str], list[Run]] = {}
    for r in range(args.rounds):
        for bench, db, size in plan:
            for side in order(r, sides):
                script = script_for(bench.script, side, sides[1], args.driver)
                code, output = run_bench(
                    [sys.executable, str(script), "--db", db, *size], side, args.timeout
                )
                run = parse_run(bench, code, output)
                runs.setdefault((bench.name, db, side.label), []).append(run)
                got = ", ".join(f"{k} {v:g}" for k, v in run.values.items())
                print(
                    f"[round {r + 1}/{args.rounds}] {bench.name} {db} {side.label}: {got}"
                    + "".join(f"\n    ! {n}" for n in run.notes),
                    flush=True,
                )
    return runs


def summarise(
    plan: list[tuple[Bench, str, tuple[str, ...]]], runs: dict[tuple[str, str, str], list[Run]]
) -> None:
    """One block per figure, then a Markdown table of them all for the closing note."""
    summary = [
        "| bench | db | figure | old median | new median | change | noise | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for bench, db, _ in plan:
        for fig in bench.figures:
            old_v, new_v = (
                [
                    x.values[fig.name]
                    for x in runs.get((bench.name, db, s), [])
                    if fig.name in x.values
                ]
                for s in ("old", "new")
            )
            print("\n".join(report(fig, f"{bench.name} {db}", old_v, new_v)))
            med = [f"{statistics.median(v):g}" if v else "-" for v in (old_v, new_v)]
            summary.append(
                f"| {bench.name} | {db} | {fig.name} ({fig.unit}) | {med[0]} | {med[1]} | "
                f"{pct(change(old_v, new_v))} | {pct(spread(old_v), '')} | "
                f"{verdict(fig, old_v, new_v)} |"
            )
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    main()
