"""Server processes under test: tasky nodes and the bare ASGI ceilings, all on 127.0.0.1.

tasky runs as `python -m tasky serve` with the benchmark workers of
`bench_workers.py` and a store in a temporary folder; the ceilings run
under the same uvicorn with the same defaults (one process, uvloop and
httptools when installed, no access log).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
SRC_DIR = REPO_DIR / "src"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
API = "/tasky/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_env(**extra: str) -> dict[str, str]:
    """Environment whose PYTHONPATH puts this checkout's tasky and the benchmark workers first."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(part for part in [str(SRC_DIR), str(BENCH_DIR), env.get("PYTHONPATH", "")] if part)
    return env


class ServerProcess:
    """One HTTP server process with its output in a log file."""

    def __init__(self, name: str, command: list[str], folder: Path, ready_path: str, port: int, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.command = command
        self.folder = folder
        self.ready_path = ready_path
        self.port = port
        self.env = env or bench_env()
        self.log_path = folder / f"{name}-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> "ServerProcess":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, cwd=self.folder, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer {self.ready_path} within {START_TIMEOUT_S} s; log {self.log_path}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
        try:
            connection.request("GET", self.ready_path)
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tasky_server(folder: Path, *, store: Path | None = None, log_level: str = "INFO", extra_env: dict[str, str] | None = None) -> ServerProcess:
    """A tasky node serving the benchmark workers; the store defaults to `folder/tasky.db`."""
    port = free_port()
    store = store or folder / "tasky.db"
    command = [
        sys.executable, "-m", "tasky", "serve", "--addr", f"127.0.0.1:{port}", "--store", str(store),
        "--workers", "bench_workers", "--log-level", log_level,
    ]
    return ServerProcess("tasky", command, folder, "/readyz", port, bench_env(**(extra_env or {})))


def ceiling_server(folder: Path, app: str) -> ServerProcess:
    """A bare app from `ceiling.py` (`starlette_app` or `fastapi_app`) under uvicorn's defaults."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", f"ceiling:{app}", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]
    return ServerProcess(app, command, folder, "/ready", port)
