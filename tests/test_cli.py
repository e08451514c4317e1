"""The `tasky` client commands, run as subprocesses against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import TESTS_DIR, Server, free_port, wait_state, wait_until
from scripted_server import ScriptedServer, event, json_reply, sse_reply
from tasky.cli.config_values import InvalidValue, parse_value
from tasky.cli.exit_codes import ExitCode

SRC_DIR = TESTS_DIR.parent / "src"
CLIENT_COMMANDS = [
    ["workers"],
    ["info", "sleeper"],
    ["submit", "sleeper", "-c", "seconds=1"],
    ["submit", "sleeper", "--wait"],
    ["tasks"],
    ["status", "some-id"],
    ["result", "some-id"],
    ["logs", "some-id"],
    ["cancel", "some-id"],
    ["pause", "some-id"],
    ["resume", "some-id"],
    ["restart", "some-id"],
    ["stats"],
]


def run_tasky(*args: str, url: str | None = None, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TASKY_")}
    environment.update(PYTHONPATH=os.pathsep.join([str(SRC_DIR), str(TESTS_DIR)]), COLUMNS="200", **env)
    if url is not None:
        environment["TASKY_URL"] = url
    command = [sys.executable, "-m", "tasky", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, input=stdin, timeout=90)


def run_json(*args: str, url: str) -> Any:
    done = run_tasky(*args, "--json", url=url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def submit_id(server: Server, worker: str, *values: str) -> str:
    sets = [part for value in values for part in ("-c", value)]
    return run_json("submit", worker, *sets, url=server.url)["id"]


def test_workers_table_and_json(server: Server) -> None:
    table = run_tasky("workers", url=server.url)
    body = run_json("workers", url=server.url)

    assert table.returncode == 0
    assert "NAME" in table.stdout
    assert "sleeper" in table.stdout
    assert {"sleeper", "add", "copyfile"} <= {item["name"] for item in body["workers"]}


def test_info_table_and_json(server: Server) -> None:
    table = run_tasky("info", "sleeper", url=server.url)
    body = run_json("info", "sleeper", url=server.url)

    assert table.returncode == 0
    assert "seconds" in table.stdout
    assert "tasky submit sleeper -c seconds=5" in table.stdout
    assert body["config_schema"]["properties"]["seconds"]["type"] == "number"


def test_submit_table_and_json(server: Server) -> None:
    table = run_tasky("submit", "add", "-c", "a=1", url=server.url)
    body = run_json("submit", "add", "-c", "a=2", "-c", "b=3", url=server.url)

    assert table.returncode == 0
    assert table.stdout.startswith("created task ")
    assert body["config"] == {"a": 2, "b": 3}
    assert body["worker"] == "add"


def test_submit_wait_shows_bar_and_result(server: Server) -> None:
    done = run_tasky("submit", "sleeper", "-c", "seconds=1.5", "--wait", url=server.url)

    assert done.returncode == ExitCode.OK, done.stderr
    assert "100%" in done.stdout
    assert "completed in" in done.stdout
    assert '"slept_s": 1.5' in done.stdout


def test_submit_wait_json_prints_final_task_only(server: Server) -> None:
    done = run_tasky("submit", "add", "-c", "a=20", "-c", "b=22", "--wait", "--json", url=server.url)

    body = json.loads(done.stdout)
    assert done.returncode == ExitCode.OK
    assert body["state"] == "completed"
    assert body["result"] == 42


def test_submit_wait_failed_task_exits_1(server: Server) -> None:
    done = run_tasky("submit", "fail", "-c", "message=disk full", "--wait", url=server.url)

    assert done.returncode == ExitCode.TASK_FAILED
    assert "failed: ValueError: disk full" in done.stderr
    assert "tasky result" in done.stderr


def test_submit_wait_canceled_elsewhere_exits_3(server: Server) -> None:
    environment = dict(os.environ, PYTHONPATH=str(SRC_DIR), TASKY_URL=server.url)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "tasky", "submit", "sleeper", "-c", "seconds=30", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        with server.client() as api:
            running = wait_until(lambda: api.get("/tasks", params={"state": "running"}).json()["tasks"], what="a running sleeper")
            canceled = run_tasky("cancel", running[0]["id"], url=server.url)
            _, stderr = waiting.communicate(timeout=30)
    finally:
        waiting.kill()

    assert canceled.returncode == ExitCode.OK
    assert waiting.returncode == ExitCode.TASK_CANCELED
    assert f"task {running[0]['id']} was canceled" in stderr


def test_submit_wait_timeout_exits_1(server: Server) -> None:
    done = run_tasky("submit", "sleeper", "-c", "seconds=30", "--wait", "--timeout", "0.5", url=server.url)

    assert done.returncode == ExitCode.TASK_FAILED
    assert "did not finish within 0.5 s" in done.stderr
    assert "tasky status" in done.stderr


def test_config_value_types_follow_schema(server: Server) -> None:
    checks = '[{"key": "net.ipv4.ip_forward", "expected": 0}]'
    sysctl = run_json("submit", "sysctl", "-c", f"checks={checks}", "-c", "fail_on_mismatch=yes", url=server.url)
    sleeper = run_json("submit", "sleeper", "-c", "seconds=0.25", url=server.url)

    assert sysctl["config"]["checks"][0]["key"] == "net.ipv4.ip_forward"
    assert sysctl["config"]["fail_on_mismatch"] is True
    assert sleeper["config"]["seconds"] == 0.25


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a=x"], "invalid value for field 'a' of worker add: expected an integer, got 'x'"),
        (["a=1", "b=1.5"], "invalid value for field 'b' of worker add: expected an integer"),
        (["a=1", "c=2"], "worker add has no field 'c'; its fields are: a, b"),
        (["a"], "-c expects key=value, got 'a'"),
        (["a=1", "a=2"], "-c a is given twice"),
    ],
)
def test_bad_config_value_is_usage_error(server: Server, values: list[str], expected: str) -> None:
    sets = [part for value in values for part in ("-c", value)]

    done = run_tasky("submit", "add", *sets, url=server.url)

    assert done.returncode == ExitCode.USAGE
    assert expected in done.stderr
    assert done.stdout == ""


def test_bad_boolean_is_usage_error(server: Server) -> None:
    done = run_tasky("submit", "sysctl", "-c", 'checks=[{"key": "x"}]', "-c", "fail_on_mismatch=maybe", url=server.url)

    assert done.returncode == ExitCode.USAGE
    assert "field 'fail_on_mismatch'" in done.stderr
    assert "expected true or false" in done.stderr


def test_config_rejected_by_server_is_usage_error(server: Server) -> None:
    done = run_tasky("submit", "sleeper", "-c", "seconds=-1", url=server.url)

    assert done.returncode == ExitCode.USAGE
    assert "invalid config for worker sleeper: seconds:" in done.stderr


def test_config_file_and_stdin(server: Server, tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text('{"a": 1, "b": 2}')

    from_file = run_json("submit", "add", "--config", str(config_file), "-c", "b=5", url=server.url)
    from_stdin = run_tasky("submit", "add", "--config", "-", "--json", url=server.url, stdin='{"a": 7}')
    broken = run_tasky("submit", "add", "--config", "-", url=server.url, stdin="{not json")
    missing = run_tasky("submit", "add", "--config", str(tmp_path / "missing.json"), url=server.url)

    assert from_file["config"] == {"a": 1, "b": 5}
    assert json.loads(from_stdin.stdout)["config"] == {"a": 7, "b": 0}
    assert broken.returncode == ExitCode.USAGE
    assert "not valid JSON" in broken.stderr
    assert missing.returncode == ExitCode.USAGE
    assert "cannot read config file" in missing.stderr


def test_parse_value_unions_lists_and_enums() -> None:
    union = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
    listed = {"type": "array", "items": {"type": "integer"}}
    choice = {"enum": ["eq", "ne"]}
    ref_root = {"$defs": {"Op": {"enum": ["lt", "gt"]}}}

    assert parse_value({}, union, "5") == 5
    assert parse_value({}, union, "abc") == "abc"
    assert parse_value({}, union, "null") is None
    assert parse_value({}, listed, "1,2,3") == [1, 2, 3]
    assert parse_value({}, listed, "[4, 5]") == [4, 5]
    assert parse_value({}, choice, "ne") == "ne"
    assert parse_value(ref_root, {"$ref": "#/$defs/Op"}, "gt") == "gt"
    with pytest.raises(InvalidValue, match="expected one of eq, ne"):
        parse_value({}, choice, "le")
    with pytest.raises(InvalidValue, match="expected an integer"):
        parse_value({}, listed, "1,x")
    with pytest.raises(InvalidValue, match="finite number"):
        parse_value({}, {"type": "number"}, "nan")


def test_tasks_table_filters_and_json(server: Server) -> None:
    added = submit_id(server, "add", "a=1")
    failed = submit_id(server, "fail")
    with server.client() as api:
        wait_state(api, added, "completed")
        wait_state(api, failed, "failed")

    table = run_tasky("tasks", url=server.url)
    only_failed = run_json("tasks", "--state", "failed", url=server.url)
    only_add = run_json("tasks", "--worker", "add", "--limit", "5", url=server.url)
    one = run_json("tasks", "--limit", "1", url=server.url)
    piped = subprocess.run(
        f"{sys.executable} -m tasky tasks --json | {sys.executable} -c 'import json,sys; json.load(sys.stdin)'",
        shell=True,
        env=dict(os.environ, PYTHONPATH=str(SRC_DIR), TASKY_URL=server.url),
        timeout=60,
    )

    assert table.returncode == 0
    assert added in table.stdout
    assert "STATE" in table.stdout
    assert [task["id"] for task in only_failed["tasks"]] == [failed]
    assert [task["id"] for task in only_add["tasks"]] == [added]
    assert len(one["tasks"]) == 1
    assert one["next_cursor"]
    assert piped.returncode == 0


def test_status_table_and_json(server: Server) -> None:
    task_id = submit_id(server, "add", "a=1")

    table = run_tasky("status", task_id, url=server.url)
    body = run_json("status", task_id, url=server.url)

    assert table.returncode == 0
    assert task_id in table.stdout
    assert "run time" in table.stdout
    assert body["id"] == task_id
    assert body["worker"] == "add"


def test_result_exit_codes(server: Server) -> None:
    completed = submit_id(server, "add", "a=3")
    failed = submit_id(server, "fail")
    canceled = submit_id(server, "sleeper", "seconds=30")
    running = submit_id(server, "sleeper", "seconds=30")
    with server.client() as api:
        wait_state(api, completed, "completed")
        wait_state(api, failed, "failed")
        wait_state(api, running, "running")
    assert run_tasky("cancel", canceled, url=server.url).returncode == 0

    ok = run_tasky("result", completed, url=server.url)
    ok_json = run_json("result", completed, url=server.url)
    broke = run_tasky("result", failed, url=server.url)
    stopped = run_tasky("result", canceled, url=server.url)
    unfinished = run_tasky("result", running, url=server.url)
    run_tasky("cancel", running, url=server.url)

    assert ok.returncode == ExitCode.OK
    assert "3" in ok.stdout
    assert ok_json["result"] == 3
    assert broke.returncode == ExitCode.TASK_FAILED
    assert "Traceback" in broke.stderr
    assert stopped.returncode == ExitCode.TASK_CANCELED
    assert unfinished.returncode == ExitCode.API_ERROR
    assert "has no result yet" in unfinished.stderr


def test_actions_table_and_json(server: Server) -> None:
    task_id = submit_id(server, "sleeper", "seconds=30")
    with server.client() as api:
        wait_state(api, task_id, "running")

    paused = run_tasky("pause", task_id, url=server.url)
    resumed = run_json("resume", task_id, url=server.url)
    canceled = run_tasky("cancel", task_id, url=server.url)
    again = run_tasky("cancel", task_id, url=server.url)

    assert paused.returncode == 0
    assert f"task {task_id} is paused" in paused.stdout
    assert resumed["state"] == "running"
    assert canceled.returncode == 0
    assert task_id in canceled.stdout
    assert again.returncode == ExitCode.API_ERROR
    assert "cannot cancel" in again.stderr


def test_unknown_task_and_worker_are_api_errors(server: Server) -> None:
    task = run_tasky("status", "no-such-task", url=server.url)
    worker = run_tasky("submit", "copyfiel", "-c", "x=1", url=server.url)

    assert task.returncode == ExitCode.API_ERROR
    assert "tasky tasks" in task.stderr
    assert worker.returncode == ExitCode.API_ERROR
    assert "no worker named 'copyfiel'" in worker.stderr
    assert "tasky workers" in worker.stderr


@pytest.mark.parametrize("args", CLIENT_COMMANDS, ids=lambda args: " ".join(args))
def test_unreachable_server_exits_4_with_one_line(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    done = run_tasky(*args, url=url)
    as_json = run_tasky(*args, "--json", url=url)

    assert done.returncode == ExitCode.SERVER_UNREACHABLE
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert f"cannot reach the tasky server at {url} (connection refused)" in done.stderr
    assert "tasky serve" in done.stderr
    assert as_json.returncode == ExitCode.SERVER_UNREACHABLE
    assert as_json.stdout == ""


def test_rejected_token_exits_5_quietly() -> None:
    body = {"error": {"code": "unauthorized", "message": "invalid API token", "detail": None}}
    scripted = ScriptedServer().on("/tasky/v1/workers", json_reply(401, body)).start()
    try:
        by_option = run_tasky("workers", "--token", "opt-s3cret", url=scripted.url)
        by_env = run_tasky("workers", url=scripted.url, TASKY_TOKEN="env-s3cret")
    finally:
        scripted.stop()

    assert by_option.returncode == ExitCode.API_ERROR
    assert "invalid API token (HTTP 401)" in by_option.stderr
    assert "TASKY_TOKEN" in by_option.stderr
    assert [request.headers["authorization"] for request in scripted.requests] == ["Bearer opt-s3cret", "Bearer env-s3cret"]
    for done in (by_option, by_env):
        assert "s3cret" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", ["workers", "info", "submit", "tasks", "status", "result", "logs", "cancel", "pause", "resume", "restart", "stats"])
def test_help_shows_examples_and_environment(command: str) -> None:
    done = run_tasky(command, "--help", TASKY_TOKEN="help-s3cret")

    assert done.returncode == 0
    assert "Examples:" in done.stdout
    assert f"tasky {command}" in done.stdout
    assert "TASKY_URL" in done.stdout
    assert "TASKY_TOKEN" in done.stdout
    assert "Exit codes:" in done.stdout
    assert "help-s3cret" not in done.stdout


def test_missing_argument_is_usage_error() -> None:
    done = run_tasky("status")

    assert done.returncode == ExitCode.USAGE


def scripted_task(state: str, **fields: Any) -> dict[str, Any]:
    return {"id": "t1", "worker": "sleeper", "state": state, "created_at": "2026-01-02T03:04:05Z", **fields}


def test_wait_and_follow_read_event_stream() -> None:
    at = "2026-01-02T03:04:06Z"
    stream = sse_reply(
        event(1, "state", task_id="t1", at=at, state="running"),
        event(2, "progress", task_id="t1", at=at, done=1, total=2, message="halfway"),
        event(3, "log", task_id="t1", at=at, line="first log line"),
        event(4, "progress", task_id="t1", at=at, done=2, total=2, message="all done"),
        event(5, "state", task_id="t1", at=at, state="completed"),
    )
    scripted = (
        ScriptedServer()
        .on("/tasky/v1/workers/sleeper", json_reply(201, scripted_task("queued")))
        .on("/tasky/v1/tasks/t1/events", stream)
        .on("/tasky/v1/tasks/t1", json_reply(200, scripted_task("completed", result={"slept_s": 2}, run_time_s=2.0)))
        .start()
    )
    try:
        done = run_tasky("submit", "sleeper", "--wait", "--follow", url=scripted.url)
        lines = run_tasky("submit", "sleeper", "--follow", "--json", url=scripted.url)
    finally:
        scripted.stop()

    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert done.returncode == ExitCode.OK, done.stderr
    assert "first log line" in done.stdout
    assert "100%" in done.stdout
    assert "all done" in done.stdout
    assert '"slept_s": 2' in done.stdout
    assert lines.returncode == ExitCode.OK
    assert [record.get("kind") for record in records] == ["state", "progress", "log", "progress", "state", None]
    assert records[2]["line"] == "first log line"
    assert records[-1]["state"] == "completed"


def test_submit_follow_streams_log_lines(server: Server, copy_root: Path) -> None:
    (copy_root / "in.txt").write_text("hello")

    done = run_tasky("submit", "copyfile", "-c", "source=in.txt", "-c", "destination=out.txt", "--follow", url=server.url)

    assert done.returncode == ExitCode.OK, done.stderr
    assert "copied 5 bytes" in done.stdout


def test_logs_table_and_json(server: Server, copy_root: Path) -> None:
    (copy_root / "in.txt").write_text("hello")
    task_id = submit_id(server, "copyfile", "source=in.txt", "destination=out.txt")
    with server.client() as api:
        wait_state(api, task_id, "completed")

    table = run_tasky("logs", task_id, url=server.url)
    body = run_json("logs", task_id, url=server.url)

    assert table.returncode == 0
    assert "copied 5 bytes" in table.stdout
    assert any("copied 5 bytes" in line["line"] for line in body["lines"])


def test_restart_and_stats(server: Server) -> None:
    task_id = submit_id(server, "add", "a=1")
    with server.client() as api:
        wait_state(api, task_id, "completed")

    restarted = run_json("restart", task_id, url=server.url)
    with server.client() as api:
        wait_state(api, restarted["id"], "completed")
    # A task is restarted once; the table form restarts the restart.
    table = run_tasky("restart", restarted["id"], url=server.url)
    overall = run_tasky("stats", url=server.url)
    worker = run_json("stats", "add", url=server.url)
    task = run_json("stats", "--task", task_id, url=server.url)

    assert restarted["restart_of"] == task_id
    assert f"restarted task {restarted['id']} as" in table.stdout
    assert overall.returncode == 0
    assert overall.stdout.strip()
    assert isinstance(worker, dict)
    assert isinstance(task, dict)
