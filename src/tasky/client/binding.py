"""Bind the `ApiCall` builders of `calls.py` as methods of both clients.

`Client.task = SyncOperation(calls.task)` makes `client.task(task_id)` build
the call and send it with `client.send`. The async twin returns the
coroutine of `AsyncClient.send` instead. So each route's signature and
docstring live once, in `calls.py`, for both clients.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from tasky.client.calls import ApiCall

P = ParamSpec("P")
T = TypeVar("T")


class _Sender(Protocol):
    def send(self, call: ApiCall[Any]) -> Any: ...


class _Operation(Generic[P, T]):
    def __init__(self, build: Callable[P, ApiCall[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.build.__module__}.{self.build.__qualname__}>"

    def _bind(self, client: _Sender) -> Callable[..., Any]:
        build = self.build

        @functools.wraps(build)
        def method(*args: Any, **kwargs: Any) -> Any:
            return client.send(build(*args, **kwargs))

        return method


class SyncOperation(_Operation[P, T]):
    """A method of `Client`: returns the parsed response."""

    @overload
    def __get__(self, client: None, owner: type) -> SyncOperation[P, T]: ...

    @overload
    def __get__(self, client: object, owner: type) -> Callable[P, T]: ...

    def __get__(self, client: Any, owner: type) -> Any:
        return self if client is None else self._bind(client)


class AsyncOperation(_Operation[P, T]):
    """A method of `AsyncClient`: returns a coroutine of the parsed response."""

    @overload
    def __get__(self, client: None, owner: type) -> AsyncOperation[P, T]: ...

    @overload
    def __get__(self, client: object, owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, client: Any, owner: type) -> Any:
        return self if client is None else self._bind(client)
