"""`tasky serve`: start one node with its workers and the REST API."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tasky.errors import ConfigurationError

logger = logging.getLogger("tasky.cli")

EXIT_OK = 0
EXIT_USAGE = 2  # invalid flag, setting, worker module or listen address (busy port included)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def serve(
    addr: Annotated[
        str, typer.Option(envvar="TASKY_ADDR", help="Listen address HOST:PORT; ':PORT' means every interface.")
    ] = "127.0.0.1:8888",
    store: Annotated[
        str, typer.Option(envvar="TASKY_STORE", help="SQLite file that keeps tasks (created if missing).")
    ] = "tasky.db",
    workers: Annotated[
        Optional[list[str]],
        typer.Option("--workers", envvar="TASKY_WORKERS", help="Python module of workers to serve; repeatable."),
    ] = None,
    examples: Annotated[
        bool, typer.Option("--examples", help="Serve the example workers too when --workers is given.")
    ] = False,
    copy_root: Annotated[
        Optional[list[Path]],
        typer.Option("--copy-root", envvar="TASKY_COPY_ROOT", help="Folder that copyfile may read and write; repeatable."),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Serve requests without a token on any address while the store has no token (logs a warning per request).")
    ] = False,
    max_body_bytes: Annotated[
        int, typer.Option(envvar="TASKY_MAX_BODY_BYTES", min=1, help="Largest request body in bytes; larger ones get 413.")
    ] = 1024 * 1024,
    header_timeout: Annotated[
        float, typer.Option(envvar="TASKY_HEADER_TIMEOUT", min=0.001, help="Seconds a client has to send a request's headers.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(envvar="TASKY_BODY_TIMEOUT", min=0.001, help="Seconds a client has to send a request's body.")
    ] = 30.0,
    max_connections: Annotated[
        int, typer.Option(envvar="TASKY_MAX_CONNECTIONS", min=1, help="Open connections at most; more get 503.")
    ] = 1000,
    max_streams: Annotated[
        int, typer.Option(envvar="TASKY_MAX_STREAMS", min=1, help="Event streams open at once at most; more get 503.")
    ] = 100,
    cors_origin: Annotated[
        Optional[list[str]],
        typer.Option("--cors-origin", envvar="TASKY_CORS_ORIGINS", help="Origin that browsers may call the API from; repeatable. CORS is off without one."),
    ] = None,
    shutdown_grace: Annotated[
        float, typer.Option(envvar="TASKY_SHUTDOWN_GRACE", min=0, help="Seconds running tasks get to finish at shutdown.")
    ] = 10.0,
    log_level: Annotated[str, typer.Option(envvar="TASKY_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Start a tasky node: the REST API, the executor and the store.

    With no --workers it serves the four example workers (copyfile,
    ifconfig, sleeper, sysctl). copyfile accepts tasks only once at least
    one --copy-root is given.
    """
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    try:
        from tasky.security import SecurityOptions

        security = SecurityOptions(
            insecure=insecure,
            cors_origins=tuple(cors_origin or ()),
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            max_connections=max_connections,
            max_streams=max_streams,
        )
        tasky = build_node(
            store, workers or [], examples, copy_root or [], shutdown_grace, security=security, max_body_bytes=max_body_bytes
        )
        tasky.serve(addr, insecure=insecure)
    except ConfigurationError as exc:
        typer.echo(f"tasky: error: {exc.message}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def build_node(store: str, modules: list[str], examples: bool, copy_roots: list[Path], shutdown_grace_s: float, **node_options: Any):  # type: ignore[no-untyped-def]
    from tasky.app import Tasky
    from tasky.worker import load_workers_module
    from tasky.workers import example_workers

    chosen = []
    sys.path.insert(0, ".")  # a module named on the command line is usually in the current folder
    for module in modules:
        chosen.extend(load_workers_module(module))
    if not modules or examples:
        chosen.extend(example_workers(copy_roots))
    return Tasky(chosen, store=store, shutdown_grace_s=shutdown_grace_s, **node_options)
