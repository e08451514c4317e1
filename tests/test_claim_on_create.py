"""Claims written with other writes: a task created while its worker has a free slot is claimed in the
creating transaction, and the slot a finished task frees goes to the next queued task in the finishing one."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from conftest import create, wait_state
from jobs import add
from tasky import Tasky
from tasky.store.base import Change, NewTask, TaskFilter
from tasky.store.sqlite import SQLiteStore
from tasky.task import TaskState


def test_free_slot_answers_running(api: httpx.Client) -> None:
    response = api.post("/workers/add", json={"a": 1, "b": 1})
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "running"
    assert body["node"]
    assert body["started_at"] is not None
    done = wait_state(api, body["id"], "completed")
    assert done["result"] == 2


def test_full_slots_answer_queued(api: httpx.Client) -> None:
    blockers = [create(api, "stubborn", {"seconds": 1.5}) for _ in range(2)]
    assert [task["state"] for task in blockers] == ["running", "running"]
    waiting = create(api, "stubborn", {"seconds": 0.1})
    assert waiting["state"] == "queued"
    assert waiting["started_at"] is None
    assert wait_state(api, waiting["id"], "completed")["node"] == blockers[0]["node"]


def test_older_due_task_goes_first(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, str]]:
        store = SQLiteStore(tmp_path / "fifo.db")
        await store.open()
        try:
            older, _ = await store.create_task(NewTask(id="older", worker="w", config={}))
            newer, _ = await store.create_task(NewTask(id="newer", worker="w", config={}, claim_node="n1"))
            claimed = await store.claim("w", 1, "n1")
            return [(older.id, older.state.value), (newer.id, newer.state.value), (claimed[0].id, claimed[0].state.value)]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [("older", "queued"), ("newer", "queued"), ("older", "running")]


def test_backoff_retry_allows_claim(tmp_path: Path) -> None:
    async def scenario() -> str:
        store = SQLiteStore(tmp_path / "backoff.db")
        await store.open()
        try:
            await store.create_task(NewTask(id="retrying", worker="w", config={}))
            await store._write(
                lambda conn: conn.execute("UPDATE tasks SET run_after = ? WHERE id = 'retrying'", (time.time() + 60,))
            )
            task, _ = await store.create_task(NewTask(id="fresh", worker="w", config={}, claim_node="n1"))
            return task.state.value
        finally:
            await store.close()

    assert asyncio.run(scenario()) == "running"


def test_claimed_task_survives_cancelled_caller(tmp_path: Path) -> None:
    async def scenario() -> tuple[str, object]:
        node = Tasky([add], store=str(tmp_path / "node.db"), node="n1")
        await node.start()
        try:
            gate = threading.Event()
            blocker = asyncio.ensure_future(node.store._write(lambda conn: gate.wait(10)))  # keeps the writer busy
            caller = asyncio.ensure_future(node.create_task("add", {"a": 20, "b": 22}))
            await asyncio.sleep(0.05)
            caller.cancel()  # as when the request handler is cancelled mid-write
            gate.set()
            await blocker
            await node.store._write(lambda conn: None)  # queued after the creation, so it is committed by now
            page = await node.store.list_tasks(TaskFilter(), limit=10, before_seq=None)
            assert len(page.tasks) == 1, page.tasks
            task = await node.wait_finished(page.tasks[0].id, 10)
            return task.state.value, task.result
        finally:
            await node.stop()

    assert asyncio.run(scenario()) == ("completed", 42)



def test_finish_hands_slot_to_oldest(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, str]]:
        store = SQLiteStore(tmp_path / "hand-over.db")
        await store.open()
        try:
            await store.create_task(NewTask(id="first", worker="w", config={}, claim_node="n1"))
            for name in ("second", "third"):
                await store.create_task(NewTask(id=name, worker="w", config={}))
            running = [TaskState.RUNNING]
            done = Change(result=1)
            stored, successors = await store.finish_and_claim(
                "first", running, TaskState.COMPLETED, attempt=1, change=done, claim=("w", 1, "n1")
            )
            second_done, none_claimed = await store.finish_and_claim(
                "second", running, TaskState.COMPLETED, attempt=1, change=done, claim=None
            )
            third = await store.get_task("third")
            assert stored is not None
            assert second_done is not None
            assert third is not None
            return [
                (stored.id, stored.state.value),
                *[(task.id, f"{task.state.value} on {task.node}") for task in successors],
                (second_done.id, second_done.state.value),
                ("claimed without a claim", str(len(none_claimed))),
                (third.id, third.state.value),
            ]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [
        ("first", "completed"),
        ("second", "running on n1"),
        ("second", "completed"),
        ("claimed without a claim", "0"),
        ("third", "queued"),
    ]
