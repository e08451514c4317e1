"""The copyfile path policy over HTTP: every escape is rejected and nothing lands outside the roots.

Each case builds real symlinks, hard links and special files under a
temporary folder and starts a copyfile task through the REST API. A path
that leads out of the roots is rejected with 422 at creation. File types
that are checked when the file is opened (hard links, FIFOs, sockets,
devices) fail the task at run time, and so does a path that changed
after creation. The check-then-swap races are covered by the `PathPolicy`
unit tests, which can swap at the exact moment.
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


def rejected_at_creation(api: httpx.Client, config: dict[str, Any]) -> dict[str, Any]:
    """Post a copy that must be rejected before any task exists, and return the error body."""
    response = api.post("/workers/copyfile", json=config)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert api.get("/tasks", params={"worker": "copyfile"}).json()["tasks"] == []
    return error


def test_copy_inside_root_works(api: httpx.Client, copy_root: Path) -> None:
    (copy_root / "in").mkdir()
    (copy_root / "out").mkdir()
    (copy_root / "in" / "a.txt").write_bytes(b"hello\n")
    done = run_copy(api, {"source": "in/a.txt", "destination": "out/a.txt"})
    assert done["state"] == "completed", done["error"]
    assert (copy_root / "out" / "a.txt").read_bytes() == b"hello\n"


def test_dotdot_source_rejected(api: httpx.Client, copy_root: Path) -> None:
    error = rejected_at_creation(api, {"source": "../../etc/passwd", "destination": "passwd"})
    assert [item["field"] for item in error["detail"]] == ["source"]
    assert "'../../etc/passwd'" in error["message"]
    assert "'..' leads outside" in error["message"]
    assert list(copy_root.iterdir()) == []


def test_symlink_to_etc_rejected(api: httpx.Client, copy_root: Path) -> None:
    (copy_root / "etc").symlink_to("/etc")
    error = rejected_at_creation(api, {"source": "etc/passwd", "destination": "passwd"})
    assert "symbolic link" in error["message"]
    assert "'/etc/passwd'" in error["message"]
    assert sorted(path.name for path in copy_root.iterdir()) == ["etc"]


def test_path_changed_after_creation_fails(api: httpx.Client, copy_root: Path, outside: Path) -> None:
    (copy_root / "a.txt").write_bytes(b"inside\n")
    (copy_root / "out").mkdir()
    response = api.post("/workers/copyfile", params={"hold": "true"}, json={"source": "a.txt", "destination": "out/a.txt"})
    assert response.status_code == 201, response.text
    task = response.json()
    (copy_root / "out").rmdir()
    (copy_root / "out").symlink_to(outside)  # swapped in after the creation-time check
    outside_before = snapshot(outside)

    assert api.post(f"/tasks/{task['id']}/run").status_code == 200
    done = wait_state(api, task["id"], {"completed", "failed"})

    assert done["state"] == "failed"
    assert done["error"]["type"] == "PathRejected"
    assert "symbolic link" in done["error"]["message"]
    assert snapshot(outside) == outside_before


@pytest.mark.parametrize(
    ("config", "rule", "stage"),
    [
        ({"source": "a.txt", "destination": "../outside/a.txt"}, "'..' leads outside", "create"),
        ({"source": "a.txt", "destination": "{outside}/a.txt"}, "it is outside", "create"),
        ({"source": "a.txt", "destination": "away/a.txt"}, "symbolic link", "create"),
        ({"source": "a.txt", "destination": "deep/away/a.txt"}, "symbolic link", "create"),
        ({"source": "a.txt", "destination": "dangling"}, "symbolic link", "create"),
        ({"source": "a.txt", "destination": "secret-link", "overwrite": True}, "symbolic link", "create"),
        ({"source": "{outside}/secret.txt", "destination": "copy.txt"}, "it is outside", "create"),
        ({"source": "away/secret.txt", "destination": "copy.txt"}, "symbolic link", "create"),
        ({"source": "deep/away/secret.txt", "destination": "copy.txt"}, "symbolic link", "create"),
        ({"source": "secret-link", "destination": "copy.txt"}, "symbolic link", "create"),
        ({"source": "hard.txt", "destination": "copy.txt"}, "hard links", "run"),
        ({"source": "fifo", "destination": "copy.txt"}, "it is a FIFO", "run"),
        ({"source": "socket", "destination": "copy.txt"}, "it is a socket", "run"),
        ({"source": "null", "destination": "copy.txt"}, "it is a character device", "run"),
    ],
)
def test_escape_rejected(
    api: httpx.Client, copy_root: Path, outside: Path, tmp_path: Path, config: dict[str, Any], rule: str, stage: str
) -> None:
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
        if stage == "create":
            error = rejected_at_creation(api, resolved)
        else:
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
    error = rejected_at_creation(api, {"source": "a.txt", "destination": target})
    assert repr(target) in error["message"]
    assert repr(str(copy_root.resolve())) in error["message"]
    assert error["detail"][0]["field"] == "destination"


def test_edit_outside_root_rejected(api: httpx.Client, copy_root: Path, outside: Path) -> None:
    (copy_root / "a.txt").write_bytes(b"inside\n")
    response = api.post("/workers/copyfile", params={"hold": "true"}, json={"source": "a.txt", "destination": "b.txt"})
    assert response.status_code == 201, response.text
    task = response.json()

    edited = api.put(f"/tasks/{task['id']}", json={"source": "a.txt", "destination": str(outside / "b.txt")})

    assert edited.status_code == 422, edited.text
    assert edited.json()["error"]["detail"][0]["field"] == "destination"
    assert api.get(f"/tasks/{task['id']}").json()["config"]["destination"] == "b.txt"
