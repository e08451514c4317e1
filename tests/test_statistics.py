"""Statistics from known task outcomes, across a restart and after retention pruned the tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from conftest import Server, create, wait_state, wait_until

OUTCOMES = [False] * 7 + [True] * 3  # 7 completed, 3 failed
RUN_S = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.1, 0.2, 0.3]


def run_known_outcomes(api: httpx.Client) -> list[str]:
    ids = []
    for fail, seconds in zip(OUTCOMES, RUN_S):
        ids.append(create(api, "outcome", {"fail": fail, "seconds": seconds})["id"])
    for task_id in ids:
        wait_state(api, task_id, {"completed", "failed"}, timeout_s=20)
    return ids


def stable_figures(body: dict[str, Any]) -> dict[str, Any]:
    """The figures that must not change across a restart (the time-window counts may)."""
    return {key: body[key] for key in ("counts", "total", "failure_rate", "run_time_s", "wait_time_s", "pruned_tasks")}


def test_failure_rate_survives_restart_and_pruning(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server("--workers", "jobs")
    with server.client() as api:
        ids = run_known_outcomes(api)
        before = api.get("/workers/outcome/statistics").json()
    assert before["counts"]["completed"] == 7
    assert before["counts"]["failed"] == 3
    assert before["total"] == 10
    assert before["failure_rate"] == 0.3
    assert before["finished_last_minute"] == 10
    assert before["finished_last_hour"] == 10
    assert before["percentiles"] == "exact"
    run = before["run_time_s"]
    assert run["count"] == 10
    assert min(RUN_S) <= run["p50"] <= run["p95"] <= run["max"]
    assert run["max"] == pytest.approx(0.35, abs=0.2)
    assert run["mean"] == pytest.approx(sum(RUN_S) / 10, abs=0.1)
    assert before["wait_time_s"]["count"] == 10
    assert before["wait_time_s"]["p95"] is not None
    assert server.stop() == 0

    restarted = start_server("--workers", "jobs")
    with restarted.client() as api:
        after_restart = api.get("/workers/outcome/statistics").json()
        short_route = httpx.get(f"{restarted.api}/outcome/statistics").json()
    assert stable_figures(after_restart) == stable_figures(before)
    assert stable_figures(short_route) == stable_figures(before)
    assert restarted.stop() == 0

    config = tmp_path / "retention.toml"
    config.write_text("[retention]\nmax_age_s = 0.01\ninterval_s = 0.1\nbatch_size = 3\n")
    pruning = start_server("--workers", "jobs", "--config", str(config))
    with pruning.client() as api:
        wait_until(lambda: all(api.get(f"/tasks/{task_id}").status_code == 410 for task_id in ids), 20, 0.1, "tasks to be pruned")
        after_pruning = api.get("/workers/outcome/statistics").json()
        gone = api.get(f"/tasks/{ids[0]}")
    assert gone.json()["error"]["code"] == "task_pruned"
    assert after_pruning["counts"] == before["counts"]
    assert after_pruning["failure_rate"] == 0.3
    assert after_pruning["pruned_tasks"] == 10
    assert after_pruning["percentiles"] == "estimated"
    for figure in ("run_time_s", "wait_time_s"):
        assert after_pruning[figure]["count"] == before[figure]["count"]
        assert after_pruning[figure]["mean"] == pytest.approx(before[figure]["mean"], rel=1e-6)
        assert after_pruning[figure]["max"] == pytest.approx(before[figure]["max"], rel=1e-6)
    # Estimated from log buckets about 9 % wide.
    assert after_pruning["run_time_s"]["p50"] == pytest.approx(before["run_time_s"]["p50"], rel=0.25)
    assert after_pruning["run_time_s"]["p95"] == pytest.approx(before["run_time_s"]["p95"], rel=0.25)


def test_statistics_of_all_workers(api: httpx.Client) -> None:
    ok = create(api, "add", {"a": 1})
    bad = create(api, "fail", {})
    wait_state(api, ok["id"], "completed")
    wait_state(api, bad["id"], "failed")
    body = api.get("/statistics").json()
    assert body["workers"]["add"]["counts"]["completed"] == 1
    assert body["workers"]["fail"]["failure_rate"] == 1.0
    assert body["workers"]["sleeper"]["failure_rate"] is None
    assert body["workers"]["sleeper"]["run_time_s"] == {"count": 0, "mean": None, "max": None, "p50": None, "p95": None}
    assert body["total"]["counts"]["completed"] == 1
    assert body["total"]["counts"]["failed"] == 1
    assert body["total"]["failure_rate"] == 0.5


def test_statistics_since_filters_finished(api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1})
    wait_state(api, task["id"], "completed")
    future = api.get("/workers/add/statistics", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future["counts"]["completed"] == 0
    assert future["since"] == "2999-01-01T00:00:00Z"
    past = api.get("/workers/add/statistics", params={"since": "2000-01-01T00:00:00"}).json()
    assert past["counts"]["completed"] == 1
    bad = api.get("/workers/add/statistics", params={"since": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_parameter"


def test_statistics_of_unknown_worker(api: httpx.Client) -> None:
    for path in ("/workers/nosuch/statistics", "/nosuch/statistics"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "worker_not_found"


def test_task_statistics(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 30})
    wait_state(api, task["id"], "running")
    assert api.post(f"/tasks/{task['id']}/pause").status_code == 200
    wait_until(lambda: api.get(f"/tasks/{task['id']}/statistics").json()["paused_time_s"] > 0.2, what="paused time to grow")
    assert api.post(f"/tasks/{task['id']}/cancel").status_code == 200
    body = api.get(f"/tasks/{task['id']}/statistics").json()
    assert body["state"] == "canceled"
    assert body["attempts"] == 1
    assert body["paused_time_s"] > 0.2
    assert body["wait_time_s"] >= 0
    assert body["run_time_s"] >= 0
    # Figures are rounded to microseconds; the wait is 0 when the creation claimed the task.
    assert body["total_time_s"] >= body["run_time_s"] + body["paused_time_s"] - 2e-6
    assert api.get("/tasks/no-such-task/statistics").status_code == 404
