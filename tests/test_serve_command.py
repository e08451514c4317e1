"""`tasky serve` start-up: flags, worker modules and listen addresses."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from conftest import free_port, server_pythonpath


def run_serve(tmp_path: Path, *args: str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": server_pythonpath(), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "tasky", "serve", "--store", str(tmp_path / "t.db"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout_s,
    )


def test_busy_port_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_serve(tmp_path, "--addr", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("tasky: error: cannot listen on")
    assert "Traceback" not in result.stderr


def test_bad_address(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--addr", "localhost")
    assert result.returncode == 2
    assert "invalid address 'localhost'" in result.stderr


def test_non_loopback_refused(tmp_path: Path) -> None:
    # The refusal happens before any socket is bound.
    result = run_serve(tmp_path, "--addr", ":8888")
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr


def test_unknown_flag(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--bogus")
    assert result.returncode == 2
    assert "--bogus" in result.stderr


def test_missing_workers_module(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--workers", "no_such_module_here", "--addr", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "cannot import workers module 'no_such_module_here'" in result.stderr
    assert "Traceback" not in result.stderr


def test_duplicate_worker_names(tmp_path: Path) -> None:
    (tmp_path / "dupes.py").write_text(
        "import tasky\n"
        "@tasky.worker(name='sleeper')\n"
        "def mine() -> None: ...\n"
    )
    result = run_serve(tmp_path, "--workers", "dupes", "--examples", "--addr", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "two workers are named 'sleeper'" in result.stderr


def test_invalid_worker_name(tmp_path: Path) -> None:
    (tmp_path / "badname.py").write_text(
        "import tasky\n"
        "@tasky.worker(name='Bad Name')\n"
        "def mine() -> None: ...\n"
    )
    result = run_serve(tmp_path, "--workers", "badname", "--addr", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "invalid worker name 'Bad Name'" in result.stderr


def test_missing_copy_root(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--copy-root", str(tmp_path / "absent"), "--addr", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "absent" in result.stderr


def test_help_lists_environment() -> None:
    result = subprocess.run([sys.executable, "-m", "tasky", "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "TASKY_STORE" in result.stdout
    assert "--copy-root" in result.stdout
