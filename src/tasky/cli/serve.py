"""`tasky serve`: start one node with its workers and the REST API.

Flags are the last layer of the settings (see `tasky.settings`): a flag
that is not given leaves the value of the config file or the `TASKY_*`
variable in force.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from tasky.errors import ConfigurationError
from tasky.settings import Settings, load_settings, settings_toml, unknown_environment

if TYPE_CHECKING:
    from tasky.app import Tasky

logger = logging.getLogger("tasky.cli")

EXIT_OK = 0
EXIT_USAGE = 2  # invalid flag, setting, worker module or listen address (busy port included)

# Settings whose flag is not spelled like the setting itself.
FLAG_NAMES = {
    "shutdown_grace_s": "--shutdown-grace",
    "copy_roots": "--copy-root",
    "header_timeout_s": "--header-timeout",
    "body_timeout_s": "--body-timeout",
    "cors_origins": "--cors-origin",
}


def serve(
    config: Annotated[
        Optional[Path], typer.Option("--config", envvar="TASKY_CONFIG", help="TOML settings file; flags and TASKY_* variables override it.")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the effective settings as TOML (secrets masked) and exit.")
    ] = False,
    addr: Annotated[
        Optional[str], typer.Option(help="Listen address HOST:PORT; ':PORT' means every interface. Default 127.0.0.1:8888, variable TASKY_ADDR.")
    ] = None,
    store: Annotated[
        Optional[str], typer.Option(help="SQLite file that keeps tasks (created if missing). Default tasky.db, variable TASKY_STORE.")
    ] = None,
    workers: Annotated[
        Optional[list[str]],
        typer.Option("--workers", help="Python module of workers to serve; repeatable. Variable TASKY_WORKERS, comma-separated."),
    ] = None,
    examples: Annotated[
        Optional[bool], typer.Option("--examples", help="Serve the example workers too when --workers is given. Variable TASKY_EXAMPLES.")
    ] = None,
    copy_root: Annotated[
        Optional[list[Path]],
        typer.Option("--copy-root", help="Folder that copyfile may read and write; repeatable. Variable TASKY_COPY_ROOTS, comma-separated."),
    ] = None,
    insecure: Annotated[
        Optional[bool],
        typer.Option(
            "--insecure",
            help="Serve requests without a token on any address while the store has no token (logs a warning per request). "
            "Variable TASKY_INSECURE.",
        ),
    ] = None,
    max_body_bytes: Annotated[
        Optional[int], typer.Option(min=1, help="Largest request body in bytes; larger ones get 413. Default 1048576, variable TASKY_MAX_BODY_BYTES.")
    ] = None,
    header_timeout: Annotated[
        Optional[float], typer.Option(min=0.001, help="Seconds a client has to send a request's headers. Default 10, variable TASKY_HEADER_TIMEOUT_S.")
    ] = None,
    body_timeout: Annotated[
        Optional[float], typer.Option(min=0.001, help="Seconds a client has to send a request's body. Default 30, variable TASKY_BODY_TIMEOUT_S.")
    ] = None,
    max_connections: Annotated[
        Optional[int], typer.Option(min=1, help="Open connections at most; more get 503. Default 1000, variable TASKY_MAX_CONNECTIONS.")
    ] = None,
    max_streams: Annotated[
        Optional[int], typer.Option(min=1, help="Event streams open at once at most; more get 503. Default 100, variable TASKY_MAX_STREAMS.")
    ] = None,
    cors_origin: Annotated[
        Optional[list[str]],
        typer.Option(
            "--cors-origin",
            help="Origin that browsers may call the API from; repeatable. CORS is off without one. Variable TASKY_CORS_ORIGINS, comma-separated.",
        ),
    ] = None,
    shutdown_grace: Annotated[
        Optional[float], typer.Option(help="Seconds running tasks get to finish at shutdown. Default 10, variable TASKY_SHUTDOWN_GRACE_S.")
    ] = None,
    node: Annotated[Optional[str], typer.Option(help="Name of this node in logs and task records. Default HOSTNAME-PID, variable TASKY_NODE.")] = None,
    log_level: Annotated[
        Optional[str], typer.Option(help="DEBUG, INFO, WARNING or ERROR. Default INFO, variable TASKY_LOG_LEVEL.")
    ] = None,
    log_format: Annotated[
        Optional[str], typer.Option(help="json, text, or auto: JSON lines unless stderr is a terminal. Default auto, variable TASKY_LOG_FORMAT.")
    ] = None,
) -> None:
    """Start a tasky node: the REST API, the executor and the store.

    With no --workers it serves the four example workers (copyfile,
    ifconfig, sleeper, sysctl). copyfile accepts tasks only once at least
    one --copy-root is given. Every setting can also come from a TOML file
    (--config) or a TASKY_* variable; see --print-config for all of them.
    """
    flags = _given(
        addr=addr, store=store, workers=workers, examples=examples, copy_roots=copy_root, insecure=insecure,
        shutdown_grace_s=shutdown_grace, node=node, log_level=log_level, log_format=log_format,
        max_body_bytes=max_body_bytes, header_timeout_s=header_timeout, body_timeout_s=body_timeout,
        max_connections=max_connections, max_streams=max_streams, cors_origins=cors_origin,
    )
    try:
        settings = load_settings(config, flags, os.environ, FLAG_NAMES)
        if print_config:
            typer.echo(settings_toml(settings), nl=False)
            raise typer.Exit(EXIT_OK)
        _start_logging(settings)
        build_node(settings).serve(settings.addr, insecure=settings.insecure)
    except ConfigurationError as exc:
        typer.echo(f"tasky: error: {exc.message}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _start_logging(settings: Settings) -> None:
    from tasky.logconfig import configure_logging

    node = settings.node_name()
    settings.node = node  # the same name in every log line and in the node itself
    configure_logging(settings.log_level, settings.log_format, node)
    unknown = unknown_environment(os.environ)
    if unknown:
        logger.warning("ignoring environment variables that name no tasky serve setting: %s", ", ".join(unknown))


def build_node(settings: Settings) -> Tasky:
    """Build the `Tasky` node that `settings` describe, with its workers loaded."""
    from tasky.app import Tasky
    from tasky.security import SecurityOptions
    from tasky.worker import load_workers_module
    from tasky.workers import example_workers

    chosen = []
    sys.path.insert(0, ".")  # a module named on the command line is usually in the current folder
    for module in settings.workers:
        chosen.extend(load_workers_module(module))
    if not settings.workers or settings.examples:
        chosen.extend(example_workers(settings.copy_roots))
    return Tasky(
        chosen,
        store=settings.store,
        node=settings.node,
        cancel_wait_s=settings.cancel_wait_s,
        shutdown_grace_s=settings.shutdown_grace_s,
        max_body_bytes=settings.max_body_bytes,
        idempotency_ttl_s=settings.idempotency_ttl_s,
        task_logs=settings.task_logs,
        retention=settings.retention,
        webhooks=settings.webhooks,
        security=SecurityOptions(
            insecure=settings.insecure,
            cors_origins=tuple(settings.cors_origins),
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections,
            max_streams=settings.max_streams,
            max_json_depth=settings.max_json_depth,
            max_string_length=settings.max_string_length,
            ticket_ttl_s=settings.ticket_ttl_s,
        ),
    )
