"""Fuzzing against a real server: schemathesis on the OpenAPI document, and random task action orders.

Both are bounded (example counts and steps) so the module
stays within about two minutes. The schemathesis server serves only the
example workers, with copyfile confined to a temporary root, because the
test workers of `jobs` run shell scripts and write files at given paths.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule, run_state_machine_as_test

from auth_helpers import create_token
from conftest import Server
from tasky.task import TaskState, is_legal

FUZZ_EXAMPLES = 15
FUZZ_TIMEOUT_S = 150  # about 20 s is usual; the run is stopped and fails past this
STATE_MACHINE_RUNS = 30
STATE_MACHINE_STEPS = 20


def test_schemathesis_finds_no_server_error(start_server: Callable[..., Server], tmp_path: Path) -> None:
    root = tmp_path / "fuzz-root"
    root.mkdir()
    server = start_server("--examples", "--copy-root", str(root))
    token = create_token(server.store, "fuzz-admin-5c1e", "admin")
    report = tmp_path / "schemathesis.txt"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(FUZZ_EXAMPLES),
        "--request-timeout", "10",
        "--workers", "1",
        "--seed", "20261204",
        # Event streams stay open until their task ends, and a result read
        # with ?wait= may wait up to 60 s for it, so both would run into the
        # request timeout here; their own tests cover them.
        "--exclude-path-regex", "/events$|/result$",
    ]  # fmt: skip
    with report.open("w") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=FUZZ_TIMEOUT_S, env=dict(os.environ, NO_COLOR="1"))
    text = report.read_text()
    assert done.returncode == 0, text[-6000:]
    assert "Stateful" in text
    assert "Traceback" not in server.log()
    assert "unexpected error" not in server.log()
    # Nothing was written outside the copy root, whatever paths were generated.
    outside = sorted(path.name for path in tmp_path.iterdir())
    assert set(outside) <= {"fuzz-root", "tasky.db", "tasky.db-wal", "tasky.db-shm", "schemathesis.txt", f"server-{server.port}.log"}


@pytest.fixture(scope="module")
def machine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("machine")
    server = Server(folder, ["--workers", "jobs", "--examples", "--shutdown-grace", "1"]).start()
    yield server
    server.kill()


CONFIGS: dict[str, Any] = {
    "sleeper": st.fixed_dictionaries({"seconds": st.sampled_from([0.2, 1.0, 30.0])}),
    "async-nap": st.fixed_dictionaries({"seconds": st.sampled_from([0.1, 0.5, 30.0])}),
    "add": st.fixed_dictionaries({"a": st.integers(-5, 5)}),
    "fail": st.just({}),
    "slowpoke": st.fixed_dictionaries({"seconds": st.sampled_from([0.2, 3.0])}),
}
ACTIONS = ["cancel", "pause", "resume", "run", "restart"]


class TaskActionMachine(RuleBasedStateMachine):
    """Creates tasks and sends actions in random orders; every response must have a planned status."""

    server: Server
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.client = httpx.Client(base_url=self.server.api, timeout=15.0)

    @rule(target=tasks, worker=st.sampled_from(sorted(CONFIGS)), data=st.data(), hold=st.booleans())
    def create(self, worker: str, data: st.DataObject, hold: bool) -> str:
        config = data.draw(CONFIGS[worker])
        response = self.client.post(f"/workers/{worker}", params={"hold": hold}, json=config)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    @rule(task_id=tasks, action=st.sampled_from(ACTIONS), shortcut=st.booleans())
    def act(self, task_id: str, action: str, shortcut: bool) -> None:
        if shortcut:
            response = self.client.post(f"/tasks/{task_id}/{action}")
        else:
            response = self.client.post(f"/tasks/{task_id}/actions", json={"action": action})
        assert response.status_code in (200, 201, 202, 409), response.text
        if response.status_code == 409:
            assert response.json()["error"]["detail"]["state"] in {state.value for state in TaskState}

    @rule(task_id=tasks, seconds=st.sampled_from([0.1, 2.0]))
    def edit(self, task_id: str, seconds: float) -> None:
        task = self.client.get(f"/tasks/{task_id}").json()
        response = self.client.put(f"/tasks/{task_id}", json={"seconds": seconds} if "seconds" in task["config"] else task["config"])
        assert response.status_code in (200, 409, 412, 422), response.text

    @rule(task_id=tasks, view=st.sampled_from(["", "/status", "/result", "/attempts"]))
    def read(self, task_id: str, view: str) -> None:
        response = self.client.get(f"/tasks/{task_id}{view}")
        assert response.status_code in (200, 409), response.text

    def teardown(self) -> None:
        self.client.close()


def test_random_action_orders(machine_server: Server) -> None:
    TaskActionMachine.server = machine_server
    bounds = settings(
        max_examples=STATE_MACHINE_RUNS,
        stateful_step_count=STATE_MACHINE_STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run_state_machine_as_test(TaskActionMachine, settings=bounds)

    with sqlite3.connect(f"file:{machine_server.store}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT task_id, data FROM events WHERE kind = 'state' ORDER BY id").fetchall()
    histories: dict[str, list[str]] = {}
    for task_id, data in rows:
        histories.setdefault(task_id, []).append(httpx.Response(200, content=data).json()["state"])
    assert len(histories) >= STATE_MACHINE_RUNS
    for task_id, states in histories.items():
        assert states[0] in ("queued", "held"), (task_id, states)
        for before, after in zip(states, states[1:]):
            assert is_legal(TaskState(before), TaskState(after)), (task_id, states)
    assert "Traceback" not in machine_server.log()


def test_empty_idempotency_key_no_500(api: httpx.Client) -> None:
    # schemathesis found a 500 here: an empty key skipped the body hash but not the key row.
    first = api.post("/workers/add", json={"a": 1}, headers={"Idempotency-Key": ""})
    assert first.status_code < 500, first.text
    again = api.post("/workers/add", json={"a": 1}, headers={"Idempotency-Key": ""})
    assert again.status_code == first.status_code
