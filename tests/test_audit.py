"""The audit log over HTTP: a sequence of actions and the entries it leaves."""

from __future__ import annotations

from typing import Any

import httpx

from auth_helpers import bearer, create_token
from conftest import Server, wait_until


def audit(server: Server, admin: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.api}/audit", params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return response.json()


def test_audit_records_sequence(server: Server) -> None:
    admin = create_token(server.store, "root", "admin")
    operator = create_token(server.store, "ops", "operate")
    reader = create_token(server.store, "viewer", "read")
    with httpx.Client(base_url=server.api, timeout=10.0) as client:
        task = client.post("/workers/sleeper", json={"seconds": 300}, headers=bearer(operator)).json()
        wait_until(
            lambda: client.get(f"/tasks/{task['id']}", headers=bearer(reader)).json()["state"] == "running",
            what="the task to run",
        )
        assert client.post(f"/tasks/{task['id']}/actions", json={"action": "pause"}, headers=bearer(operator)).status_code == 200
        assert client.post(f"/tasks/{task['id']}/resume", headers=bearer(operator)).status_code == 200
        assert client.post(f"/tasks/{task['id']}/cancel", headers=bearer(operator)).status_code == 200
        assert client.post(f"/tasks/{task['id']}/cancel", headers=bearer(operator)).status_code == 409
        assert client.post("/workers/add", json={"a": 1}, headers=bearer(reader)).status_code == 403
        assert client.post("/workers/add", json={"a": 1}).status_code == 401
        assert client.post("/workers/sleeper/actions", json={"action": "disable", "reason": "maintenance"}, headers=bearer(admin)).status_code == 200
        created = client.post("/tokens", json={"name": "ci", "role": "read"}, headers=bearer(admin)).json()
        assert client.delete("/tokens/ci", headers=bearer(admin)).status_code == 200

    expected = [
        ("token.revoke", "root", None, None, "ok", None),
        ("token.create", "root", None, None, "ok", None),
        ("worker.disable", "root", None, "sleeper", "ok", None),
        ("task.create", "viewer", None, "add", "denied", "role_insufficient"),
        ("task.cancel", "ops", task["id"], None, "failed", "illegal_state"),
        ("task.cancel", "ops", task["id"], None, "ok", None),
        ("task.resume", "ops", task["id"], None, "ok", None),
        ("task.pause", "ops", task["id"], None, "ok", None),
        ("task.create", "ops", task["id"], "sleeper", "ok", None),
    ]

    def entries() -> list[dict[str, Any]]:
        return [entry for entry in audit(server, admin)["entries"] if entry["client"] != "cli"]

    wait_until(lambda: len(entries()) == len(expected), what="all audit entries")
    found = [(e["action"], e["token"], e["task_id"], e["worker"], e["outcome"], e["error_code"]) for e in entries()]
    assert found == expected
    latest = entries()
    assert latest[1]["detail"] == {"name": "ci", "role": "read"}
    assert latest[0]["detail"] == {"name": "ci"}
    assert latest[-1]["status"] == 201
    assert latest[-1]["detail"] is None  # a task config is never copied into the log
    assert all(entry["client"] == "127.0.0.1" for entry in latest)
    assert all(entry["at"].endswith("Z") for entry in latest)

    text = httpx.get(f"{server.api}/audit", params={"limit": 1000}, headers=bearer(admin)).text
    for secret in (admin, operator, reader, created["token"]):
        assert secret not in text


def test_audit_pages_and_filters(server: Server) -> None:
    admin = create_token(server.store, "root", "admin")
    with httpx.Client(base_url=server.api, headers=bearer(admin), timeout=10.0) as client:
        ids = [client.post("/workers/add", json={"a": n}).json()["id"] for n in range(5)]
    wait_until(lambda: len(audit(server, admin, action="task.create")["entries"]) == 5, what="five entries")

    first = audit(server, admin, action="task.create", limit=2)
    second = audit(server, admin, action="task.create", limit=2, cursor=first["next_cursor"])
    third = audit(server, admin, action="task.create", limit=2, cursor=second["next_cursor"])
    pages = [entry["task_id"] for page in (first, second, third) for entry in page["entries"]]
    assert pages == ids[::-1]
    assert third["next_cursor"] is None

    only = audit(server, admin, task_id=ids[2])["entries"]
    assert [entry["task_id"] for entry in only] == [ids[2]]
    assert audit(server, admin, token="nobody")["entries"] == []
    assert len(audit(server, admin, action="task.create", worker="add")["entries"]) == 5
    bad = httpx.get(f"{server.api}/audit", params={"cursor": "!!"}, headers=bearer(admin))
    assert bad.status_code == 400


def test_audit_needs_admin(server: Server) -> None:
    for role in ("read", "operate"):
        token = create_token(server.store, f"{role}-user", role)
        assert httpx.get(f"{server.api}/audit", headers=bearer(token)).status_code == 403


def test_audit_records_cli_token_changes(server: Server) -> None:
    admin = create_token(server.store, "root", "admin")
    entries = audit(server, admin)["entries"]
    assert [(entry["action"], entry["client"], entry["detail"]) for entry in entries] == [
        ("token.create", "cli", {"name": "root", "role": "admin"})
    ]


def test_anonymous_local_requests_audited(api: httpx.Client, server: Server) -> None:
    task = api.post("/workers/add", json={"a": 2}).json()
    wait_until(lambda: api.get("/audit").json()["entries"], what="the entry")
    entry = api.get("/audit").json()["entries"][0]
    assert entry["action"] == "task.create"
    assert entry["token"] is None
    assert entry["task_id"] == task["id"]
