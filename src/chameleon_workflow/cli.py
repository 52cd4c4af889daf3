"""The command line: server, database and workflow definitions.

Exit codes (see cli_base): 0 done, 2 a user error (one line on stderr), 1 an internal failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click

from . import logs
from .cli_base import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    Options,
    engine_for_cli,
    fail,
    load_settings,
    scrub,
)
from .domain.errors import ChameleonError, DefinitionInvalid
from .engine.core import Engine
from .settings import LOOPBACK_NAMES, host_pattern

app = typer.Typer(no_args_is_help=True, help="Chameleon workflow engine.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
workflow_app = typer.Typer(no_args_is_help=True, help="Workflow definitions (templates).")
app.add_typer(db_app, name="db")
app.add_typer(workflow_app, name="workflow")

__all__ = ["EXIT_USAGE", "app", "engine_for_cli", "fail", "main", "run"]


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", envvar="CHAMELEON_DEBUG", help="Show tracebacks.")
    ] = False,
) -> None:
    Options.debug = debug


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise fail(f"no such file: {path}") from exc
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}") from exc


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=256, help="Worker processes.")] = 1,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Accept requests without an API key (local experiments; loopback only).",
        ),
    ] = False,
) -> None:
    """Run the HTTP server (with the background services) on the configured database."""
    from .api.server import run as run_server

    settings = load_settings()
    if insecure_no_auth or not settings.auth_enabled:
        how = "--insecure-no-auth" if insecure_no_auth else "CHAMELEON_AUTH_ENABLED=false"
        if not is_loopback(host):
            raise fail(
                f"{how} serves without API keys, so it binds only to loopback "
                f"(127.0.0.1, ::1 or localhost), not {host}"
            )
        os.environ["CHAMELEON_AUTH_ENABLED"] = "false"  # read by every worker's settings
        typer.echo(f"warning: authentication is OFF ({how})", err=True)
    with engine_for_cli() as engine:  # refuses a missing, unreachable or outdated database
        log_format = engine.settings.log_format
    _check_can_listen(host, port)
    allow_bind_host(host, settings.allowed_hosts)
    typer.echo(
        f"Chameleon on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)", err=True
    )
    run_server(host, port, workers, log_level="info", log_config=logs.dict_config(log_format))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allow_bind_host(host: str, allowed: list[str]) -> None:
    """Add the bind address to the hosts the server answers (every worker reads the
    environment). A wildcard address (0.0.0.0, ::) names no host: the operator lists the
    names clients use in CHAMELEON_ALLOWED_HOSTS, and is warned when only loopback is there."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        if set(allowed) <= set(LOOPBACK_NAMES):
            typer.echo(
                f"warning: listening on every interface ({host}) but answering only requests "
                f"for {', '.join(allowed)}; set CHAMELEON_ALLOWED_HOSTS to the names clients use",
                err=True,
            )
        return
    try:
        name = host_pattern(host)
    except ValueError as exc:
        raise fail(f"cannot serve as {host!r}: {exc}") from exc
    if name not in allowed and "*" not in allowed:
        os.environ["CHAMELEON_ALLOWED_HOSTS"] = json.dumps([*allowed, name])


def _check_can_listen(host: str, port: int) -> None:
    """Fail with one line now if the server could not bind ``host:port`` (in use, bad host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", exc) from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations."""
    with engine_for_cli(need_schema=False) as engine:
        engine.upgrade_schema()
    typer.echo("database schema is up to date")


@workflow_app.command("validate")
def workflow_validate(file: Path) -> None:
    """Check a workflow YAML against every rule; exit 2 when invalid (warnings exit 0)."""
    from .engine.templates import validate_yaml, yaml_budget

    text = read_file(file)
    try:
        checked = validate_yaml(text, yaml_budget(load_settings()))
    except DefinitionInvalid as exc:
        typer.echo(f"{file}: invalid", err=True)
        for v in exc.violations:
            typer.echo(f"  - {v}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    for w in checked.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(f"{file}: valid workflow '{checked.definition.name}'")


@workflow_app.command("import")
def workflow_import(file: Path) -> None:
    """Import a workflow YAML as a new template version."""
    text = read_file(file)
    with engine_for_cli() as engine:
        imported = engine.templates.import_yaml(text)
    t = imported.template
    warnings = [w.as_dict() for w in imported.warnings]
    echo_json(
        {"template_id": str(t.id), "name": t.name, "version": t.version, "warnings": warnings}
    )


@workflow_app.command("list")
def workflow_list() -> None:
    """List templates and their versions."""
    with engine_for_cli() as engine:
        rows = engine.templates.list()
    for t in rows:
        typer.echo(f"{t.name}\tv{t.version}\t{t.id}\t{t.imported_at.isoformat()}")


@workflow_app.command("export")
def workflow_export(
    name: str,
    version: Annotated[int | None, typer.Option(min=1, help="Version (default latest).")] = None,
) -> None:
    """Print a template as YAML that re-imports to the same template."""
    with engine_for_cli() as engine:
        typer.echo(engine.templates.export_yaml(engine.templates.find(name, version)), nl=False)


@workflow_app.command("graph")
def workflow_graph(
    name: str,
    version: Annotated[int | None, typer.Option(min=1, help="Version (default latest).")] = None,
) -> None:
    """Print a template as Graphviz DOT."""
    with engine_for_cli() as engine:
        typer.echo(engine.templates.export_dot(engine.templates.find(name, version)))


@workflow_app.command("import-examples")
def workflow_import_examples() -> None:
    """Import the bundled example workflows (unless already imported) with a demo instance each."""
    with engine_for_cli() as engine:
        for res in sorted(resources.files("chameleon_workflow.examples").iterdir(), key=str):
            if not res.name.endswith((".yml", ".yaml")):
                continue
            text = res.read_text(encoding="utf-8")
            template = _import_once(engine, text)
            if not any(i.template_id == template.id for i in engine.instances.list()):
                g = engine.instances.instantiate(
                    template.id,
                    {"invoice_total": 1250, "input_text": "hello"},
                    name=f"{template.name} demo",
                )
                typer.echo(f"demo instance {g.instance.id} with UOW {g.uow_id}")
            typer.echo(f"template {template.name} v{template.version}: {template.id}")


def _import_once(engine: Engine, text: str) -> Any:
    checked = engine.templates.check(text)
    try:
        latest = engine.templates.find(checked.definition.name)
    except ChameleonError:
        latest = None
    if latest is not None and latest.source_yaml == text:
        return latest
    return engine.templates.import_yaml(text, checked).template


def run(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv``; return the exit code (see the module's docstring)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="chameleon", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help())
        return EXIT_USAGE
    except UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        message = " ".join(exc.format_message().split())
        typer.echo(f"error: {message}{hint}", err=True)
        return EXIT_USAGE
    except typer.TyperException as exc:
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        return EXIT_USAGE
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 (an internal failure: one line, exit 1)
        if Options.debug:
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        typer.echo(f"internal error: {type(exc).__name__}: {scrub(first)}", err=True)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())


from .cli_keys import register as _register_keys  # noqa: E402
from .cli_ops import register as _register_ops  # noqa: E402

_register_ops(app)
_register_keys(app)
