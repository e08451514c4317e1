"""The copyfile path policy over HTTP: every escape is rejected and nothing lands outside the roots.

Each case builds real symlinks, hard links and special files under a
temporary folder, starts a copyfile task through the REST API and checks
the stored error and the folders on disk. The check-then-swap races are
covered by the `PathPolicy` unit tests, which can swap at the exact moment.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import create, wait_state


def snapshot(folder: Path) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        status = path.lstat()
        entries[str(path.relative_to(folder))] = (
            path.read_bytes() if stat.S_ISREG(status.st_mode) else stat.filemode(status.st_mode),
            status.st_nlink,
        )
    return entries


def run_copy(api: httpx.Client, config: dict[str, Any]) -> dict[str, Any]:
    task = create(api, "copyfile", config)
    return wait_state(api, task["id"], {"completed", "failed"})


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"outside the root\n")
    return folder


def test_copy_inside_root_works(api: httpx.Client, copy_root: Path) -> None:
    (copy_root / "in").mkdir()
    (copy_root / "out").mkdir()
    (copy_root / "in" / "a.txt").write_bytes(b"hello\n")
    done = run_copy(api, {"source": "in/a.txt", "destination": "out/a.txt"})
    assert done["state"] == "completed", done["error"]
    assert (copy_root / "out" / "a.txt").read_bytes() == b"hello\n"


def test_dotdot_source_rejected(api: httpx.Client, copy_root: Path) -> None:
    done = run_copy(api, {"source": "../../etc/passwd", "destination": "passwd"})
    assert done["state"] == "failed"
    assert done["error"]["type"] == "PathRejected"
    assert "'../../etc/passwd'" in done["error"]["message"]
    assert "'..' leads outside" in done["error"]["message"]
    assert list(copy_root.iterdir()) == []


def test_symlink_to_etc_rejected(api: httpx.Client, copy_root: Path) -> None:
    (copy_root / "etc").symlink_to("/etc")
    done = run_copy(api, {"source": "etc/passwd", "destination": "passwd"})
    assert done["state"] == "failed"
    assert done["error"]["type"] == "PathRejected"
    assert "symbolic link" in done["error"]["message"]
    assert "'/etc/passwd'" in done["error"]["message"]
    assert sorted(path.name for path in copy_root.iterdir()) == ["etc"]


@pytest.mark.parametrize(
    ("config", "rule"),
    [
        ({"source": "a.txt", "destination": "../outside/a.txt"}, "'..' leads outside"),
        ({"source": "a.txt", "destination": "{outside}/a.txt"}, "it is outside"),
        ({"source": "a.txt", "destination": "away/a.txt"}, "symbolic link"),
        ({"source": "a.txt", "destination": "deep/away/a.txt"}, "symbolic link"),
        ({"source": "a.txt", "destination": "dangling"}, "symbolic link"),
        ({"source": "a.txt", "destination": "secret-link", "overwrite": True}, "symbolic link"),
        ({"source": "{outside}/secret.txt", "destination": "copy.txt"}, "it is outside"),
        ({"source": "away/secret.txt", "destination": "copy.txt"}, "symbolic link"),
        ({"source": "deep/away/secret.txt", "destination": "copy.txt"}, "symbolic link"),
        ({"source": "secret-link", "destination": "copy.txt"}, "symbolic link"),
        ({"source": "hard.txt", "destination": "copy.txt"}, "hard links"),
        ({"source": "fifo", "destination": "copy.txt"}, "it is a FIFO"),
        ({"source": "socket", "destination": "copy.txt"}, "it is a socket"),
        ({"source": "null", "destination": "copy.txt"}, "it is a character device"),
    ],
)
def test_escape_rejected(api: httpx.Client, copy_root: Path, outside: Path, tmp_path: Path, config: dict[str, Any], rule: str) -> None:
    (copy_root / "a.txt").write_bytes(b"inside\n")
    (copy_root / "away").symlink_to(outside)
    (copy_root / "deep").mkdir()
    (copy_root / "deep" / "away").symlink_to(outside)
    (copy_root / "dangling").symlink_to(outside / "not-yet.txt")
    (copy_root / "secret-link").symlink_to(outside / "secret.txt")
    os.link(outside / "secret.txt", copy_root / "hard.txt")
    os.mkfifo(copy_root / "fifo")
    os.mknod(copy_root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(copy_root / "socket"))
        outside_before = snapshot(outside)
        root_before = snapshot(copy_root)

        resolved = {key: value.format(outside=outside) if isinstance(value, str) else value for key, value in config.items()}
        done = run_copy(api, resolved)

        assert done["state"] == "failed", done
        error = done["error"]
        assert error["type"] in ("PathRejected", "CopyError"), error
        assert rule in error["message"], error["message"]
        assert snapshot(outside) == outside_before
        assert snapshot(copy_root) == root_before
    assert list(tmp_path.rglob("*.tmp")) == []


def test_rejections_name_the_path(api: httpx.Client, copy_root: Path, outside: Path) -> None:
    (copy_root / "a.txt").write_bytes(b"inside\n")
    target = str(outside / "x.txt")
    done = run_copy(api, {"source": "a.txt", "destination": target})
    assert repr(target) in done["error"]["message"]
    assert repr(str(copy_root.resolve())) in done["error"]["message"]
