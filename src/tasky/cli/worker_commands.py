"""Client commands about workers: `tasky workers`, `tasky info` and `tasky submit`."""

from __future__ import annotations

import shlex
from typing import Annotated, Any, Optional

import orjson
import typer

from tasky.cli.config_values import build_config, read_config_file
from tasky.cli.exit_codes import TASK_OUTCOMES, ExitCode
from tasky.cli.follow import report_outcome, watch_task
from tasky.cli.invocation import (
    CommandExit,
    JsonOption,
    TokenOption,
    UrlOption,
    UsageError,
    epilog,
    open_client,
    run_client_command,
)
from tasky.cli.render import as_json_data, print_json, say, show_table, show_workers, stdout_console
from tasky.client import DEFAULT_URL, ApiInvalidConfig, Client, TaskInfo, WorkerInfo

ConfigValues = Annotated[
    Optional[list[str]],
    typer.Option(
        "-c",
        "--set",
        metavar="KEY=VALUE",
        help="Set one config field, parsed by the type the worker's schema gives it; repeatable.",
    ),
]
ConfigFile = Annotated[
    Optional[str],
    typer.Option("--config", metavar="FILE|-", help="Read the config from a JSON file, or from stdin with '-'; -c overrides its fields."),
]
WaitFlag = Annotated[bool, typer.Option("--wait", help="Show a live progress bar until the task ends, then its result.")]
FollowFlag = Annotated[bool, typer.Option("--follow", help="Print the task's log lines as they arrive, until it ends.")]
TimeoutOption = Annotated[
    Optional[float],
    typer.Option("--timeout", min=0, help="With --wait or --follow: stop waiting after this many seconds (exit 1)."),
]


def register(app: typer.Typer) -> None:
    app.command("workers", epilog=epilog("tasky workers", "tasky workers --json"))(workers)
    app.command("info", epilog=epilog("tasky info sleeper", "tasky info copyfile --json"))(info)
    app.command(
        "submit",
        epilog=epilog(
            "tasky submit sleeper -c seconds=3 --wait",
            "tasky submit sysctl -c 'checks=[{\"key\": \"net.ipv4.ip_forward\"}]' --follow",
            "echo '{\"seconds\": 5}' | tasky submit sleeper --config - --json",
        ),
    )(submit)


@run_client_command
def workers(url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """List the workers the server runs."""
    with open_client(url, token) as client:
        found = client.workers()
    if as_json:
        print_json({"workers": found})
    else:
        show_workers(found)


@run_client_command
def info(
    worker: Annotated[str, typer.Argument(metavar="WORKER", help="Name of the worker.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Describe a worker: what it does, its config fields, examples and limits."""
    with open_client(url, token) as client:
        described = client.worker_info(worker)
    if as_json:
        print_json(described)
    else:
        show_worker(described)


@run_client_command
def submit(
    worker: Annotated[str, typer.Argument(metavar="WORKER", help="Name of the worker to run.")],
    config_values: ConfigValues = None,
    config_file: ConfigFile = None,
    wait: WaitFlag = False,
    follow: FollowFlag = False,
    timeout: TimeoutOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a task of WORKER; with --wait or --follow, stay until it ends.

    The exit code then reports how the task ended: 0 completed, 1 failed or
    timed out, 3 canceled.
    """
    base = read_config_file(config_file) if config_file else {}
    with open_client(url, token) as client:
        config = _config_for(client, worker, config_values or [], base)
        task = _create(client, worker, config)
        if not (wait or follow):
            _show_created(task, as_json)
            return
        try:
            final = watch_task(client, task, bar=wait, logs=follow, as_json=as_json, timeout_s=timeout)
        except KeyboardInterrupt:
            raise CommandExit(
                ExitCode.INTERRUPTED, f"stopped waiting; task {task.id} keeps running (cancel it with: tasky cancel {task.id})"
            ) from None
    if as_json and follow:
        # The final task is the last line of the JSON Lines that --follow printed.
        print(orjson.dumps(as_json_data(final)).decode(), flush=True)
        code = TASK_OUTCOMES.get(final.state.value, ExitCode.OK)
    else:
        code = report_outcome(final, as_json=as_json)
    if code != ExitCode.OK:
        raise typer.Exit(code)


def show_worker(described: WorkerInfo) -> None:
    console = stdout_console()
    limits = described.limits
    summary = f"max_tasks {limits.max_tasks}, timeout {limits.timeout_s or 'none'}" if limits else ""
    say(f"{described.name} ({described.status}{', ' + described.status_reason if described.status_reason else ''}) {summary}")
    say("")
    say(described.description)
    say("")
    say("config fields:")
    show_table(["FIELD", "TYPE", "DEFAULT", "REQUIRED", "DESCRIPTION"], _field_rows(described.config_schema))
    if described.examples:
        console.print()
        say("examples:")
        for example in described.examples:
            say("  " + _example_command(described.name, example))


def _config_for(client: Client, worker: str, values: list[str], base: dict[str, Any]) -> dict[str, Any]:
    if not values:
        return base
    schema = client.worker_info(worker).config_schema
    return build_config(worker, schema, values, base)


def _create(client: Client, worker: str, config: dict[str, Any]) -> TaskInfo:
    try:
        return client.submit(worker, config)
    except ApiInvalidConfig as exc:
        # The values typed on the command line are wrong, so this is a usage error.
        reasons = "; ".join(f"{item.get('field')}: {item.get('message')}" for item in exc.detail or [] if isinstance(item, dict))
        raise UsageError(f"invalid config for worker {worker}: {reasons or exc.message} (see: tasky info {worker})") from None


def _show_created(task: TaskInfo, as_json: bool) -> None:
    if as_json:
        print_json(task)
        return
    say(f"created task {task.id} ({task.worker}, {task.state.value})")
    say(f"follow it with: tasky status {task.id}")


def _field_rows(schema: dict[str, Any]) -> list[tuple[Any, ...]]:
    required = set(schema.get("required", []))
    rows = []
    for name, field in schema.get("properties", {}).items():
        default = orjson.dumps(field["default"]).decode() if "default" in field else "-"
        rows.append((name, _type_name(field), default, name in required, field.get("description", "")))
    return rows


def _type_name(field: dict[str, Any]) -> str:
    if "$ref" in field:
        return str(field["$ref"]).rpartition("/")[2]
    if "enum" in field:
        return "|".join(str(choice) for choice in field["enum"])
    variants = field.get("anyOf") or field.get("oneOf")
    if variants:
        return "|".join(_type_name(variant) for variant in variants)
    if field.get("type") == "array":
        return f"list[{_type_name(field.get('items', {}))}]"
    kind = field.get("type", "any")
    return "|".join(kind) if isinstance(kind, list) else str(kind)


def _example_command(worker: str, example: Any) -> str:
    if not isinstance(example, dict) or not example:
        return f"tasky submit {worker}"
    parts = [f"{key}={value if isinstance(value, str) else orjson.dumps(value).decode()}" for key, value in example.items()]
    return f"tasky submit {worker} " + " ".join(f"-c {shlex.quote(part)}" for part in parts)
