"""The bind policy: where a server may listen, given the tokens in its store.

With no active token, tasky serves on loopback only. A non-loopback
address needs at least one token, or `--insecure`, which serves every
client that can reach the address without authentication.
"""

from __future__ import annotations

import asyncio
import logging

from tasky.errors import ConfigurationError
from tasky.store import Store

logger = logging.getLogger(__name__)


def check_bind_policy(address: object, *, is_loopback: bool, has_tokens: bool, insecure: bool, store: str) -> None:
    """Raise `ConfigurationError` when listening on `address` would serve the network without authentication.

    Logs a warning when `insecure` lets requests without a token through.
    Runs before the socket is bound, so a refused address is never opened.
    """
    if has_tokens:
        if insecure:
            logger.info("--insecure has no effect: the store has API tokens, so every request needs one")
        return
    if insecure:
        logger.warning(
            "serving on %s WITHOUT authentication (--insecure): any client that reaches it can run tasks; "
            "create a token with 'tasky token create --store %s --name NAME --role admin' and restart without --insecure",
            address,
            store,
        )
        return
    if is_loopback:
        return
    raise ConfigurationError(
        f"refusing to listen on {address}: it is not a loopback address and the store {store} has no API token. "
        f"Create one with 'tasky token create --store {store} --name NAME --role admin' and send it as "
        "'Authorization: Bearer TOKEN', or listen on 127.0.0.1, "
        "or pass --insecure to serve every client without authentication"
    )


def store_has_tokens(store: Store) -> bool:
    """Open `store`, return whether it has an active API token, and close it again."""
    from tasky.auth.store import AuthStore

    async def check() -> bool:
        await store.open()
        try:
            return bool(await AuthStore(store).active_tokens())
        finally:
            await store.close()

    return asyncio.run(check())
