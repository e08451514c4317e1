"""Running a `Tasky` node under uvicorn on a socket that tasky binds itself.

Binding first lets a busy port or a bad address end start-up with one
clear line instead of a uvicorn traceback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tasky.errors import ConfigurationError

if TYPE_CHECKING:
    from types import FrameType

    from tasky.app import Tasky

logger = logging.getLogger(__name__)

DEFAULT_ADDR = "127.0.0.1:8888"
EXIT_FORCED = 1  # a second SIGINT or SIGTERM during shutdown


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_addr(text: str) -> Address:
    """Parse `HOST:PORT`, `[V6]:PORT` or `:PORT` (every interface, as the Go original accepted)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigurationError(f"invalid address {text!r}: use HOST:PORT, for example 127.0.0.1:8888")
    host = host.strip("[]") or "0.0.0.0"
    return Address(host, int(port_text))


def bind(addr: Address) -> socket.socket:
    """Bind and listen on `addr`; raise `ConfigurationError` with the reason on failure."""
    try:
        infos = socket.getaddrinfo(addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot resolve listen address {addr}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = "; stop the other server or choose another port with --addr" if exc.errno == 98 else ""
        raise ConfigurationError(f"cannot listen on {addr}: {exc.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


def run(tasky: Tasky, addr: str = DEFAULT_ADDR, *, insecure: bool = False, access_log: bool = False) -> None:
    """Serve `tasky` on `addr` until SIGINT or SIGTERM."""
    import uvicorn

    from tasky.auth.bind import check_bind_policy, store_has_tokens
    from tasky.auth.tickets import TicketRedactor
    from tasky.protocol import guarded_protocol

    address = parse_addr(addr)
    check = getattr(tasky.store, "check", None)
    if check is not None:
        check()
    if insecure and not tasky.security.insecure:
        tasky.security = replace(tasky.security, insecure=True)
    check_bind_policy(
        address,
        is_loopback=address.is_loopback,
        has_tokens=store_has_tokens(tasky.store),
        insecure=tasky.security.insecure,
        store=str(getattr(tasky.store, "path", "PATH")),
    )
    sock = bind(address)
    logging.getLogger("uvicorn.access").addFilter(TicketRedactor())
    config = uvicorn.Config(
        tasky.asgi(),
        http=guarded_protocol(tasky.security),
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=tasky.shutdown_grace_s + 5,
    )
    server = _server_class()(config)
    server.tasky = tasky
    logger.info("tasky listening on http://%s (API under /tasky/v1, docs at /docs)", address)
    logger.info("serving workers: %s", ", ".join(tasky.registry.names()) or "(none)")
    server.run(sockets=[sock])


def _server_class() -> type:
    import uvicorn

    class TaskyServer(uvicorn.Server):
        """uvicorn's server with tasky's signal contract.

        The first SIGINT or SIGTERM starts a graceful shutdown that ends
        with exit status 0 (uvicorn would re-raise the signal instead). A
        second one exits at once; tasks still running stay `running` in
        the store and are recovered when a node starts on it again.
        """

        draining = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.draining or self.should_exit:
                logger.warning("second signal %d during shutdown: exiting now; running tasks are recovered at next start", sig)
                os._exit(EXIT_FORCED)
            logger.info("signal %d received: draining for up to %.1f s, then exiting", sig, self.tasky.shutdown_grace_s)
            self.draining = True
            self.tasky.begin_shutdown()
            loop = asyncio.get_running_loop()
            loop.call_soon_threadsafe(lambda: loop.create_task(self._drain_then_exit()))

        async def _drain_then_exit(self) -> None:
            # The API keeps serving during the grace period: /readyz returns
            # 503 and running tasks can still be watched and canceled.
            try:
                await self.tasky.drain()
            finally:
                self.should_exit = True

    return TaskyServer
