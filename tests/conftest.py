"""Fixtures that start real tasky server processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_pythonpath() -> str:
    """PYTHONPATH for server processes: the test workers, then this run's entries made absolute.

    Servers run in a temporary folder, where a relative entry such as
    `src` would silently fall back to the installed tasky.
    """
    entries = [str(TESTS_DIR)]
    entries += [str(Path(entry).resolve()) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return os.pathsep.join(entries)


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02, what: str = "condition") -> Any:
    """Poll `predicate` until it returns a truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class Server:
    """One `python -m tasky serve` process with its own folder and SQLite file."""

    def __init__(self, folder: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/tasky/v1"
        self.store = folder / "tasky.db"
        self.args = args
        self.env = env or {}
        self.log_path = folder / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Server":
        env = dict(os.environ, PYTHONPATH=server_pythonpath(), **self.env)
        command = [sys.executable, "-m", "tasky", "serve", "--addr", f"127.0.0.1:{self.port}", "--store", str(self.store), *self.args]
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, cwd=self.folder, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(self._ready, START_TIMEOUT_S, 0.05, f"server on port {self.port} (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, timeout=10.0)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers in `tmp_path`; every one is stopped when the test ends."""
    started: list[Server] = []

    def start(*args: str, folder: Path | None = None, env: dict[str, str] | None = None) -> Server:
        server = Server(folder or tmp_path, list(args), env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop(signal.SIGKILL)


@pytest.fixture
def copy_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every copy root, holding one file that no copy may read or replace."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"outside the root\n")
    return folder


@pytest.fixture
def server(start_server: Callable[..., Server], copy_root: Path) -> Server:
    """A server with the example workers, the test workers and a copy root."""
    return start_server("--workers", "jobs", "--examples", "--copy-root", str(copy_root))


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def create(api: httpx.Client, worker: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create a task and return its JSON; fails the test unless the status is 201."""
    response = api.post(f"/workers/{worker}", json=config or {})
    assert response.status_code == 201, response.text
    return response.json()


def wait_state(api: httpx.Client, task_id: str, states: set[str] | str, timeout_s: float = 10.0) -> dict[str, Any]:
    wanted = {states} if isinstance(states, str) else states

    def check() -> dict[str, Any] | None:
        body = api.get(f"/tasks/{task_id}").json()
        return body if body["state"] in wanted else None

    return wait_until(check, timeout_s, what=f"task {task_id} to reach {sorted(wanted)}")
