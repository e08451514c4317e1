"""The peers (Huey, Dramatiq, Celery): their virtual environments, Redis, and the driver that measures them.

The environments live in `bench/.venvs/NAME`, are created with
`python -m venv` and filled with pip from the pinned files
`bench/peers/requirements-NAME.txt`; they are rebuilt when that file
changes. The Redis peers use the Redis server on 127.0.0.1:6379, which is
started here when it is installed but not running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from servers import BENCH_DIR
from suite.childresult import read_result
from suite.settings import Settings

logger = logging.getLogger(__name__)

VENVS_DIR = BENCH_DIR / ".venvs"
PEERS_DIR = BENCH_DIR / "peers"
REDIS_ADDRESS = ("127.0.0.1", 6379)
PIP_TIMEOUT_S = 900

# Peer name -> the virtual environment (requirements file) it runs in.
PEER_VENVS = {"huey-sqlite": "huey", "huey-redis": "huey", "dramatiq": "dramatiq", "celery": "celery"}
REDIS_PEERS = {"huey-redis", "dramatiq", "celery"}


def ensure_venv(name: str) -> Path:
    """Return the Python of the peer environment `name`, creating or refreshing it first."""
    requirements = PEERS_DIR / f"requirements-{name}.txt"
    venv = VENVS_DIR / name
    python = venv / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / "requirements.sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    logger.info("creating the virtual environment %s from %s", venv, requirements.name)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)],
        check=True, timeout=PIP_TIMEOUT_S,
    )
    stamp.write_text(digest)
    return python


def redis_available() -> bool:
    """Return whether Redis responds on 127.0.0.1:6379, after starting it if it is installed and down."""
    if _redis_ping():
        return True
    server = shutil.which("redis-server")
    if server is None:
        logger.warning("Redis is not running and not installed; install it with: apt-get install -y redis-server")
        return False
    for folder in ("/var/lib/redis", "/var/log/redis"):
        os.makedirs(folder, exist_ok=True)
    logger.info("starting redis-server on 127.0.0.1:6379")
    subprocess.run(
        [server, "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "", "--appendonly", "no",
         "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
        check=False, timeout=30,
    )
    for _ in range(50):
        if _redis_ping():
            return True
        time.sleep(0.1)
    return False


def _redis_ping() -> bool:
    try:
        with socket.create_connection(REDIS_ADDRESS, timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def run_driver(peer: str, mode: str, settings: Settings, **options: Any) -> dict[str, Any]:
    python = ensure_venv(PEER_VENVS[peer])
    command = [str(python), str(PEERS_DIR / "driver.py"), peer, mode, "--workdir", str(settings.workdir / "peers" / peer)]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        command, cwd=PEERS_DIR, env=env, capture_output=True, text=True, timeout=settings.run_timeout_s * (options.get("runs", 1) + 1) + 120
    )
    return read_result(completed, f"{peer} {mode}")


def peers_to_run() -> tuple[list[str], dict[str, str]]:
    """Return the peers that can run here, and the reason for each one that cannot."""
    skipped = {}
    if not redis_available():
        skipped = {peer: "Redis is not available on 127.0.0.1:6379" for peer in sorted(REDIS_PEERS)}
    return [peer for peer in PEER_VENVS if peer not in skipped], skipped
