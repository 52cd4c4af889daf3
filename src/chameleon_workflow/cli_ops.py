"""Operators' commands (for cron too): the background services, toxic marks, the run history,
and the scheduler of the background services in a process of its own.

Exit codes (see cli_base): 0 done; 2 a user error (a missing, zero, negative or non-integer
count, a malformed or unknown id, a blank reason, a database that is missing, down or still
locked after the busy wait); 1 an internal failure. The sweeps and the decay try again while
another process holds SQLite's write lock, for up to ``--busy-wait`` seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import uuid
from datetime import datetime
from typing import Annotated, Any

import typer

from . import logs
from .cli_base import engine_for_cli, retry_while_busy
from .domain.enums import Trigger
from .engine.core import Engine
from .engine.maintenance import JOBS, RunOutcome
from .store.pagination import MAX_LIMIT

zombies_app = typer.Typer(no_args_is_help=True, help="Zombie protocol: reclaim silent leases.")
stale_app = typer.Typer(no_args_is_help=True, help="Stale token protocol: overdue work to Chronos.")
memory_app = typer.Typer(no_args_is_help=True, help="Memory decay and the toxic knowledge filter.")
maintenance_app = typer.Typer(no_args_is_help=True, help="The record of maintenance runs.")
scheduler_app = typer.Typer(
    no_args_is_help=True, help="The background services on their schedules, without HTTP."
)


def register(app: typer.Typer) -> None:
    app.add_typer(zombies_app, name="zombies")
    app.add_typer(stale_app, name="stale-tokens")
    app.add_typer(memory_app, name="memory")
    app.add_typer(maintenance_app, name="maintenance")
    app.add_typer(scheduler_app, name="scheduler")


Count = Annotated[int | None, typer.Option(min=1, help="A positive integer.")]
BatchSize = Annotated[int | None, typer.Option(min=1, help="Rows per transaction.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Report what would change; change nothing.")
]
Reason = Annotated[str, typer.Option(help="Why (required, recorded in the audit).")]
By = Annotated[str | None, typer.Option(help="Who is acting (default: cli:$USER).")]
BusyWait = Annotated[
    float,
    typer.Option(
        min=0, max=86_400, help="Seconds to keep trying while SQLite is locked by another writer."
    ),
]
_engine = engine_for_cli


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_plain))


def _by(by: str | None) -> str:
    return by or f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'operator'}"


def _report(run: RunOutcome, key: str, count_name: str) -> None:
    _echo({"success": True, key: run.counts.get(count_name, 0), **dataclasses.asdict(run)})


@zombies_app.command("sweep")
def zombies_sweep(
    timeout: Count = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = None,
    busy_wait: BusyWait = 120.0,
) -> None:
    """Reclaim ACTIVE work whose heartbeat is older than the timeout (default 300 s)."""
    with _engine() as engine:
        run = retry_while_busy(
            engine,
            lambda: engine.maintenance.zombie_sweep(
                timeout, dry_run=dry_run, batch_size=batch_size, trigger=Trigger.CLI
            ),
            busy_wait,
        )
    _report(run, "zombies_reclaimed", "reclaimed")


@zombies_app.command("list")
def zombies_list(
    timeout: Count = None, limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT)] = 100
) -> None:
    """List the current zombies (longest silent first, up to --limit); changes nothing."""
    with _engine() as engine:
        found = engine.maintenance.zombie_candidates(timeout, limit=limit)
    _echo(
        {"timeout_seconds": found.timeout_seconds, "count": found.count, "zombies": found.zombies}
    )


@stale_app.command("sweep")
def stale_tokens_sweep(
    dry_run: DryRun = False, batch_size: BatchSize = None, busy_wait: BusyWait = 120.0
) -> None:
    """Move work left PENDING past its interaction's limit to Chronos."""
    with _engine() as engine:
        run = retry_while_busy(
            engine,
            lambda: engine.maintenance.stale_token_sweep(
                dry_run=dry_run, batch_size=batch_size, trigger=Trigger.CLI
            ),
            busy_wait,
        )
    _report(run, "tokens_moved", "moved")


@memory_app.command("decay")
def memory_decay(
    retention_days: Count = None,
    dry_run: DryRun = False,
    archive: Annotated[
        bool, typer.Option("--archive", help="Archive (kept, restorable) instead of deleting.")
    ] = False,
    instance: Annotated[uuid.UUID | None, typer.Option(help="Only this instance.")] = None,
    batch_size: BatchSize = None,
    busy_wait: BusyWait = 120.0,
) -> None:
    """Delete (or archive) memories not injected within the retention period (default 90 days)."""
    with _engine() as engine:
        run = retry_while_busy(
            engine,
            lambda: engine.maintenance.memory_decay(
                retention_days,
                dry_run=dry_run,
                archive=archive,
                instance_id=instance,
                batch_size=batch_size,
                trigger=Trigger.CLI,
            ),  # fmt: skip
            busy_wait,
        )
    _report(run, "memories_deleted", "deleted")


@memory_app.command("mark-toxic")
def mark_toxic(memory_id: uuid.UUID, reason: Reason, by: By = None) -> None:
    """Mark a memory toxic: it is never injected again."""
    with _engine() as engine:
        change = engine.toxic.mark(memory_id, reason, by=_by(by))
    what = "marked as toxic" if change.changed else "was already marked as toxic"
    _echo({"success": True, "changed": change.changed, "message": f"Memory {memory_id} {what}."})


@memory_app.command("unmark-toxic")
def unmark_toxic(memory_id: uuid.UUID, reason: Reason, by: By = None) -> None:
    """Clear a memory's toxic mark."""
    with _engine() as engine:
        change = engine.toxic.unmark(memory_id, reason, by=_by(by))
    what = "is no longer marked as toxic" if change.changed else "was not marked as toxic"
    _echo({"success": True, "changed": change.changed, "message": f"Memory {memory_id} {what}."})


@maintenance_app.command("runs")
def maintenance_runs(
    job: Annotated[str | None, typer.Option(help=f"One of: {', '.join(JOBS)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recorded runs of the background services, newest first."""
    with _engine() as engine:
        rows = engine.maintenance.runs(job=job, limit=limit)
    if as_json:
        _echo(rows)
        return
    for r in rows:
        finished = r.finished_at.isoformat() if r.finished_at else "running"
        outcome = f"error: {r.error}" if r.error else json.dumps(r.counts)
        typer.echo(
            f"{r.id}\t{r.job}\t{r.trigger}\t{r.started_at.isoformat()}\t"
            f"{finished}\t{r.replica}\t{outcome}"
        )


@scheduler_app.command("run")
def scheduler_run() -> None:
    """Run the background services on their schedules in the foreground, without HTTP, until
    SIGINT or SIGTERM (then stop cleanly, releasing the leader leases). Runs whatever
    CHAMELEON_SCHEDULER_ENABLED says: that setting is for the server's own scheduler."""
    with _engine() as engine:
        s = engine.settings
        logs.configure(s.log_format)
        typer.echo(
            f"scheduler: replica {engine.maintenance.replica}; zombie sweep every "
            f"{s.zombie_interval_seconds:g} s, stale tokens every "
            f"{s.stale_token_interval_seconds:g} s, memory decay daily at "
            f"{s.memory_decay_hour_utc:02d}:{s.memory_decay_minute_utc:02d} UTC; "
            "stop with Ctrl-C or SIGTERM",
            err=True,
        )
        asyncio.run(_until_signalled(engine))
    typer.echo("scheduler: stopped", err=True)


async def _until_signalled(engine: Engine) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engine.scheduler().run_until(stop)
