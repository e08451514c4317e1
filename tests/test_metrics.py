"""`/metrics` parsed with prometheus-client's own parser, and the health routes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server, create, wait_state
from tasky import Tasky
from tasky.workers import example_workers


def scrape(server: Server) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = [(sample.name, sample.labels, sample.value) for sample in family.samples]
    return families


def value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    found = [number for sample_name, sample_labels, number in samples if sample_name == name and labels.items() <= sample_labels.items()]
    assert len(found) == 1, f"{name} {labels}: {found}"
    return found[0]


def test_scrape_has_per_worker_series(server: Server, api: httpx.Client) -> None:
    for _ in range(2):
        wait_state(api, create(api, "add", {"a": 1})["id"], "completed")
    wait_state(api, create(api, "fail", {})["id"], "failed")
    running = create(api, "sleeper", {"seconds": 30})
    wait_state(api, running["id"], "running")
    api.get("/tasks/no-such-task")

    families = scrape(server)
    tasks = families["tasky_tasks"]
    assert value(tasks, "tasky_tasks", worker="add", state="completed") == 2
    assert value(tasks, "tasky_tasks", worker="sleeper", state="running") == 1
    assert value(tasks, "tasky_tasks", worker="copyfile", state="queued") == 0
    finished = families["tasky_tasks_finished"]
    assert value(finished, "tasky_tasks_finished_total", worker="add", outcome="completed") == 2
    assert value(finished, "tasky_tasks_finished_total", worker="fail", outcome="failed") == 1
    run = families["tasky_task_run_seconds"]
    assert value(run, "tasky_task_run_seconds_count", worker="add") == 2
    assert value(run, "tasky_task_run_seconds_bucket", worker="add", le="+Inf") == 2
    assert value(families["tasky_task_wait_seconds"], "tasky_task_wait_seconds_count", worker="fail") == 1
    requests = families["tasky_http_requests"]
    # Task creation is counted under its route template; the worker is in the task series.
    assert value(requests, "tasky_http_requests_total", method="POST", route="/tasky/v1/workers/{name}", status="201") == 4
    assert value(requests, "tasky_http_requests_total", method="GET", route="/tasky/v1/tasks/{task_id}", status="404") == 1
    assert value(families["tasky_node_info"], "tasky_node_info") == 1


def test_unknown_paths_share_one_series(server: Server) -> None:
    for path in ("/nope/1", "/nope/2", "/tasky/v1/nope"):
        assert httpx.get(f"{server.url}{path}").status_code == 404
    requests = scrape(server)["tasky_http_requests"]
    assert value(requests, "tasky_http_requests_total", method="GET", route="(unmatched)", status="404") == 3
    assert not [labels for _, labels, _ in requests if "nope" in labels.get("route", "")]


def test_finished_counts_survive_restart(start_server: Callable[..., Server]) -> None:
    server = start_server("--workers", "jobs")
    with server.client() as api:
        wait_state(api, create(api, "add", {"a": 1})["id"], "completed")
    server.stop()
    restarted = start_server("--workers", "jobs")
    finished = scrape(restarted)["tasky_tasks_finished"]
    assert value(finished, "tasky_tasks_finished_total", worker="add", outcome="completed") == 1


def test_health_routes(server: Server) -> None:
    live = httpx.get(f"{server.url}/livez")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_json_log_line_per_state_change(server: Server, api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1})
    wait_state(api, task["id"], "completed")
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert records, "the server log is JSON lines when it is not a terminal"
    states = [record for record in records if record.get("task_id") == task["id"] and "state" in record]
    assert [record["state"] for record in states] == ["queued", "running", "completed"]
    for record in states:
        assert record["worker"] == "add"
        assert record["node"]
        assert record["level"] == "INFO"
        assert record["time"]


def test_readyz_follows_node_life_cycle(tmp_path: Path) -> None:
    """An embedding app serves the node through its own ASGI server, so the check runs in-process."""

    async def scenario() -> list[int]:
        node = Tasky(example_workers([]), store=str(tmp_path / "embedded.db"))
        transport = httpx.ASGITransport(app=node.asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
            statuses = [(await client.get("/readyz")).status_code]
            await node.start()
            statuses.append((await client.get("/readyz")).status_code)
            node.begin_shutdown()  # what a stop signal does first
            statuses.append((await client.get("/readyz")).status_code)
            statuses.append((await client.get("/livez")).status_code)
            await node.stop()
        return statuses

    assert asyncio.run(scenario()) == [503, 200, 503, 200]
