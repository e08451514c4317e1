"""Profiles of tasky on the submit path and the end-to-end paths (HTTP and Python API), sampled with py-spy.

py-spy samples the server process from outside (`--nonblocking`, so the
node is not paused), 200 times a second, and writes collapsed stacks. The
summary groups samples by thread (event loop, store writer, task threads)
and lists the components and functions with the most samples: self time
(the function was on top of the stack) and inclusive time within the event
loop thread.
Figures measured while profiling are slower than unprofiled ones and are
not reported as results.
"""

from __future__ import annotations

import linecache
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from loadgen import run_asyncio_load
from servers import API, BENCH_DIR, bench_env, tasky_server
from suite.client import Client
from suite.settings import Settings
from suite.storeprobe import wait_drained

SAMPLE_RATE_HZ = 200
TOP = 15
TOP_LINES = 8
LIST_TASKS = 1_000  # stored tasks while the list page is profiled
LIST_REQUESTS = 1_000
# The first marker found in a frame names its component. A Python function's
# self time includes the C code it calls (SQLite, orjson, uvloop).
COMPONENTS = (
    ("(tasky/store/", "tasky store"),
    ("(tasky/executor/", "tasky executor"),
    ("(tasky/context.py", "tasky executor"),
    ("(tasky/api/", "tasky API"),
    ("(tasky/", "tasky, other modules"),
    ("(uvicorn/", "uvicorn"),
    ("(starlette/", "starlette"),
    ("(fastapi/", "fastapi"),
    ("(pydantic", "pydantic"),
    ("(logging/", "logging"),
    ("(threading.py", "threading"),
    ("Runner.run (asyncio/runners.py", "event loop core (uvloop, C)"),
    ("(uvloop/", "event loop core (uvloop, C)"),
    ("(asyncio/", "asyncio"),
    ("(suite/", "benchmark harness"),
)
PASS_THROUGH = ("(tasky/cli/", "(tasky/server.py", "(tasky/__main__.py", "(tasky/api/middleware.py", "Tasky.serve ")
INCLUSIVE_FUNCTIONS = ("Logger.", "Thread.start", "uuid4", "BaseModel.model_", "TypeAdapter.")
THREAD_HEAD = re.compile(r"^thread \(\d+\)(?:: (?P<name>.*))?$")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


def py_spy_path() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def run(settings: Settings) -> dict[str, Any]:
    if py_spy_path() is None:
        return {"skipped": "py-spy is not installed; install it with: pip install py-spy"}
    folder = settings.workdir / "profile"
    return {
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "submit": profile_submit(folder / "submit", settings),
        "endtoend": profile_endtoend(folder / "endtoend", settings),
        "python-api": profile_in_process(folder / "python-api", settings),
        "list": profile_list(folder / "list", settings),
    }


def profile_submit(folder: Path, settings: Settings) -> dict[str, Any]:
    """Sample the node while 64 connections create no-op tasks for `profile_duration_s`."""
    with tasky_server(folder) as server:
        with Recorder(server.pid, folder / "submit.txt") as recorder:
            load = run_asyncio_load(
                server.port, f"{API}/workers/noop", b"{}", settings.connections, duration_s=settings.profile_duration_s
            )
    return {"requests_per_s": load.requests_per_s, **summarize(recorder.output)}


def profile_endtoend(folder: Path, settings: Settings) -> dict[str, Any]:
    """Sample the node while it accepts and completes `e2e_tasks` no-op tasks."""
    with tasky_server(folder) as server:
        with Recorder(server.pid, folder / "endtoend.txt") as recorder:
            run_asyncio_load(
                server.port, f"{API}/workers/noop", b"{}", settings.e2e_connections,
                total=settings.e2e_tasks, duration_s=settings.run_timeout_s,
            )
            wait_drained(folder / "tasky.db", settings.run_timeout_s)
    return summarize(recorder.output)


def profile_list(folder: Path, settings: Settings) -> dict[str, Any]:
    """Sample the node while one client reads the first page of `GET /tasks` again and again."""
    with tasky_server(folder) as server:
        run_asyncio_load(server.port, f"{API}/workers/noop", b"{}", settings.e2e_connections, total=LIST_TASKS, duration_s=settings.run_timeout_s)
        wait_drained(folder / "tasky.db", settings.run_timeout_s)
        with Client(server.port) as client, Recorder(server.pid, folder / "list.txt") as recorder:
            for _ in range(LIST_REQUESTS):
                client.get(f"{API}/tasks")
    return summarize(recorder.output)


