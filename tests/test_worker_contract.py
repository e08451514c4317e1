"""The worker contract, the context and embedding tasky in a user's program."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

import tasky
from conftest import free_port, wait_until
from tasky import ConfigurationError, TaskCanceled, TaskContext, Worker, WorkerRegistry


class RecordingSink:
    def __init__(self) -> None:
        self.progress_calls: list[tuple[float | None, float | None, str | None]] = []
        self.lines: list[str] = []

    def progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        self.progress_calls.append((done, total, message))

    def log(self, task_id: str, line: str) -> None:
        self.lines.append(line)


def make_ctx() -> tuple[TaskContext, RecordingSink]:
    sink = RecordingSink()
    return TaskContext("task-1", "test", 1, sink), sink


def test_function_worker_builds_config() -> None:
    @tasky.worker(max_tasks=3)
    def resize_image(ctx: TaskContext, path: str, width: int = 640) -> str:
        """Resize one image."""
        return f"{path}:{width}"

    assert resize_image.name == "resize-image"
    assert resize_image.description == "Resize one image."
    assert resize_image.max_tasks == 3
    schema = resize_image.config.model_json_schema()
    assert schema["required"] == ["path"]
    assert "ctx" not in schema["properties"]
    config = resize_image.validate_config({"path": "a.png"})
    ctx, _ = make_ctx()
    assert resize_image.perform(config, ctx) == "a.png:640"


def test_invalid_config_names_fields() -> None:
    @tasky.worker
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(tasky.InvalidConfig) as raised:
        add.validate_config({"a": "x"})
    fields = [item["field"] for item in raised.value.detail]
    assert fields == ["a", "b"]


def test_registry_rejects_duplicates() -> None:
    registry = WorkerRegistry()

    @tasky.worker(name="twin")
    def first() -> None: ...

    @tasky.worker(name="twin")
    def second() -> None: ...

    registry.register(first)
    with pytest.raises(ConfigurationError, match="two workers are named 'twin'"):
        registry.register(second)


@pytest.mark.parametrize("name", ["", "Upper", "has space", "-leading", "x" * 64, "dots.in.name"])
def test_registry_rejects_bad_names(name: str) -> None:
    class Bad(Worker):
        def perform(self, config: BaseModel, ctx: TaskContext) -> None: ...

    item = Bad()
    item.name = name
    with pytest.raises(ConfigurationError, match="invalid worker name"):
        WorkerRegistry([item])


def test_registry_rejects_class_and_missing_perform() -> None:
    class NoPerform(Worker):
        name = "noperform"

    with pytest.raises(ConfigurationError, match="instance"):
        WorkerRegistry([NoPerform])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="perform"):
        WorkerRegistry([NoPerform()])


def test_sleep_wakes_on_cancel() -> None:
    ctx, _ = make_ctx()
    threading.Timer(0.1, ctx.request_cancel).start()
    started = time.monotonic()
    with pytest.raises(TaskCanceled):
        ctx.sleep(30)
    assert time.monotonic() - started < 5


def test_sleep_clock_stops_while_paused() -> None:
    ctx, _ = make_ctx()
    ctx.request_pause()
    threading.Timer(0.4, ctx.request_resume).start()
    started = time.monotonic()
    ctx.sleep(0.2)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.55
    assert 0.15 <= ctx.active_time_s() < elapsed


def test_checkpoint_blocks_while_paused() -> None:
    ctx, _ = make_ctx()
    ctx.request_pause()
    passed = threading.Event()

    def work() -> None:
        ctx.checkpoint()
        passed.set()

    threading.Thread(target=work, daemon=True).start()
    assert not passed.wait(0.3)
    ctx.request_resume()
    assert passed.wait(5)


def test_async_sleep_cancel() -> None:
    async def scenario() -> None:
        ctx = TaskContext("t", "w", 1, RecordingSink(), asyncio.get_running_loop())
        asyncio.get_running_loop().call_later(0.1, ctx.request_cancel)
        with pytest.raises(TaskCanceled):
            await ctx.asleep(30)

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_progress_is_rate_limited_and_flushed() -> None:
    ctx, sink = make_ctx()
    for done in range(1, 101):
        ctx.progress(done, 200)
    assert len(sink.progress_calls) == 1
    ctx.flush_progress()
    assert sink.progress_calls[-1] == (100, 200, None)
    ctx.progress(200, 200, "done")
    assert sink.progress_calls[-1] == (200, 200, "done")


def test_user_main_embeds_tasky(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(f"""
        import tasky

        @tasky.worker(name="greet")
        def greet(who: str) -> str:
            return "hello " + who

        app = tasky.Tasky([greet], store="own.db")
        app.serve("127.0.0.1:{port}")
    """))
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/tasky/v1"
        wait_until(lambda: _ready(f"http://127.0.0.1:{port}"), what="embedded server")
        task = httpx.post(f"{base}/workers/greet", json={"who": "world"}).json()
        result = wait_until(lambda: httpx.get(f"{base}/tasks/{task['id']}").json()["result"], what="greet result")
        assert result == "hello world"
        assert (tmp_path / "own.db").exists()
    finally:
        process.terminate()
        assert process.wait(15) == 0


def test_mount_into_fastapi(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "web.py"
    script.write_text(textwrap.dedent(f"""
        import uvicorn
        from fastapi import FastAPI
        import tasky

        @tasky.worker(name="double")
        def double(n: int) -> int:
            return 2 * n

        node = tasky.Tasky([double], store="mounted.db")
        web = FastAPI(lifespan=node.lifespan)

        @web.get("/own")
        def own() -> dict:
            return {{"mine": True}}

        web.mount("/jobs", node.asgi())
        uvicorn.run(web, host="127.0.0.1", port={port}, log_level="warning")
    """))
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _ready(f"http://127.0.0.1:{port}/jobs"), what="mounted server")
        assert httpx.get(f"http://127.0.0.1:{port}/own").json() == {"mine": True}
        base = f"http://127.0.0.1:{port}/jobs/tasky/v1"
        task = httpx.post(f"{base}/workers/double", json={"n": 21}).json()
        result = wait_until(lambda: httpx.get(f"{base}/tasks/{task['id']}").json()["result"], what="double result")
        assert result == 42
    finally:
        process.terminate()
        process.wait(15)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
