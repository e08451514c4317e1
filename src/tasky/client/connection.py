"""Where the server is, how to authenticate, and how transport failures read.

`Connection` resolves the server URL and token from arguments or the
`TASKY_URL` / `TASKY_TOKEN` environment variables when a client is built
(never at import time), and stores the options that both HTTP transports use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx2

from tasky._version import __version__
from tasky.client.calls import API_PREFIX, ApiCall
from tasky.client.errors import ServerUnreachable

URL_ENV = "TASKY_URL"
TOKEN_ENV = "TASKY_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8888"
REQUEST_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Connection:
    """The server's root URL, the API token and the request timeout."""

    url: str
    token: str | None = None
    timeout_s: float = REQUEST_TIMEOUT_S

    @classmethod
    def resolve(cls, url: str | None = None, token: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S) -> Connection:
        """Fill what the caller left out from the environment, then from the defaults."""
        chosen = url or os.environ.get(URL_ENV) or DEFAULT_URL
        return cls(url=_root_url(chosen), token=token or os.environ.get(TOKEN_ENV) or None, timeout_s=timeout_s)

    def __repr__(self) -> str:
        # The token stays out of reprs, logs and tracebacks.
        return f"Connection(url={self.url!r}, token={'***' if self.token else None}, timeout_s={self.timeout_s})"

    def http_options(self) -> dict[str, Any]:
        """Build the keyword arguments of `httpx2.Client` and `httpx2.AsyncClient`."""
        headers = {"User-Agent": f"tasky-client/{__version__}", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return {"base_url": self.url, "headers": headers, "timeout": self.timeout(self.timeout_s)}

    def timeout(self, read_s: float | None) -> httpx2.Timeout:
        """Build a timeout that waits `read_s` for each read (None: no limit)."""
        return httpx2.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s), read=read_s)

    def request_options(self, call: ApiCall[Any]) -> dict[str, Any]:
        """Build the keyword arguments of `build_request` for `call`."""
        options: dict[str, Any] = {"method": call.method, "url": call.path, "params": call.params}
        if call.json is not None:
            options["json"] = call.json
        return options

    def unreachable(self, exc: httpx2.TransportError) -> ServerUnreachable:
        """Translate a transport failure into `ServerUnreachable`, naming the URL and the cause."""
        return ServerUnreachable(self.url, _reason(exc, self.timeout_s))


def _root_url(url: str) -> str:
    # Accept the API base too (http://host:port/tasky/v1), since that is what the API docs show.
    url = url.rstrip("/")
    return url[: -len(API_PREFIX)] if url.endswith(API_PREFIX) else url


def _reason(exc: httpx2.TransportError, timeout_s: float) -> str:
    text = str(exc)
    if isinstance(exc, httpx2.ConnectTimeout):
        return f"connect timed out after {min(CONNECT_TIMEOUT_S, timeout_s):g} s"
    if isinstance(exc, httpx2.ReadTimeout):
        return f"no response within {timeout_s:g} s"
    if isinstance(exc, httpx2.ConnectError) and "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, httpx2.RemoteProtocolError):
        return f"the connection closed early: {text}"
    return text or type(exc).__name__
