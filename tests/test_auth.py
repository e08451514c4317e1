"""Tokens and roles over HTTP: every route of the OpenAPI document against the route table."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from auth_helpers import bearer, create_token, tasky_command
from conftest import Server, wait_until
from tasky.api import create_api
from tasky.api.security import warn_unlisted_routes
from tasky.app import Tasky
from tasky.auth.policy import RouteTable
from tasky.auth.roles import Role
from tasky.workers import example_workers

PUBLIC_ROUTES = {("GET", "/livez"), ("GET", "/readyz")}
ROLES = [Role.READ, Role.OPERATE, Role.ADMIN]


@pytest.fixture
def tokens(server: Server) -> dict[Role, str]:
    return {role: create_token(server.store, f"{role.value}-token", role.value) for role in ROLES}


def openapi_operations(server: Server, token: str) -> list[tuple[str, str]]:
    document = httpx.get(f"{server.url}/openapi.json", headers=bearer(token)).json()
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "delete", "patch")
    ]


def concrete_path(template: str, task_id: str) -> str:
    values = {"task_id": task_id, "name": "add"}
    if template.startswith("/tasky/v1/tokens/"):
        values["name"] = "no-such-token"
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda match: values.get(match.group(1), "x"), template)


def test_route_table_covers_openapi(server: Server, tokens: dict[Role, str]) -> None:
    table = RouteTable()
    operations = openapi_operations(server, tokens[Role.ADMIN])
    assert len(operations) > 10
    missing = [f"{method} {path}" for method, path in operations if not table.has_entry(method, path)]
    assert missing == [], "add these routes to tasky.auth.policy.ROUTES"
    public = {(method, path) for method, path in operations if table.match(method, path).policy.role is None}
    assert public == PUBLIC_ROUTES


def test_route_table_covers_undocumented_routes(tmp_path: Path) -> None:
    tasky = Tasky(example_workers(), store=str(tmp_path / "tasky.db"))
    app = create_api(tasky)
    assert warn_unlisted_routes(app, app.state.auth) == []


def test_each_role_on_each_route(server: Server, tokens: dict[Role, str]) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        task = client.post(
            "/tasky/v1/workers/sleeper", json={"seconds": 600}, headers=bearer(tokens[Role.OPERATE])
        ).json()
        table = RouteTable()
        checked = 0
        for method, template in openapi_operations(server, tokens[Role.ADMIN]):
            needed = table.match(method, template).policy.role
            path = concrete_path(template, task["id"])
            anonymous = client.request(method, path, json={"unexpected": 1})
            if needed is None:
                assert anonymous.status_code not in (401, 403), (method, path)
                continue
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            assert anonymous.headers["www-authenticate"].startswith('Bearer realm="tasky"')
            for role in ROLES:
                response = request_head(client, method, path, headers=bearer(tokens[role]))
                if role.allows(needed):
                    assert response.status_code not in (401, 403), (role, method, path, response.text)
                else:
                    assert response.status_code == 403, (role, method, path, response.text)
                    assert response.json()["error"]["code"] == "role_insufficient"
                    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
                checked += 1
        assert checked >= 30


def request_head(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    """Send a request and read its answer; an event stream stays open, so only its head is read."""
    with client.stream(method, path, json={"unexpected": 1}, headers=headers) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response
        response.read()
        return response


def test_read_token_cannot_create_task(server: Server, tokens: dict[Role, str]) -> None:
    response = httpx.post(f"{server.api}/workers/add", json={"a": 1}, headers=bearer(tokens[Role.READ]))
    assert response.status_code == 403
    assert "operate" in response.json()["error"]["message"]
    assert httpx.get(f"{server.api}/tasks", headers=bearer(tokens[Role.READ])).json()["tasks"] == []


def test_unauthenticated_request_gets_401(server: Server, tokens: dict[Role, str]) -> None:
    for path in ("/tasky/v1/workers", "/tasky/v1/tasks", "/openapi.json", "/docs", "/no/such/route", "/metrics"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="tasky"'
        assert response.json()["error"]["code"] == "token_required"
    for path in ("/livez", "/readyz"):
        assert httpx.get(f"{server.url}{path}").status_code == 200, path


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Basic dXNlcjpwYXNz", "auth_scheme_unsupported"),
        ("Token abc", "auth_scheme_unsupported"),
        ("Bearer", "token_invalid"),
        ("Bearer tasky_not-a-real-token", "token_invalid"),
    ],
)
def test_bad_credentials_get_401(server: Server, tokens: dict[Role, str], authorization: str, code: str) -> None:
    response = httpx.get(f"{server.api}/workers", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["www-authenticate"].startswith('Bearer realm="tasky", error=')


def test_scheme_is_case_insensitive(server: Server, tokens: dict[Role, str]) -> None:
    response = httpx.get(f"{server.api}/workers", headers={"Authorization": f"bearer {tokens[Role.READ]}"})
    assert response.status_code == 200


def test_revoked_token_rejected(server: Server, tokens: dict[Role, str]) -> None:
    headers = bearer(tokens[Role.READ])
    assert httpx.get(f"{server.api}/workers", headers=headers).status_code == 200
    done = tasky_command("token", "revoke", "read-token", "--store", str(server.store))
    assert done.returncode == 0, done.stderr
    # The server rereads its tokens every second, so two seconds is a generous bound.
    wait_until(lambda: httpx.get(f"{server.api}/workers", headers=headers).status_code == 401, 2.5, 0.05, "revoke")
    assert httpx.get(f"{server.api}/workers", headers=bearer(tokens[Role.ADMIN])).status_code == 200


def test_no_token_serves_loopback(api: httpx.Client) -> None:
    assert api.get("/workers").status_code == 200
    assert api.get("/tokens").json() == {"tokens": []}


def test_revoking_last_token_closes_loopback_again(server: Server) -> None:
    token = create_token(server.store, "only", "admin")
    wait_until(lambda: httpx.get(f"{server.api}/workers").status_code == 401, 2.5, 0.05, "the token to apply")
    revoked = httpx.delete(f"{server.api}/tokens/only", headers=bearer(token))
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert httpx.get(f"{server.api}/workers").status_code == 200


def test_token_routes(server: Server, tokens: dict[Role, str]) -> None:
    admin = bearer(tokens[Role.ADMIN])
    created = httpx.post(f"{server.api}/tokens", json={"name": "ci", "role": "operate"}, headers=admin)
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "ci"
    assert body["role"] == "operate"
    assert body["token"].startswith("tasky_")
    assert created.headers["location"] == "/tasky/v1/tokens/ci"

    listed = httpx.get(f"{server.api}/tokens", headers=admin).json()["tokens"]
    assert {item["name"] for item in listed} == {"read-token", "operate-token", "admin-token", "ci"}
    assert all("token" not in item for item in listed)
    assert body["token"] not in httpx.get(f"{server.api}/tokens/ci", headers=admin).text

    ci = bearer(body["token"])
    assert httpx.post(f"{server.api}/workers/add", json={"a": 1}, headers=ci).status_code == 201
    duplicate = httpx.post(f"{server.api}/tokens", json={"name": "ci", "role": "read"}, headers=admin)
    assert duplicate.status_code == 409
    invalid = httpx.post(f"{server.api}/tokens", json={"name": "a b", "role": "root"}, headers=admin)
    assert invalid.status_code == 422
    assert {item["field"] for item in invalid.json()["error"]["detail"]} == {"name", "role"}

    assert httpx.delete(f"{server.api}/tokens/ci", headers=admin).status_code == 200
    assert httpx.get(f"{server.api}/workers", headers=ci).status_code == 401
    assert httpx.delete(f"{server.api}/tokens/ci", headers=admin).status_code == 404


def test_token_cli(tmp_path: Path) -> None:
    store = tmp_path / "tasky.db"
    created = tasky_command("token", "create", "--store", str(store), "--name", "deploy", "--role", "ADMIN")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert re.fullmatch(r"tasky_[A-Za-z0-9_-]{43}", secret)
    assert "cannot be shown again" in created.stderr

    listed = tasky_command("token", "list", "--store", str(store), "--json")
    assert '"name":"deploy"' in listed.stdout
    assert '"role":"admin"' in listed.stdout
    assert secret not in listed.stdout

    with sqlite3.connect(store) as conn:
        stored = conn.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert len(stored) == 1
    assert secret not in stored[0][0]
    assert secret.encode() not in store.read_bytes()

    assert tasky_command("token", "revoke", "deploy", "--store", str(store)).returncode == 0
    again = tasky_command("token", "revoke", "deploy", "--store", str(store))
    assert again.returncode == 1
    assert "no active token named 'deploy'" in again.stderr
    reused = tasky_command("token", "create", "--store", str(store), "--name", "deploy", "--role", "read")
    assert reused.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "deploy", "--role", "root"], "root"),
        (["--name", "no spaces", "--role", "read"], "invalid token name"),
    ],
)
def test_token_cli_rejects_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    done = tasky_command("token", "create", "--store", str(tmp_path / "tasky.db"), *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_insecure_warns_on_each_request(start_server: Callable[..., Server]) -> None:
    server = start_server("--insecure")
    assert "WITHOUT authentication (--insecure)" in server.log()
    for _ in range(3):
        assert httpx.get(f"{server.api}/workers").status_code == 200
    wait_until(lambda: server.log().count("served GET /tasky/v1/workers") == 3, what="three warnings")
    assert "without authentication (--insecure)" in server.log()


def test_secrets_never_logged(server: Server, tokens: dict[Role, str]) -> None:
    admin = bearer(tokens[Role.ADMIN])
    created = httpx.post(f"{server.api}/tokens", json={"name": "logged", "role": "read"}, headers=admin).json()
    httpx.get(f"{server.api}/workers", headers={"Authorization": "Bearer tasky_wrong-secret"})
    httpx.get(f"{server.api}/workers", headers=bearer(created["token"]))
    server.stop()
    log = server.log()
    for secret in [*tokens.values(), created["token"], "tasky_wrong-secret"]:
        assert secret not in log
