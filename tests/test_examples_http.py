"""The example workers on real input, driven over HTTP."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx

from conftest import create, wait_state

FIFTY_MB = 50 * 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_copyfile_50_mb_checksum(api: httpx.Client, copy_root: Path) -> None:
    source = copy_root / "big.bin"
    with source.open("wb") as handle:
        for _ in range(50):
            handle.write(os.urandom(1024 * 1024))
    task = create(api, "copyfile", {"source": "big.bin", "destination": "copy.bin"})
    done = wait_state(api, task["id"], {"completed", "failed"}, timeout_s=60)
    assert done["state"] == "completed", done["error"]
    destination = copy_root / "copy.bin"
    assert sha256_of(destination) == sha256_of(source)
    assert done["result"]["bytes"] == FIFTY_MB
    assert done["result"]["sha256"] == sha256_of(source)
    assert done["progress"]["done"] == FIFTY_MB
    assert not destination.samefile(source)
    assert sorted(path.name for path in copy_root.iterdir()) == ["big.bin", "copy.bin"]


def test_copyfile_onto_itself_fails(api: httpx.Client, copy_root: Path) -> None:
    source = copy_root / "keep.txt"
    source.write_bytes(b"precious bytes\n")
    task = create(api, "copyfile", {"source": "keep.txt", "destination": "keep.txt", "overwrite": True})
    done = wait_state(api, task["id"], {"completed", "failed"})
    assert done["state"] == "failed"
    assert "itself" in done["error"]["message"] or "same file" in done["error"]["message"]
    assert source.read_bytes() == b"precious bytes\n"


def test_copyfile_existing_destination(api: httpx.Client, copy_root: Path) -> None:
    (copy_root / "a.txt").write_text("new")
    (copy_root / "b.txt").write_text("old")
    task = create(api, "copyfile", {"source": "a.txt", "destination": "b.txt"})
    done = wait_state(api, task["id"], {"completed", "failed"})
    assert done["state"] == "failed"
    assert "overwrite" in done["error"]["message"]
    assert (copy_root / "b.txt").read_text() == "old"


def test_copyfile_escape_rejected(api: httpx.Client, copy_root: Path, tmp_path: Path) -> None:
    (copy_root / "a.txt").write_text("data")
    outside = tmp_path / "outside"
    outside.mkdir()
    (copy_root / "link").symlink_to(outside)
    cases = [
        {"source": "../../etc/passwd", "destination": "passwd"},
        {"source": "a.txt", "destination": "link/a.txt"},
        {"source": "a.txt", "destination": str(outside / "a.txt")},
    ]
    for config in cases:
        response = api.post("/workers/copyfile", json=config)
        assert response.status_code == 422, config
        assert response.json()["error"]["detail"][0]["type"] == "path_rejected"
    assert api.get("/tasks", params={"worker": "copyfile"}).json()["tasks"] == []
    assert list(outside.iterdir()) == []
    assert not (copy_root / "passwd").exists()


def test_ifconfig_lists_loopback(api: httpx.Client) -> None:
    task = create(api, "ifconfig")
    done = wait_state(api, task["id"], {"completed", "failed"})
    assert done["state"] == "completed", done["error"]
    interfaces = {item["name"]: item for item in done["result"]["interfaces"]}
    loopback = interfaces["lo"]
    assert {"address": "127.0.0.1", "prefix_length": 8} .items() <= loopback["ipv4"][0].items()
    assert loopback["is_up"] is True
    assert loopback["mtu"] > 0


def test_sysctl_checks_real_keys(api: httpx.Client) -> None:
    checks = [
        {"key": "kernel.ostype", "expected": "Linux"},
        {"key": "kernel.pid_max", "expected": 1, "op": "gt"},
        {"key": "no.such.key", "expected": "1"},
    ]
    task = create(api, "sysctl", {"checks": checks})
    done = wait_state(api, task["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    results = {item["key"]: item for item in done["result"]["checks"]}
    assert results["kernel.ostype"]["ok"] is True
    assert results["kernel.pid_max"]["ok"] is True
    assert results["no.such.key"]["ok"] is False
    assert results["no.such.key"]["error"]
    assert done["result"]["ok"] is False


def test_sysctl_fail_on_mismatch(api: httpx.Client) -> None:
    config = {"checks": [{"key": "kernel.ostype", "expected": "Plan9"}], "fail_on_mismatch": True}
    task = create(api, "sysctl", config)
    done = wait_state(api, task["id"], {"completed", "failed"})
    assert done["state"] == "failed"
    assert "kernel.ostype" in done["error"]["message"]


def test_sysctl_rejects_path_key(api: httpx.Client) -> None:
    response = api.post("/workers/sysctl", json={"checks": [{"key": "../../etc/passwd"}]})
    assert response.status_code == 422
