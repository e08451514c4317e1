"""Following the store's events live: the commit notifier and event followers.

The store calls `EventHub.notify_threadsafe` after each commit (from its
writer thread). The hub wakes every follower on the event loop, and each
follower reads the events after the id it last saw from the store, so a
follower never misses or repeats an event, whatever it missed while it was
busy. Nothing here ever blocks the writer: a notice only schedules a
wake-up, and at most one is pending at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import TypeVar

from tasky.store.base import Event, Store
from tasky.task import TaskState

logger = logging.getLogger(__name__)

T = TypeVar("T")

READ_BATCH = 500  # events read from the store per query while catching up
TERMINAL = frozenset(state.value for state in TaskState if state.is_terminal)


class EventHub:
    """Wakes followers on the event loop whenever the store has committed new rows."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self._pending = False
        self.closed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.closed = False

    def notify_threadsafe(self) -> None:
        """Schedule a wake-up; safe to call from any thread, and cheap when one is pending."""
        loop = self._loop
        if loop is None or self._pending:
            return
        self._pending = True
        try:
            loop.call_soon_threadsafe(self._wake)
        except RuntimeError:
            self._pending = False  # the loop closed at shutdown, so no follower is left to wake

    def _wake(self) -> None:
        # Clear the flag before waking, so a commit after this point schedules
        # another wake-up instead of being lost.
        self._pending = False
        event, self._event = self._event, asyncio.Event()
        event.set()

    def close(self) -> None:
        """End every follower; called when the node starts shutting down."""
        self.closed = True
        self._event.set()

    async def changes(self, timeout_s: float | None = None) -> AsyncIterator[None]:
        """Yield at once, then after each commit (or `timeout_s` without one), until the hub closes.

        The wake-up event is taken before each yield, so a commit that lands
        while the caller reads the store still wakes the next wait.
        """
        while not self.closed:
            event = self._event
            yield
            if self.closed:
                return
            try:
                await asyncio.wait_for(event.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass


async def follow_task(store: Store, hub: EventHub, task_id: str, after_id: int) -> AsyncIterator[Event]:
    """Yield the task's events after `after_id` as they are stored; end after a terminal state.

    Also ends when the task is deleted or the hub closes.
    """
    cursor = after_id
    async for _ in hub.changes():
        while True:
            batch = await store.events(task_id, after_id=cursor, limit=READ_BATCH)
            for event in batch:
                cursor = event.id
                yield event
                if is_terminal(event):
                    return
            if len(batch) < READ_BATCH:
                break
        if batch:
            continue
        if await _finished_without_news(store, task_id, cursor):
            return


async def _finished_without_news(store: Store, task_id: str, cursor: int) -> bool:
    """True when the task is gone, or ended with every event up to its end already sent."""
    task = await store.get_task(task_id)
    if task is None:
        return True
    if not task.state.is_terminal:
        return False
    # The terminal event may have been committed after the last read.
    return not await store.events(task_id, after_id=cursor, limit=1)


async def follow_all(
    store: Store, hub: EventHub, after_id: int, *, kinds: Collection[str] = (), workers: Collection[str] = ()
) -> AsyncIterator[Event]:
    """Yield every task's events after `after_id` as they are stored, until the hub closes."""

    async def read(cursor: int) -> list[Event]:
        return await store.events_since(cursor, kinds=kinds, workers=workers, limit=READ_BATCH)

    async for batch in follow_batches(store, hub, after_id, read, lambda event: event.id):
        for event in batch:
            yield event


async def follow_batches(
    store: Store, hub: EventHub, after_id: int, read: Callable[[int], Awaitable[list[T]]], event_id: Callable[[T], int]
) -> AsyncIterator[list[T]]:
    """Yield the non-empty batches that `read(cursor)` returns after each commit, until the hub closes.

    `read` returns at most `READ_BATCH` items for events after the cursor,
    oldest first, and `event_id` gives the event id of an item.
    """
    cursor = after_id
    async for _ in hub.changes():
        while True:
            # Every event up to `newest` is visible to the read below, so a
            # short batch contains all matching ones, and the cursor may skip
            # the filtered-out rest instead of scanning it again next time.
            newest = await store.last_event_id()
            batch = await read(cursor)
            if batch:
                cursor = event_id(batch[-1])
                yield batch
            if len(batch) < READ_BATCH:
                cursor = max(cursor, newest)
                break


def is_terminal(event: Event) -> bool:
    return event.kind == "state" and event.data.get("state") in TERMINAL
