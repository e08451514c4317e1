"""Webhook callbacks: POST a task's final status to the `callback_url` it named.

A task may name a callback URL on a host that the operator allowed. When it
reaches a terminal state, a pending delivery is stored, and the dispatcher
POSTs the task as JSON, signed with HMAC-SHA256, retrying with exponential
backoff. Every attempt is stored and shown at `/tasks/{id}/callback`.
Deliveries live in the store, so a restart resumes the pending ones. Each
attempt has a deadline and runs in its own asyncio task, so a receiver that
never responds occupies one delivery slot for `timeout_s`, nothing more.

The signature header reads `t=<unix seconds>,v1=<hex digest>`, where the
digest is HMAC-SHA256 with the shared secret over `<t>.` followed by the
raw body. Signing the timestamp lets a receiver reject replayed deliveries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any

import httpx
import orjson

from tasky import __version__
from tasky.errors import BadRequest
from tasky.settings import WebhookSettings
from tasky.store.base import CallbackAttempt, CallbackDelivery, Store
from tasky.task import Task

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Tasky-Signature"
DELIVERY_HEADER = "Tasky-Delivery"
MAX_URL_CHARS = 2048
SIGNATURE_TOLERANCE_S = 300  # receivers should reject signatures older than this


def check_callback_url(url: str, allowed_hosts: Collection[str]) -> str:
    """Return the URL if it is http(s) to an allowed host; raise `BadRequest` saying why not."""
    if len(url) > MAX_URL_CHARS:
        raise _invalid_url(f"callback_url is longer than {MAX_URL_CHARS} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _invalid_url(f"callback_url {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _invalid_url(f"callback_url {url!r} must be an absolute http:// or https:// URL")
    host = parsed.host.lower()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if host not in allowed_hosts and f"{host}:{port}" not in allowed_hosts:
        raise BadRequest(
            f"callback_url host {host!r} is not allowed; an operator allows hosts with the setting webhooks.allowed_hosts",
            code="callback_host_not_allowed",
            detail={"host": host, "allowed_hosts": sorted(allowed_hosts)},
        )
    return url


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: bytes, header: str, body: bytes, *, now: float | None = None) -> bool:
    """Check a signature header as a receiver should: digest and age of the timestamp."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > SIGNATURE_TOLERANCE_S:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff_s(settings: WebhookSettings, failed_attempts: int) -> float:
    """Return the wait after `failed_attempts` failures: doubling from backoff_s, capped."""
    return min(settings.max_backoff_s, settings.backoff_s * 2 ** (failed_attempts - 1))


