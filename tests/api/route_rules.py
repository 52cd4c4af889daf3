"""The app's route table with the authorization rule each route declares.

FastAPI includes routers lazily, so the routes are read through
:func:`fastapi.routing.iter_route_contexts` (which sees router-level dependencies too), and
each route's rule is every :func:`~chameleon_workflow.api.auth.allow` dependency found in
its dependency tree (:func:`~chameleon_workflow.api.auth.rule_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from chameleon_workflow.api.app import create_app
from chameleon_workflow.api.auth import OPEN_PATHS, rule_of
from chameleon_workflow.domain.security import Right
from chameleon_workflow.settings import Settings

Rule = tuple[Right, bool]  # the right, and whether actor keys may read their own records


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    rules: tuple[Rule, ...]  # every allow() found in the route's dependency tree
    open: bool  # in OPEN_PATHS, or a static files mount

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def rule(self) -> Rule | None:
        return self.rules[0] if len(self.rules) == 1 else None


def _rules(dependant: Any) -> tuple[Rule, ...]:
    found: list[Rule] = []
    stack = list(getattr(dependant, "dependencies", []))
    while stack:
        dep = stack.pop()
        rule = rule_of(dep.call) if dep.call is not None else None
        if rule is not None:
            found.append(rule)
        stack.extend(dep.dependencies)
    return tuple(found)


def route_table(app: FastAPI) -> list[Route]:
    """Every (method, path) the app answers; HEAD only where it is the only method."""
    table: list[Route] = []
    for ctx in iter_route_contexts(app.router.routes):
        original = ctx.original_route
        if isinstance(original, Mount):
            table.append(Route("GET", f"{ctx.path}/*", (), isinstance(original.app, StaticFiles)))
            continue
        methods = sorted(ctx.methods or {"GET"})
        rules = _rules(getattr(ctx, "dependant", None))
        for method in [m for m in methods if m != "HEAD" or methods == ["HEAD"]]:
            table.append(Route(method, str(ctx.path), rules, ctx.path in OPEN_PATHS))
    return table


def app_routes() -> list[Route]:
    """The route table of the app as the server builds it (no database is opened)."""
    return route_table(create_app(Settings(database_url="sqlite://")))


def unruled(table: list[Route]) -> list[str]:
    """Routes that are neither open nor declare exactly one rule, or are both."""
    return [r.id for r in table if r.open == (r.rule is not None) or len(r.rules) > 1]
