"""A small blocking HTTP/1.1 client on one keep-alive connection, for sequential latency measurements."""

from __future__ import annotations

import http.client
from typing import Any

import orjson

HEADERS = {"Content-Type": "application/json"}


class Client:
    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return the status and the decoded JSON body (None when empty)."""
        payload = orjson.dumps(body) if body is not None else None
        self._connection.request(method, path, body=payload, headers=HEADERS if payload is not None else {})
        response = self._connection.getresponse()
        data = response.read()
        return response.status, orjson.loads(data) if data else None

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.request("POST", path, body if body is not None else {})

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