class WebhookDispatcher:
    """Delivers pending callbacks from the store; see the module docstring."""

    def __init__(self, store: Store, settings: WebhookSettings) -> None:
        self.store = store
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.settings.secret is not None

    def check_url(self, url: str) -> str:
        return check_callback_url(url, self.settings.allowed_hosts)

    async def start(self) -> None:
        """Create deliveries that a stopped node left out, then start delivering."""
        if not self.enabled:
            return
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout_s,
            follow_redirects=False,  # a redirect could lead to a host that is not allowed
            trust_env=False,
            limits=httpx.Limits(max_connections=self.settings.max_concurrent),
        )
        created = await self.store.enqueue_callbacks(None, time.time())
        if created:
            logger.info("queued %d webhook deliveries of tasks that finished while no node delivered them", created)
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="tasky-webhooks")

    async def stop(self) -> None:
        """Stop delivering; deliveries in flight stay pending in the store for the next start."""
        jobs = [job for job in (self._loop_task, *self._in_flight.values()) if job is not None]
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        self._loop_task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def tasks_finished(self, task_ids: Collection[str]) -> None:
        """Create the deliveries of tasks that just reached a terminal state."""
        if not self.enabled or not task_ids:
            return
        if await self.store.enqueue_callbacks(task_ids, time.time()):
            self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._start_due()
                delay = await self._next_delay()
            except Exception:  # a store error must not end delivery for good
                logger.exception("reading due webhook deliveries failed; retrying in %.1f s", self.settings.backoff_s)
                delay = self.settings.backoff_s
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _start_due(self) -> None:
        free = self.settings.max_concurrent - len(self._in_flight)
        if free <= 0:
            return
        due = await self.store.due_callbacks(time.time(), limit=free, exclude=list(self._in_flight))
        for delivery in due:
            key = (delivery.task_id, delivery.task_attempt)
            job = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._in_flight[key] = job
            job.add_done_callback(lambda _job, key=key: self._delivery_done(key))

    def _delivery_done(self, key: tuple[str, int]) -> None:
        self._in_flight.pop(key, None)
        self._wake.set()

    async def _next_delay(self) -> float | None:
        next_at = await self.store.next_callback_at(exclude=list(self._in_flight))
        if next_at is None:
            return None
        return max(0.0, next_at - time.time())

    async def _deliver(self, delivery: CallbackDelivery) -> None:
        task = await self.store.get_task(delivery.task_id)
        if task is None:
            return  # pruned meanwhile, and its deliveries with it
        body = orjson.dumps(_payload(task, delivery))
        number = delivery.attempts + 1
        at = datetime.now(timezone.utc)
        started = time.monotonic()
        status, error = await self._post(delivery, body)
        attempt = CallbackAttempt(number, at, round(time.monotonic() - started, 6), status, error)
        state, next_at = self._next_state(number, error)
        await self.store.record_callback_attempt(delivery, attempt, state=state, next_at=next_at)
        _log_attempt(delivery, attempt, state, next_at)

    async def _post(self, delivery: CallbackDelivery, body: bytes) -> tuple[int | None, str | None]:
        assert self._client is not None, "the dispatcher is started before it delivers"
        secret = self.settings.secret.get_secret_value().encode() if self.settings.secret else b""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"tasky/{__version__}",
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
            DELIVERY_HEADER: f"{delivery.task_id}.{delivery.task_attempt}",
        }
        try:
            # The deadline covers the whole exchange, also a receiver that
            # trickles its headers byte by byte; the response body is not read.
            async with asyncio.timeout(self.settings.timeout_s):
                request = self._client.build_request("POST", delivery.url, content=body, headers=headers)
                response = await self._client.send(request, stream=True)
                await response.aclose()
        except TimeoutError:
            return None, f"no response within {self.settings.timeout_s:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"the receiver answered HTTP {response.status_code}"

    def _next_state(self, number: int, error: str | None) -> tuple[str, float | None]:
        if error is None:
            return "delivered", None
        if number >= self.settings.max_attempts:
            return "failed", None
        return "pending", time.time() + backoff_s(self.settings, number)


def _payload(task: Task, delivery: CallbackDelivery) -> dict[str, Any]:
    from tasky.api.serialize import task_json  # the API package imports the app, which imports this module

    return {"event": "task.finished", "delivery": f"{delivery.task_id}.{delivery.task_attempt}", "task": task_json(task)}


def _log_attempt(delivery: CallbackDelivery, attempt: CallbackAttempt, state: str, next_at: float | None) -> None:
    extra = {"task_id": delivery.task_id, "callback_state": state, "callback_attempt": attempt.number}
    if state == "delivered":
        logger.info("webhook of task %s delivered (attempt %d, HTTP %s)", delivery.task_id, attempt.number, attempt.status_code, extra=extra)
    elif state == "pending":
        wait_s = (next_at or time.time()) - time.time()
        logger.warning(
            "webhook of task %s failed (attempt %d): %s; retrying in %.1f s",
            delivery.task_id, attempt.number, attempt.error, wait_s, extra=extra,
        )
    else:
        logger.warning("webhook of task %s given up after %d attempts: %s", delivery.task_id, attempt.number, attempt.error, extra=extra)


def _invalid_url(message: str) -> BadRequest:
    return BadRequest(f"{message}; pass an http(s) URL on an allowed host", code="invalid_callback_url")
