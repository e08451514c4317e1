"""`tasky token`: create, list and revoke API tokens in a store file.

The commands open the store directly, so they work whether or not a
server is running on it, and a running server reads a change within about a
second. Each change is also written to the audit log, with no token name
and the client `cli`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import orjson
import typer

from tasky.auth.roles import Role
from tasky.errors import TaskyError

if TYPE_CHECKING:
    from tasky.auth.store import AuthStore
    from tasky.auth.tokens import Token

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1  # the token name is taken, or no active token has the name
EXIT_USAGE = 2  # invalid name, role or store

app = typer.Typer(
    name="token",
    help="Create, list and revoke the API tokens that a tasky server accepts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StoreOption = Annotated[
    str, typer.Option("--store", envvar="TASKY_STORE", help="SQLite file of the server (created if missing).")
]


@app.command(
    "create",
    epilog="Example:\n\n  export TASKY_TOKEN=$(tasky token create --store /var/lib/tasky/tasky.db --name ci --role operate)",
)
def create(
    name: Annotated[str, typer.Option("--name", help="Unique name: letters, digits, '.', '_' or '-'.")],
    role: Annotated[
        Role, typer.Option("--role", case_sensitive=False, help="read: GET routes; operate: create and steer tasks; admin: all.")
    ],
    store: StoreOption = "tasky.db",
) -> None:
    """Create a token and print it once; only its SHA-256 digest is stored."""

    async def work(auth: AuthStore) -> str:
        token, secret = await auth.create_token(name, role)
        _audit(auth, "token.create", {"name": token.name, "role": token.role.value})
        return secret

    secret = _run(store, work)
    typer.echo(secret)
    typer.echo(
        f"created token {name!r} with role {role.value}; store it now, it cannot be shown again. "
        "Clients send it as 'Authorization: Bearer TOKEN'.",
        err=True,
    )


@app.command("list")
def list_tokens(
    store: StoreOption = "tasky.db",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """List the tokens with their roles; revoked ones are shown as such."""

    async def work(auth: AuthStore) -> list[Token]:
        return await auth.list_tokens()

    tokens = _run(store, work)
    if as_json:
        from tasky.api.admin import token_json

        for token in tokens:
            typer.echo(orjson.dumps(token_json(token)).decode())
        return
    _print_table(tokens)


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Name of the active token to revoke.")],
    store: StoreOption = "tasky.db",
) -> None:
    """Revoke a token; a running server rejects it within about a second."""

    async def work(auth: AuthStore) -> None:
        await auth.revoke_token(name)
        _audit(auth, "token.revoke", {"name": name})

    _run(store, work)
    typer.echo(f"revoked token {name!r}", err=True)


def _run(store: str, work: Callable[[AuthStore], Awaitable[T]]) -> T:
    """Open the store, run `work` with its `AuthStore`, close the store; turn errors into exit codes."""
    from tasky.auth.store import AuthStore
    from tasky.store import open_store

    async def main() -> T:
        opened = open_store(store)
        await opened.open()
        try:
            return await work(AuthStore(opened))
        finally:
            await opened.close()

    try:
        return asyncio.run(main())
    except TaskyError as exc:
        typer.echo(f"tasky: error: {exc.message}", err=True)
        raise typer.Exit(EXIT_USAGE if exc.status in (400, 422, 500) else EXIT_FAILURE) from None


def _audit(auth: AuthStore, action: str, detail: dict[str, str]) -> None:
    from tasky.audit import AuditEntry

    auth.record(
        AuditEntry(
            at=time.time(), token=None, client="cli", method="CLI", path=f"tasky {action.replace('.', ' ')}",
            action=action, task_id=None, worker=None, detail=detail, status=200, outcome="ok", error_code=None,
        )  # fmt: skip
    )


def _print_table(tokens: list[Token]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "role", "created", "revoked")
    for token in tokens:
        revoked = token.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if token.revoked_at else ""
        table.add_row(token.name, token.role.value, token.created_at.strftime("%Y-%m-%d %H:%M:%S"), revoked)
    Console().print(table)