def profile_in_process(folder: Path, settings: Settings) -> dict[str, Any]:
    """Run the in-process end-to-end benchmark under py-spy from its start."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "python-api.txt"
    command = [
        py_spy_path() or "py-spy", "record", "--rate", str(SAMPLE_RATE_HZ), "--format", "raw", "--threads", "--nonblocking",
        "--output", str(output), "--", sys.executable, str(BENCH_DIR / "inprocess.py"), "--store", str(folder / "tasky.db"),
        "--tasks", str(settings.e2e_tasks), "--runs", "1", "--concurrency", str(settings.e2e_connections),
        "--timeout", str(settings.run_timeout_s),
    ]
    completed = subprocess.run(command, env=bench_env(), capture_output=True, text=True, timeout=settings.run_timeout_s * 2 + 60)
    if not output.exists():
        raise RuntimeError(f"py-spy wrote no profile (exit {completed.returncode}):\n{completed.stderr[-2000:]}")
    return summarize(output)


class Recorder:
    """A `py-spy record` of one process, stopped with SIGINT when the block ends."""

    def __init__(self, pid: int, output: Path) -> None:
        self.pid = pid
        self.output = output

    def __enter__(self) -> "Recorder":
        command = [
            py_spy_path() or "py-spy", "record", "--pid", str(self.pid), "--rate", str(SAMPLE_RATE_HZ),
            "--format", "raw", "--threads", "--nonblocking", "--output", str(self.output),
        ]
        self._log = open(self.output.with_suffix(".log"), "wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # py-spy attaches before the load starts
        if self.process.poll() is not None:
            raise RuntimeError(f"py-spy exited with {self.process.returncode}; see {self.output.with_suffix('.log')}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        self._log.close()


def summarize(path: Path) -> dict[str, Any]:
    """Share of samples per thread, per component and per function, and inclusive time on the event loop."""
    by_thread: Counter[str] = Counter()
    by_component: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    self_lines: Counter[str] = Counter()
    loop_inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        frames = stack_text.split(";")
        head = THREAD_HEAD.match(frames[0])
        frames = frames[1:] if head else frames
        if frames:
            self_lines[frames[-1]] += int(count_text)
        frames = [short_frame(frame) for frame in frames]
        group = thread_group((head.group("name") if head else None) or "", frames)
        count = int(count_text)
        total += count
        by_thread[group] += count
        if frames:
            self_time[f"{frames[-1]} [{group}]"] += count
            by_component[f"{component(frames[-1])} [{group}]"] += count
        if group == "event loop":
            for frame in set(frames):
                if is_interesting(frame):
                    loop_inclusive[frame] += count
    if not total:
        return {"samples": 0, "threads": {}, "components": [], "self": [], "self_lines": [], "loop_inclusive": []}
    loop_total = by_thread["event loop"] or 1
    return {
        "samples": total,
        "threads": {name: count / total for name, count in by_thread.most_common()},
        "components": [(name, count / total) for name, count in by_component.most_common(TOP)],
        "self": [(name, count / total) for name, count in self_time.most_common(TOP)],
        "self_lines": [(with_source(frame), count / total) for frame, count in self_lines.most_common(TOP_LINES)],
        "loop_inclusive": [(name, count / loop_total) for name, count in loop_inclusive.most_common(TOP)],
    }


def thread_group(name: str, frames: list[str]) -> str:
    """Name the thread's role; py-spy omits some thread names, and then the stack identifies the thread."""
    if not name:
        if any("_write_loop" in frame for frame in frames):
            return "store writer"
        # Threads that are starting or ending have no name yet (or any more);
        # the node creates threads per task and no others while it runs.
        if not frames or any("_run_in_thread" in frame or "Thread._bootstrap" in frame for frame in frames):
            return "task threads"
        return "other threads"
    if name == "MainThread":
        return "event loop"
    if name == "tasky-sqlite-writer":
        return "store writer"
    if name.startswith("tasky-"):
        return "task threads"
    return re.sub(r"[_-]?\d+$", "", name) or "other threads"


def short_frame(frame: str) -> str:
    """`function (file)` without the line number, so one function counts as one entry."""
    match = FRAME.match(frame)
    return f"{match.group('function')} ({match.group('file')})" if match else frame


def with_source(frame: str) -> str:
    """Append the source text of a frame's line when the file is found on the import path."""
    match = re.match(r"^.* \((?P<file>[^():]+):(?P<line>\d+)\)$", frame)
    if match is None:
        return frame
    for folder in sys.path:
        candidate = Path(folder or ".") / match.group("file")
        if candidate.is_file():
            text = linecache.getline(str(candidate), int(match.group("line"))).strip()
            return f"{frame}: {text}" if text else frame
    return frame


def component(frame: str) -> str:
    """Return the library or tasky module that a frame belongs to."""
    for marker, name in COMPONENTS:
        if marker in frame:
            return name
    return "other Python"


def is_interesting(frame: str) -> bool:
    """Keep tasky's own frames and the library calls it makes, not the ASGI layers every request passes through."""
    if any(marker in frame for marker in PASS_THROUGH):
        return False
    return frame.startswith(INCLUSIVE_FUNCTIONS) or "(tasky/" in frame
