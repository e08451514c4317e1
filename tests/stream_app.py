"""A tasky node with an event stream route, for the tests of stream tickets and the stream cap.

Usage: python stream_app.py HOST:PORT STORE MAX_STREAMS

When the app already serves GET /tasky/v1/tasks/{task_id}/events, that
route is used as it is; otherwise a minimal one is added that sends the
task's state every 0.2 s until the task ends.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator

import orjson
from starlette.responses import StreamingResponse

import jobs
from tasky.app import Tasky
from tasky.security import SecurityOptions
from tasky.worker import Worker
from tasky.workers import example_workers

EVENTS = "/tasky/v1/tasks/{task_id}/events"


def events_endpoint(tasky: Tasky):  # type: ignore[no-untyped-def]
    async def events(task_id: str) -> StreamingResponse:
        await tasky.get_task(task_id)

        async def states() -> AsyncIterator[bytes]:
            while True:
                task = await tasky.get_task(task_id)
                yield b"event: state\ndata: " + orjson.dumps({"state": task.state.value}) + b"\n\n"
                if task.state.is_terminal:
                    return
                await asyncio.sleep(0.2)

        return StreamingResponse(states(), media_type="text/event-stream")

    return events


def main() -> None:
    addr, store, max_streams = sys.argv[1], sys.argv[2], int(sys.argv[3])
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    workers = [*example_workers(), *(value for value in vars(jobs).values() if isinstance(value, Worker))]
    tasky = Tasky(workers, store=store, security=SecurityOptions(max_streams=max_streams))
    app = tasky.asgi()
    if not any(getattr(route, "path", None) == EVENTS for route in app.routes):
        app.add_api_route(EVENTS, events_endpoint(tasky), methods=["GET"])
    tasky.serve(addr, access_log=True)


if __name__ == "__main__":
    main()
