"""The REST API over HTTP against a real server process."""

from __future__ import annotations

import httpx

from conftest import Server, create, wait_state

EXAMPLES = {"copyfile", "ifconfig", "sleeper", "sysctl"}


def test_list_workers_has_schemas(api: httpx.Client) -> None:
    response = api.get("/workers/")
    assert response.status_code == 200
    workers = {item["name"]: item for item in response.json()["workers"]}
    assert EXAMPLES <= set(workers)
    assert workers["sleeper"]["config_schema"]["properties"]["seconds"]["type"] == "number"
    assert workers["sleeper"]["limits"]["max_tasks"] == 10
    assert workers["copyfile"]["config_schema"]["required"] == ["source", "destination"]


def test_list_workers_without_slash(api: httpx.Client) -> None:
    assert api.get("/workers").status_code == 200


def test_worker_info(api: httpx.Client) -> None:
    body = api.get("/workers/add/info").json()
    assert body["name"] == "add"
    assert body["description"] == "Add two integers."
    assert body["config_schema"]["required"] == ["a"]
    assert body["status"] == "enabled"


def test_worker_info_unknown(api: httpx.Client) -> None:
    response = api.get("/workers/nosuch/info")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "worker_not_found"


def test_create_returns_location(api: httpx.Client) -> None:
    response = api.post("/workers/add", json={"a": 2, "b": 3})
    assert response.status_code == 201
    body = response.json()
    assert body["worker"] == "add"
    assert body["state"] == "running"  # a slot was free, so the creating transaction claimed it
    assert response.headers["location"] == f"/tasky/v1/tasks/{body['id']}"
    done = wait_state(api, body["id"], "completed")
    assert done["result"] == 5


def test_create_with_trailing_slash_no_redirect(api: httpx.Client) -> None:
    response = api.post("/workers/add/", json={"a": 1})
    assert response.status_code == 201


def test_create_empty_body_uses_defaults(api: httpx.Client) -> None:
    response = api.post("/workers/ifconfig", content=b"")
    assert response.status_code == 201


def test_create_unknown_worker_suggests(api: httpx.Client) -> None:
    response = api.post("/workers/copyfiel", json={})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "worker_not_found"
    assert "copyfile" in error["message"]


