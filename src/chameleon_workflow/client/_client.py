"""The sync and async clients: the async methods mirror the sync ones (a test checks)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from . import _spec as s
from . import models as m
from .errors import ChameleonError, TransportError, error_from

T = TypeVar("T")
ID = uuid.UUID | str

# Errors raised before any byte of the request left: always safe to try again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How the client tries again on a connection error or a 503.

    ``attempts`` counts every try (1 = no retry). The wait before try n+1 is
    ``min(max_backoff, backoff * 2**(n-1))`` with up to ``jitter`` of it taken off at random,
    and at least the 503's ``Retry-After`` (capped by ``max_retry_after``). 4xx are never
    retried.
    """

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        base = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        wait = base * (1 - self.jitter * random.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _delay_after(
    policy: RetryPolicy, spec: s.Spec[Any], attempt: int, problem: httpx.Response | Exception
) -> float | None:
    """How long to wait before trying ``spec`` again, or None not to."""
    if attempt >= policy.attempts:
        return None
    if isinstance(problem, httpx.Response):
        return policy.delay(attempt, _retry_after(problem)) if problem.status_code == 503 else None
    if isinstance(problem, NOT_SENT) or spec.resend_safe:
        return policy.delay(attempt)
    return None


def _read(spec: s.Spec[T], response: httpx.Response) -> T:
    if response.status_code == 204:
        return spec.empty  # type: ignore[return-value]
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise error_from(response.status_code, body, response.text)
    return spec.parse(body)


def _transport_error(spec: s.Spec[Any], exc: Exception, attempts: int) -> ChameleonError:
    sent = (
        ""
        if isinstance(exc, NOT_SENT) or spec.resend_safe
        else (
            " (not re-sent: the request may have reached the server; send a lease_id to make "
            "a retry safe)"
        )
    )
    return TransportError(
        f"{spec.method} {spec.path} failed after {attempts} attempt(s): "
        f"{type(exc).__name__}: {exc}{sent}",
        error=type(exc).__name__,
    )


class _Base:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        retry: RetryPolicy | None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retry = retry or RetryPolicy()

    def _request_args(self, spec: s.Spec[Any]) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if spec.content_type:
            headers["Content-Type"] = spec.content_type
        args: dict[str, Any] = {
            "method": spec.method,
            "url": self.base_url + spec.path,
            "headers": headers,
            "params": dict(spec.params),
            "timeout": httpx.Timeout(self.timeout, read=self.timeout + spec.extra_timeout),
        }
        if spec.content is not None:
            args["content"] = spec.content
        elif spec.json is not None:
            args["json"] = spec.json
        return args


class Client(_Base):
    """A synchronous client. ``http`` may be any ``httpx.Client`` (a test's
    ``fastapi.testclient.TestClient`` too); it is then not closed by :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retry)
        self._owned = http is None
        self._http = http if http is not None else httpx.Client(transport=transport)
        self._sleep = sleep

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, spec: s.Spec[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(**self._request_args(spec))
            except httpx.TransportError as exc:
                delay = _delay_after(self.retry, spec, attempt, exc)
                if delay is None:
                    raise _transport_error(spec, exc, attempt) from exc
                self._sleep(delay)
                continue
            delay = _delay_after(self.retry, spec, attempt, response)
            if delay is None:
                return _read(spec, response)
            self._sleep(delay)

    def paginate(
        self, path: str, *, limit: int | None = None, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (``?limit=&cursor=``), page after page."""
        cursor: str | None = None
        while True:
            page = self._run(s.page(path, params, cursor, limit))
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- work ----------------------------------------------------------------------------

    def checkout(self, actor_id: ID, role_id: ID) -> m.Checkout | None:
        """Lease the next UOW for ``role_id`` (``None`` when there is none: a 204).
        Never re-sent once it may have reached the server (it would lease a second UOW)."""
        return self._run(s.checkout(actor_id, role_id))

    def submit(
        self,
        uow_id: ID,
        actor_id: ID,
        result_attributes: Mapping[str, Any] | None = None,
        *,
        lease_id: ID | None = None,
        reasoning: str | None = None,
        children: list[dict[str, Any]] | None = None,
    ) -> m.SubmitResult:
        """Finish a leased UOW. With ``lease_id`` a lost answer is retried with the identical
        body (the server answers ``replayed: true`` if the first one landed); without it the
        request is not re-sent once it may have arrived."""
        return self._run(
            s.submit(
                uow_id,
                actor_id,
                result_attributes,
                lease_id=lease_id,
                reasoning=reasoning,
                children=children,
            )
        )

    def report_failure(
        self,
        uow_id: ID,
        actor_id: ID,
        error_code: str,
        *,
        details: Any = None,
        lease_id: ID | None = None,
    ) -> m.FailureResult:
        """Report that a leased UOW failed; retried like :meth:`submit`."""
        return self._run(
            s.failure(uow_id, actor_id, error_code, details=details, lease_id=lease_id)
        )

    def heartbeat(self, uow_id: ID, actor_id: ID, lease_id: ID | None = None) -> m.Heartbeat:
        """Keep a lease alive (a 409 :class:`LeaseLost` says it is gone)."""
        return self._run(s.heartbeat(uow_id, actor_id, lease_id))

    # -- definitions, instances, actors ----------------------------------------------------

    def import_template(self, yaml_text: str) -> m.TemplateImport:
        return self._run(s.import_template(yaml_text))

    def templates(self, *, limit: int | None = None) -> list[m.TemplateSummary]:
        """Every template (all pages)."""
        return [
            m.TemplateSummary.model_validate(i) for i in self.paginate("/templates", limit=limit)
        ]

    def instantiate(
        self,
        template_id: ID,
        initial_context: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> m.Instantiated:
        return self._run(s.instantiate(template_id, initial_context, name, description))

    def genesis(
        self, instance_id: ID, initial_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return self._run(s.genesis(instance_id, initial_context))

    def instance(self, instance_id: ID) -> m.InstanceDetail:
        return self._run(s.get(f"/instances/{instance_id}", m.InstanceDetail.model_validate))

    def instances(self, *, limit: int | None = None) -> list[m.InstanceSummary]:
        """Every instance (all pages)."""
        return [
            m.InstanceSummary.model_validate(i) for i in self.paginate("/instances", limit=limit)
        ]

    def create_actor(self, name: str, actor_type: str = "AI_AGENT") -> m.ActorCreated:
        return self._run(s.create_actor(name, actor_type))

    def assign(self, actor_id: ID, role_id: ID) -> m.Assignment:
        return self._run(s.assign(actor_id, role_id))

    def actors(self, *, limit: int | None = None) -> list[m.Actor]:
        return [m.Actor.model_validate(i) for i in self.paginate("/actors", limit=limit)]

    # -- UOWs ----------------------------------------------------------------------------------

    def uow(self, uow_id: ID) -> m.Uow:
        return self._run(s.get(f"/uows/{uow_id}", m.Uow.model_validate))

    def uow_history(self, uow_id: ID) -> m.UowHistory:
        return self._run(s.get(f"/uows/{uow_id}/history", m.UowHistory.model_validate))

    # -- memory --------------------------------------------------------------------------------

    def write_memory(
        self,
        role_id: ID,
        key: str,
        value: Any,
        *,
        reasoning: str,
        scope: str | None = None,
        actor_id: ID | None = None,
        confidence: float | None = None,
        source_uow_id: ID | None = None,
    ) -> m.Memory:
        """Write a role memory (a new version when the key exists). Not re-sent once it may
        have arrived."""
        return self._run(
            s.write_memory(
                role_id,
                key,
                value,
                reasoning=reasoning,
                scope=scope,
                actor_id=actor_id,
                confidence=confidence,
                source_uow_id=source_uow_id,
            )
        )

    def memories(
        self,
        role_id: ID,
        *,
        scope: str | None = None,
        actor_id: ID | None = None,
        include_toxic: bool | None = None,
        archived: bool | None = None,
        limit: int | None = None,
    ) -> list[m.Memory]:
        """Every memory of a role matching the filters (all pages)."""
        items = self.paginate(
            f"/roles/{role_id}/memories",
            limit=limit,
            scope=scope,
            actor_id=actor_id,
            include_toxic=include_toxic,
            archived=archived,
        )
        return [m.Memory.model_validate(i) for i in items]

    def memory(self, memory_id: ID) -> m.Memory:
        return self._run(s.get(f"/memories/{memory_id}", m.Memory.model_validate))

    def memory_versions(self, memory_id: ID, *, limit: int | None = None) -> list[m.MemoryVersion]:
        items = self.paginate(f"/memories/{memory_id}/versions", limit=limit)
        return [m.MemoryVersion.model_validate(i) for i in items]

    def archive_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return self._run(s.memory_change("archive", memory_id, reason))

    def restore_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return self._run(s.memory_change("restore", memory_id, reason))

    # -- pilot ---------------------------------------------------------------------------------

    def request_intervention(
        self,
        uow_id: ID,
        actor_id: ID,
        title: str,
        *,
        lease_id: ID | None = None,
        type: str | None = None,
        description: str | None = None,
        priority: str | None = None,
    ) -> m.Intervention:
        return self._run(
            s.request_intervention(
                uow_id,
                actor_id,
                title,
                lease_id=lease_id,
                type=type,
                description=description,
                priority=priority,
            )
        )

    def intervention(self, request_id: ID, *, wait: float | None = None) -> m.Intervention:
        """A pilot request; with ``wait`` the server holds the answer up to that many seconds
        while it is pending (long-poll)."""
        return self._run(s.get_intervention(request_id, wait))

    def pending_interventions(
        self, *, instance_id: ID | None = None, type: str | None = None, limit: int | None = None
    ) -> list[m.Intervention]:
        items = self.paginate(
            "/api/interventions/pending", limit=limit, instance_id=instance_id, type=type
        )
        return [m.Intervention.model_validate(i) for i in items]

    def kill_switch(self, instance_id: ID, reason: str) -> dict[str, Any]:
        """Pause an instance (admin)."""
        return self._run(s.kill_switch(instance_id, reason))

    def resume_instance(self, instance_id: ID, reason: str) -> dict[str, Any]:
        return self._run(s.resume_instance(instance_id, reason))

    def approve_intervention(self, request_id: ID, reason: str) -> dict[str, Any]:
        return self._run(
            s.post(f"/api/interventions/{request_id}/approve", s.as_dict, {"reason": reason})
        )

    def reject_intervention(self, request_id: ID, reason: str) -> dict[str, Any]:
        return self._run(
            s.post(f"/api/interventions/{request_id}/reject", s.as_dict, {"reason": reason})
        )

    # -- more reads and operations (free-form answers) ------------------------------------------

    def actor(self, actor_id: ID) -> dict[str, Any]:
        return self._run(s.get(f"/actors/{actor_id}", s.as_dict))

    def template(self, template_id: ID) -> dict[str, Any]:
        return self._run(s.get(f"/templates/{template_id}", s.as_dict))

    def uows(self, *, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Every UOW matching the filters of ``GET /uows`` (instance_id, status, role_id, …)."""
        return [i for i in self.paginate("/uows", limit=limit, **filters)]

    def hold_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return self._run(s.memory_change("hold", memory_id, reason))

    def release_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return self._run(s.memory_change("release", memory_id, reason))

    def run_zombie_protocol(
        self, *, timeout_seconds: int | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Reclaim the leases whose heartbeat is older than the timeout (operator)."""
        body: dict[str, Any] = {"dry_run": dry_run}
        if timeout_seconds is not None:
            body["timeout_seconds"] = timeout_seconds
        return self._run(s.post("/admin/run-zombie-protocol", s.as_dict, body))

    def create_key(
        self, scope: str, *, actor_id: ID | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """A new API key (admin); the answer holds the secret once."""
        body: dict[str, Any] = {"scope": scope}
        if actor_id is not None:
            body["actor_id"] = str(actor_id)
        if name is not None:
            body["name"] = name
        return self._run(s.post("/admin/keys", s.as_dict, body))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        resend_safe: bool = False,
    ) -> Any:
        """Any other route, with the same keys, errors and retry rules; ``resend_safe`` says
        the request may be sent again after it may have landed (GET always is)."""
        return self._run(s.raw(method, path, json, params, resend_safe))


class AsyncClient(_Base):
    """The asynchronous twin of :class:`Client` (same methods, awaited)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retry)
        self._owned = http is None
        self._http = http if http is not None else httpx.AsyncClient(transport=transport)
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self, spec: s.Spec[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(**self._request_args(spec))
            except httpx.TransportError as exc:
                delay = _delay_after(self.retry, spec, attempt, exc)
                if delay is None:
                    raise _transport_error(spec, exc, attempt) from exc
                await self._sleep(delay)
                continue
            delay = _delay_after(self.retry, spec, attempt, response)
            if delay is None:
                return _read(spec, response)
            await self._sleep(delay)

    async def paginate(
        self, path: str, *, limit: int | None = None, **params: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged list (``?limit=&cursor=``), page after page."""
        cursor: str | None = None
        while True:
            page = await self._run(s.page(path, params, cursor, limit))
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- work ----------------------------------------------------------------------------

    async def checkout(self, actor_id: ID, role_id: ID) -> m.Checkout | None:
        """Lease the next UOW for ``role_id`` (``None`` when there is none: a 204).
        Never re-sent once it may have reached the server (it would lease a second UOW)."""
        return await self._run(s.checkout(actor_id, role_id))

    async def submit(
        self,
        uow_id: ID,
        actor_id: ID,
        result_attributes: Mapping[str, Any] | None = None,
        *,
        lease_id: ID | None = None,
        reasoning: str | None = None,
        children: list[dict[str, Any]] | None = None,
    ) -> m.SubmitResult:
        """Finish a leased UOW. With ``lease_id`` a lost answer is retried with the identical
        body (the server answers ``replayed: true`` if the first one landed); without it the
        request is not re-sent once it may have arrived."""
        return await self._run(
            s.submit(
                uow_id,
                actor_id,
                result_attributes,
                lease_id=lease_id,
                reasoning=reasoning,
                children=children,
            )
        )

    async def report_failure(
        self,
        uow_id: ID,
        actor_id: ID,
        error_code: str,
        *,
        details: Any = None,
        lease_id: ID | None = None,
    ) -> m.FailureResult:
        """Report that a leased UOW failed; retried like :meth:`submit`."""
        return await self._run(
            s.failure(uow_id, actor_id, error_code, details=details, lease_id=lease_id)
        )

    async def heartbeat(self, uow_id: ID, actor_id: ID, lease_id: ID | None = None) -> m.Heartbeat:
        """Keep a lease alive (a 409 :class:`LeaseLost` says it is gone)."""
        return await self._run(s.heartbeat(uow_id, actor_id, lease_id))

    # -- definitions, instances, actors ----------------------------------------------------

    async def import_template(self, yaml_text: str) -> m.TemplateImport:
        return await self._run(s.import_template(yaml_text))

    async def templates(self, *, limit: int | None = None) -> list[m.TemplateSummary]:
        """Every template (all pages)."""
        return [
            m.TemplateSummary.model_validate(i)
            async for i in self.paginate("/templates", limit=limit)
        ]

    async def instantiate(
        self,
        template_id: ID,
        initial_context: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> m.Instantiated:
        return await self._run(s.instantiate(template_id, initial_context, name, description))

    async def genesis(
        self, instance_id: ID, initial_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self._run(s.genesis(instance_id, initial_context))

    async def instance(self, instance_id: ID) -> m.InstanceDetail:
        return await self._run(s.get(f"/instances/{instance_id}", m.InstanceDetail.model_validate))

    async def instances(self, *, limit: int | None = None) -> list[m.InstanceSummary]:
        """Every instance (all pages)."""
        return [
            m.InstanceSummary.model_validate(i)
            async for i in self.paginate("/instances", limit=limit)
        ]

    async def create_actor(self, name: str, actor_type: str = "AI_AGENT") -> m.ActorCreated:
        return await self._run(s.create_actor(name, actor_type))

    async def assign(self, actor_id: ID, role_id: ID) -> m.Assignment:
        return await self._run(s.assign(actor_id, role_id))

    async def actors(self, *, limit: int | None = None) -> list[m.Actor]:
        return [m.Actor.model_validate(i) async for i in self.paginate("/actors", limit=limit)]

    # -- UOWs ----------------------------------------------------------------------------------

    async def uow(self, uow_id: ID) -> m.Uow:
        return await self._run(s.get(f"/uows/{uow_id}", m.Uow.model_validate))

    async def uow_history(self, uow_id: ID) -> m.UowHistory:
        return await self._run(s.get(f"/uows/{uow_id}/history", m.UowHistory.model_validate))

    # -- memory --------------------------------------------------------------------------------

    async def write_memory(
        self,
        role_id: ID,
        key: str,
        value: Any,
        *,
        reasoning: str,
        scope: str | None = None,
        actor_id: ID | None = None,
        confidence: float | None = None,
        source_uow_id: ID | None = None,
    ) -> m.Memory:
        """Write a role memory (a new version when the key exists). Not re-sent once it may
        have arrived."""
        return await self._run(
            s.write_memory(
                role_id,
                key,
                value,
                reasoning=reasoning,
                scope=scope,
                actor_id=actor_id,
                confidence=confidence,
                source_uow_id=source_uow_id,
            )
        )

    async def memories(
        self,
        role_id: ID,
        *,
        scope: str | None = None,
        actor_id: ID | None = None,
        include_toxic: bool | None = None,
        archived: bool | None = None,
        limit: int | None = None,
    ) -> list[m.Memory]:
        """Every memory of a role matching the filters (all pages)."""
        items = self.paginate(
            f"/roles/{role_id}/memories",
            limit=limit,
            scope=scope,
            actor_id=actor_id,
            include_toxic=include_toxic,
            archived=archived,
        )
        return [m.Memory.model_validate(i) async for i in items]

    async def memory(self, memory_id: ID) -> m.Memory:
        return await self._run(s.get(f"/memories/{memory_id}", m.Memory.model_validate))

    async def memory_versions(
        self, memory_id: ID, *, limit: int | None = None
    ) -> list[m.MemoryVersion]:
        items = self.paginate(f"/memories/{memory_id}/versions", limit=limit)
        return [m.MemoryVersion.model_validate(i) async for i in items]

    async def archive_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return await self._run(s.memory_change("archive", memory_id, reason))

    async def restore_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return await self._run(s.memory_change("restore", memory_id, reason))

    # -- pilot ---------------------------------------------------------------------------------

    async def request_intervention(
        self,
        uow_id: ID,
        actor_id: ID,
        title: str,
        *,
        lease_id: ID | None = None,
        type: str | None = None,
        description: str | None = None,
        priority: str | None = None,
    ) -> m.Intervention:
        return await self._run(
            s.request_intervention(
                uow_id,
                actor_id,
                title,
                lease_id=lease_id,
                type=type,
                description=description,
                priority=priority,
            )
        )

    async def intervention(self, request_id: ID, *, wait: float | None = None) -> m.Intervention:
        """A pilot request; with ``wait`` the server holds the answer up to that many seconds
        while it is pending (long-poll)."""
        return await self._run(s.get_intervention(request_id, wait))

    async def pending_interventions(
        self, *, instance_id: ID | None = None, type: str | None = None, limit: int | None = None
    ) -> list[m.Intervention]:
        items = self.paginate(
            "/api/interventions/pending", limit=limit, instance_id=instance_id, type=type
        )
        return [m.Intervention.model_validate(i) async for i in items]

    async def kill_switch(self, instance_id: ID, reason: str) -> dict[str, Any]:
        """Pause an instance (admin)."""
        return await self._run(s.kill_switch(instance_id, reason))

    async def resume_instance(self, instance_id: ID, reason: str) -> dict[str, Any]:
        return await self._run(s.resume_instance(instance_id, reason))

    async def approve_intervention(self, request_id: ID, reason: str) -> dict[str, Any]:
        return await self._run(
            s.post(f"/api/interventions/{request_id}/approve", s.as_dict, {"reason": reason})
        )

    async def reject_intervention(self, request_id: ID, reason: str) -> dict[str, Any]:
        return await self._run(
            s.post(f"/api/interventions/{request_id}/reject", s.as_dict, {"reason": reason})
        )

    # -- more reads and operations (free-form answers) ------------------------------------------

    async def actor(self, actor_id: ID) -> dict[str, Any]:
        return await self._run(s.get(f"/actors/{actor_id}", s.as_dict))

    async def template(self, template_id: ID) -> dict[str, Any]:
        return await self._run(s.get(f"/templates/{template_id}", s.as_dict))

    async def uows(self, *, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Every UOW matching the filters of ``GET /uows`` (instance_id, status, role_id, …)."""
        return [i async for i in self.paginate("/uows", limit=limit, **filters)]

    async def hold_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return await self._run(s.memory_change("hold", memory_id, reason))

    async def release_memory(self, memory_id: ID, reason: str) -> m.Memory:
        return await self._run(s.memory_change("release", memory_id, reason))

    async def run_zombie_protocol(
        self, *, timeout_seconds: int | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Reclaim the leases whose heartbeat is older than the timeout (operator)."""
        body: dict[str, Any] = {"dry_run": dry_run}
        if timeout_seconds is not None:
            body["timeout_seconds"] = timeout_seconds
        return await self._run(s.post("/admin/run-zombie-protocol", s.as_dict, body))

    async def create_key(
        self, scope: str, *, actor_id: ID | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """A new API key (admin); the answer holds the secret once."""
        body: dict[str, Any] = {"scope": scope}
        if actor_id is not None:
            body["actor_id"] = str(actor_id)
        if name is not None:
            body["name"] = name
        return await self._run(s.post("/admin/keys", s.as_dict, body))

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        resend_safe: bool = False,
    ) -> Any:
        """Any other route, with the same keys, errors and retry rules; ``resend_safe`` says
        the request may be sent again after it may have landed (GET always is)."""
        return await self._run(s.raw(method, path, json, params, resend_safe))
