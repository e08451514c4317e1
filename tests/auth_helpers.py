"""Helpers for tests that need API tokens: created with the real `tasky token` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import TESTS_DIR


def tasky_command(*args: str, cwd: Path | None = None, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m tasky ARGS` and return the finished process with its text output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "tasky", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
    )


def create_token(store: Path, name: str, role: str) -> str:
    """Create a token with `tasky token create` and return its secret."""
    done = tasky_command("token", "create", "--store", str(store), "--name", name, "--role", role)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