def test_create_malformed_json(api: httpx.Client) -> None:
    response = api.post("/workers/add", content=b'{"a": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_create_invalid_config_names_field(api: httpx.Client) -> None:
    response = api.post("/workers/sleeper", json={"seconds": -1})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert error["detail"][0]["field"] == "seconds"
    assert "seconds" in error["message"]


def test_create_unknown_field_rejected(api: httpx.Client) -> None:
    response = api.post("/workers/sleeper", json={"second": 5})
    assert response.status_code == 422
    fields = [item["field"] for item in response.json()["error"]["detail"]]
    assert "second" in fields


def test_create_non_object_body(api: httpx.Client) -> None:
    response = api.post("/workers/sleeper", json=[1, 2])
    assert response.status_code == 422


def test_create_wrong_content_type(api: httpx.Client) -> None:
    response = api.post("/workers/add", content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


def test_create_oversized_body(api: httpx.Client) -> None:
    big = b'{"a": 1, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = api.post("/workers/add", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_copyfile_disabled_without_roots(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    with server.client() as api:
        info = api.get("/workers/copyfile/info").json()
        assert info["status"] == "disabled"
        assert "--copy-root" in info["status_reason"]
        response = api.post("/workers/copyfile", json={"source": "a", "destination": "b"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "worker_disabled"


def test_task_detail_status_result(api: httpx.Client) -> None:
    task = create(api, "add", {"a": 40, "b": 2})
    wait_state(api, task["id"], "completed")
    detail = api.get(f"/tasks/{task['id']}").json()
    assert detail["config"] == {"a": 40, "b": 2}
    status = api.get(f"/tasks/{task['id']}/status").json()
    assert status["state"] == "completed"
    assert status["started_at"] is not None
    assert status["run_time_s"] >= 0
    result = api.get(f"/tasks/{task['id']}/result").json()
    assert result["result"] == 42
    assert result["error"] is None


def test_result_of_failed_task_has_traceback(api: httpx.Client) -> None:
    task = create(api, "fail", {"message": "disk on fire"})
    wait_state(api, task["id"], "failed")
    error = api.get(f"/tasks/{task['id']}/result").json()["error"]
    assert error["type"] == "ValueError"
    assert error["message"] == "disk on fire"
    assert "Traceback" in error["traceback"]


def test_result_not_json_fails_task(api: httpx.Client) -> None:
    task = create(api, "not-json")
    done = wait_state(api, task["id"], "failed")
    assert done["error"]["type"] == "ResultNotJSON"


def test_result_before_finish_is_409(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 30})
    response = api.get(f"/tasks/{task['id']}/result")
    assert response.status_code == 409
    assert response.json()["error"]["detail"]["state"] in ("queued", "running")
    api.post(f"/tasks/{task['id']}/cancel")


def test_unknown_task_is_404(api: httpx.Client) -> None:
    for path in ("/tasks/nope", "/tasks/nope/status", "/tasks/nope/result"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "task_not_found"
    response = api.post("/tasks/nope/cancel")
    assert response.status_code == 404


def test_cancel_completed_is_409(api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1})
    wait_state(api, task["id"], "completed")
    response = api.post(f"/tasks/{task['id']}/cancel")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "illegal_state"
    assert error["detail"]["state"] == "completed"


def test_actions_route(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 30})
    wait_state(api, task["id"], "running")
    paused = api.post(f"/tasks/{task['id']}/actions", json={"action": "pause"})
    assert paused.status_code == 200
    assert paused.json()["state"] == "paused"
    resumed = api.post(f"/tasks/{task['id']}/actions", json={"action": "resume"})
    assert resumed.json()["state"] == "running"
    canceled = api.post(f"/tasks/{task['id']}/actions", json={"action": "cancel"})
    assert canceled.status_code == 200
    assert canceled.json()["state"] == "canceled"


def test_actions_illegal_and_invalid(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 30})
    wait_state(api, task["id"], "running")
    resume = api.post(f"/tasks/{task['id']}/resume")
    assert resume.status_code == 409
    assert resume.json()["error"]["detail"]["state"] == "running"
    bogus = api.post(f"/tasks/{task['id']}/actions", json={"action": "explode"})
    assert bogus.status_code == 422
    assert "cancel" in bogus.json()["error"]["message"]
    api.post(f"/tasks/{task['id']}/cancel")
    pause = api.post(f"/tasks/{task['id']}/pause")
    assert pause.status_code == 409
    assert pause.json()["error"]["detail"]["state"] == "canceled"


def test_list_filters_and_cursor(api: httpx.Client) -> None:
    ids = [create(api, "add", {"a": n})["id"] for n in range(5)]
    create(api, "fail")
    for task_id in ids:
        wait_state(api, task_id, "completed")
    first = api.get("/tasks", params={"worker": "add", "limit": 3}).json()
    assert [task["id"] for task in first["tasks"]] == ids[::-1][:3]
    second = api.get("/tasks", params={"worker": "add", "limit": 3, "cursor": first["next_cursor"]}).json()
    assert [task["id"] for task in second["tasks"]] == ids[::-1][3:]
    assert second["next_cursor"] is None
    completed = api.get("/tasks", params={"state": "completed,failed"}).json()["tasks"]
    assert {task["state"] for task in completed} <= {"completed", "failed"}


def test_list_bad_parameters(api: httpx.Client) -> None:
    assert api.get("/tasks", params={"state": "sleeping"}).status_code == 400
    assert api.get("/tasks", params={"limit": 0}).status_code == 400
    assert api.get("/tasks", params={"cursor": "!!"}).status_code == 400
    assert api.get("/tasks", params={"created_after": "yesterday"}).status_code == 400


def test_unknown_route_and_method(api: httpx.Client) -> None:
    missing = api.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "route_not_found"
    wrong = api.delete("/workers")
    assert wrong.status_code == 405


def test_openapi_lists_worker_schemas(server: Server) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert "SleeperConfig" in document["components"]["schemas"]
    assert "/tasky/v1/workers/sleeper" in document["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_health_routes(server: Server) -> None:
    assert httpx.get(f"{server.url}/livez").json()["status"] == "ok"
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"


def test_result_wait_answers_when_finished(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 1})
    response = api.get(f"/tasks/{task['id']}/result", params={"wait": 10})
    assert response.status_code == 200
    assert response.json()["state"] == "completed"
    assert response.json()["result"] == {"slept_s": 1.0}


def test_result_wait_times_out_with_409(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 30})
    response = api.get(f"/tasks/{task['id']}/result", params={"wait": 0.3})
    assert response.status_code == 409
    assert response.json()["error"]["detail"]["state"] in ("queued", "running")
    assert api.get(f"/tasks/{task['id']}/result", params={"wait": 3600}).status_code == 400
    api.post(f"/tasks/{task['id']}/cancel")


def test_bad_query_value_names_the_rule(api: httpx.Client) -> None:
    response = api.get("/tasks", params={"limit": 0})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert "query.limit" in error["message"]
    assert "greater than or equal to 1" in error["message"]
    assert "/docs" in error["message"]
