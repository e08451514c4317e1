"""Unit tests of the copyfile, ifconfig and sysctl workers and of the file-path policy.

Each test calls `perform` directly with a real `TaskContext` on real files
under pytest's `tmp_path`; no server or store is involved.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tasky.context import TaskContext
from tasky.errors import ConfigurationError, InvalidConfig, TaskCanceled
from tasky.files import PathPolicy, PathRejected
from tasky.workers.copyfile import CHUNK_SIZE, CopyError, CopyFileWorker
from tasky.workers.ifconfig import IfconfigWorker, prefix_length
from tasky.workers.sysctl import SysctlCheck, SysctlMismatch, SysctlWorker


class RecordingSink:
    """Context sink that records progress and log calls, and can react to progress."""

    def __init__(self, on_progress: Callable[[float | None, float | None], None] | None = None) -> None:
        self.progress_calls: list[tuple[float | None, float | None, str | None]] = []
        self.lines: list[str] = []
        self.on_progress = on_progress

    def progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        self.progress_calls.append((done, total, message))
        if self.on_progress is not None:
            self.on_progress(done, total)

    def log(self, task_id: str, line: str) -> None:
        self.lines.append(line)


def make_context(worker_name: str, sink: RecordingSink | None = None) -> TaskContext:
    return TaskContext("task-1", worker_name, 1, sink or RecordingSink())


def run_worker(worker: Any, raw_config: dict[str, Any], ctx: TaskContext | None = None) -> Any:
    config = worker.validate_config(raw_config)
    return worker.perform(config, ctx or make_context(worker.name))


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Map every entry under `folder` to its bytes (files) or its type (anything else)."""
    entries: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        mode = path.lstat().st_mode
        entries[name] = path.read_bytes() if stat.S_ISREG(mode) else stat.filemode(mode)
    return entries


def temp_files(folder: Path) -> list[Path]:
    return list(folder.rglob("*.tmp"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def copier(root: Path) -> CopyFileWorker:
    return CopyFileWorker([root])


# copyfile: successful copies ---------------------------------------------------


def test_copy_large_file(root: Path, copier: CopyFileWorker) -> None:
    data = os.urandom(5 * 1024 * 1024)
    (root / "big.bin").write_bytes(data)
    sink = RecordingSink()

    result = run_worker(copier, {"source": "big.bin", "destination": "copy.bin"}, make_context("copyfile", sink))

    assert (root / "copy.bin").read_bytes() == data
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["bytes"] == len(data)
    assert result["source"] == str(root / "big.bin")
    assert result["destination"] == str(root / "copy.bin")
    assert sink.progress_calls[-1][0] == len(data)
    assert sink.progress_calls[-1][1] == len(data)
    assert temp_files(root) == []


def test_copy_absolute_paths(root: Path, copier: CopyFileWorker) -> None:
    (root / "a.txt").write_bytes(b"abc")
    (root / "sub").mkdir()

    result = run_worker(copier, {"source": str(root / "a.txt"), "destination": str(root / "sub" / "b.txt")})

    assert (root / "sub" / "b.txt").read_bytes() == b"abc"
    assert result["destination"] == str(root / "sub" / "b.txt")


def test_copy_empty_file(root: Path, copier: CopyFileWorker) -> None:
    (root / "empty").write_bytes(b"")

    result = run_worker(copier, {"source": "empty", "destination": "empty.copy"})

    assert (root / "empty.copy").read_bytes() == b""
    assert result["sha256"] == hashlib.sha256(b"").hexdigest()


def test_copy_keeps_mode(root: Path, copier: CopyFileWorker) -> None:
    (root / "a.sh").write_bytes(b"#!/bin/sh\n")
    (root / "a.sh").chmod(0o750)

    run_worker(copier, {"source": "a.sh", "destination": "b.sh"})

    assert stat.S_IMODE((root / "b.sh").stat().st_mode) == 0o750 & ~_current_umask()


def test_copy_overwrite_replaces(root: Path, copier: CopyFileWorker) -> None:
    (root / "new.txt").write_bytes(b"new contents")
    (root / "old.txt").write_bytes(b"old contents that are longer")

    result = run_worker(copier, {"source": "new.txt", "destination": "old.txt", "overwrite": True})

    assert (root / "old.txt").read_bytes() == b"new contents"
    assert result["bytes"] == len(b"new contents")
    assert temp_files(root) == []


def test_copy_symlink_inside_root(root: Path, copier: CopyFileWorker) -> None:
    (root / "real.txt").write_bytes(b"data")
    (root / "alias.txt").symlink_to(root / "real.txt")

    result = run_worker(copier, {"source": "alias.txt", "destination": "copy.txt"})

    assert result["source"] == str(root / "real.txt")
    assert (root / "copy.txt").read_bytes() == b"data"


def test_copy_second_root(tmp_path: Path, root: Path) -> None:
    second = tmp_path / "second"
    second.mkdir()
    (root / "a.txt").write_bytes(b"abc")
    copier = CopyFileWorker([root, second])

    run_worker(copier, {"source": "a.txt", "destination": str(second / "a.txt")})

    assert (second / "a.txt").read_bytes() == b"abc"


# copyfile: cancel ----------------------------------------------------------------


def test_copy_cancel_midway(root: Path, copier: CopyFileWorker) -> None:
    data = os.urandom(5 * CHUNK_SIZE)
    (root / "big.bin").write_bytes(data)
    ctx: TaskContext

    def cancel_after_first_chunk(done: float | None, total: float | None) -> None:
        if done and done >= CHUNK_SIZE:
            ctx.request_cancel()

    sink = RecordingSink(on_progress=cancel_after_first_chunk)
    ctx = make_context("copyfile", sink)

    with pytest.raises(TaskCanceled):
        run_worker(copier, {"source": "big.bin", "destination": "copy.bin"}, ctx)

    assert not (root / "copy.bin").exists()
    assert temp_files(root) == []
    assert sink.progress_calls[0][0] == CHUNK_SIZE
    assert len(sink.progress_calls) == 1
    assert (root / "big.bin").read_bytes() == data


def test_copy_cancel_keeps_old_destination(root: Path, copier: CopyFileWorker) -> None:
    (root / "big.bin").write_bytes(os.urandom(3 * CHUNK_SIZE))
    (root / "copy.bin").write_bytes(b"previous")
    ctx: TaskContext
    sink = RecordingSink(on_progress=lambda done, total: ctx.request_cancel())
    ctx = make_context("copyfile", sink)

    with pytest.raises(TaskCanceled):
        run_worker(copier, {"source": "big.bin", "destination": "copy.bin", "overwrite": True}, ctx)

    assert (root / "copy.bin").read_bytes() == b"previous"
    assert temp_files(root) == []


# copyfile: errors ----------------------------------------------------------------


def test_copy_missing_source(root: Path, copier: CopyFileWorker) -> None:
    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "nothing.txt", "destination": "copy.txt"})

    assert str(root / "nothing.txt") in str(raised.value)
    assert "does not exist" in str(raised.value)
    assert snapshot(root) == {}


def test_copy_source_directory(root: Path, copier: CopyFileWorker) -> None:
    (root / "folder").mkdir()

    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "folder", "destination": "copy"})

    assert str(root / "folder") in str(raised.value)
    assert "directory" in str(raised.value)
    assert set(snapshot(root)) == {"folder"}


def test_copy_source_fifo(root: Path, copier: CopyFileWorker) -> None:
    os.mkfifo(root / "pipe")

    with pytest.raises(PathRejected) as raised:
        run_worker(copier, {"source": "pipe", "destination": "copy"})

    assert str(root / "pipe") in str(raised.value)
    assert "FIFO" in str(raised.value)
    assert set(snapshot(root)) == {"pipe"}


def test_copy_source_device(root: Path, copier: CopyFileWorker) -> None:
    try:
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")

    with pytest.raises(PathRejected) as raised:
        run_worker(copier, {"source": "null", "destination": "copy"})

    assert str(root / "null") in str(raised.value)
    assert "character device" in str(raised.value)
    assert set(snapshot(root)) == {"null"}


def test_copy_source_socket(root: Path, copier: CopyFileWorker) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(root / "sock"))

        with pytest.raises(PathRejected) as raised:
            run_worker(copier, {"source": "sock", "destination": "copy"})
    finally:
        server.close()

    assert str(root / "sock") in str(raised.value)
    assert "socket" in str(raised.value)
    assert set(snapshot(root)) == {"sock"}


def test_copy_source_symlink_out(root: Path, outside: Path, copier: CopyFileWorker) -> None:
    (root / "link").symlink_to(outside / "secret.txt")

    with pytest.raises(PathRejected) as raised:
        run_worker(copier, {"source": "link", "destination": "copy"})

    assert "'link'" in str(raised.value)
    assert str(outside / "secret.txt") in str(raised.value)
    assert set(snapshot(root)) == {"link"}


def test_copy_destination_symlink_out(root: Path, outside: Path, copier: CopyFileWorker) -> None:
    before = snapshot(outside)
    (root / "a.txt").write_bytes(b"abc")
    (root / "out").symlink_to(outside, target_is_directory=True)

    with pytest.raises(PathRejected) as raised:
        run_worker(copier, {"source": "a.txt", "destination": "out/copied.txt"})

    assert "'out/copied.txt'" in str(raised.value)
    assert snapshot(outside) == before
    assert temp_files(root) == []


def test_copy_destination_dangling_symlink_out(root: Path, outside: Path, copier: CopyFileWorker) -> None:
    before = snapshot(outside)
    (root / "a.txt").write_bytes(b"abc")
    (root / "trap").symlink_to(outside / "created-by-copy.txt")

    with pytest.raises(PathRejected) as raised:
        run_worker(copier, {"source": "a.txt", "destination": "trap", "overwrite": True})

    assert "'trap'" in str(raised.value)
    assert snapshot(outside) == before


def test_copy_hard_linked_source(root: Path, outside: Path, copier: CopyFileWorker) -> None:
    os.link(outside / "secret.txt", root / "linked.txt")

    with pytest.raises(PathRejected) as raised:
        run_worker(copier, {"source": "linked.txt", "destination": "copy.txt"})

    assert str(root / "linked.txt") in str(raised.value)
    assert "hard links" in str(raised.value)
    assert not (root / "copy.txt").exists()
    assert temp_files(root) == []


def test_copy_hard_links_allowed(root: Path, outside: Path) -> None:
    os.link(outside / "secret.txt", root / "linked.txt")
    copier = CopyFileWorker([root], allow_hard_links=True)

    run_worker(copier, {"source": "linked.txt", "destination": "copy.txt"})

    assert (root / "copy.txt").read_bytes() == b"outside the root\n"


def test_copy_dotdot_escape(root: Path, outside: Path, copier: CopyFileWorker) -> None:
    before = snapshot(outside)
    (root / "a.txt").write_bytes(b"abc")

    with pytest.raises(PathRejected) as source_raised:
        run_worker(copier, {"source": "../outside/secret.txt", "destination": "copy.txt"})
    with pytest.raises(PathRejected) as destination_raised:
        run_worker(copier, {"source": "a.txt", "destination": "sub/../../outside/new.txt"})

    assert "'../outside/secret.txt'" in str(source_raised.value)
    assert "'..'" in str(source_raised.value)
    assert "'sub/../../outside/new.txt'" in str(destination_raised.value)
    assert snapshot(outside) == before
    assert set(snapshot(root)) == {"a.txt"}


def test_copy_absolute_outside(root: Path, outside: Path, copier: CopyFileWorker) -> None:
    before = snapshot(outside)
    (root / "a.txt").write_bytes(b"abc")

    with pytest.raises(PathRejected) as source_raised:
        run_worker(copier, {"source": str(outside / "secret.txt"), "destination": "copy.txt"})
    with pytest.raises(PathRejected) as destination_raised:
        run_worker(copier, {"source": "a.txt", "destination": str(outside / "new.txt")})

    assert str(outside / "secret.txt") in str(source_raised.value)
    assert "outside" in str(source_raised.value)
    assert str(outside / "new.txt") in str(destination_raised.value)
    assert snapshot(outside) == before


def test_copy_missing_destination_folder(root: Path, copier: CopyFileWorker) -> None:
    (root / "a.txt").write_bytes(b"abc")

    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "a.txt", "destination": "no/such/folder/a.txt"})

    assert str(root / "no" / "such" / "folder") in str(raised.value)
    assert "create the folder" in str(raised.value)
    assert set(snapshot(root)) == {"a.txt"}


def test_copy_existing_destination(root: Path, copier: CopyFileWorker) -> None:
    (root / "a.txt").write_bytes(b"abc")
    (root / "b.txt").write_bytes(b"keep me")

    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "a.txt", "destination": "b.txt"})

    assert str(root / "b.txt") in str(raised.value)
    assert "overwrite" in str(raised.value)
    assert (root / "b.txt").read_bytes() == b"keep me"
    assert temp_files(root) == []


def test_copy_destination_directory(root: Path, copier: CopyFileWorker) -> None:
    (root / "a.txt").write_bytes(b"abc")
    (root / "folder").mkdir()

    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "a.txt", "destination": "folder", "overwrite": True})

    assert str(root / "folder") in str(raised.value)
    assert "directory" in str(raised.value)
    assert list((root / "folder").iterdir()) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_copy_onto_itself(root: Path, copier: CopyFileWorker, overwrite: bool) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 17)
    (root / "a.bin").write_bytes(data)

    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "a.bin", "destination": str(root / "a.bin"), "overwrite": overwrite})

    assert str(root / "a.bin") in str(raised.value)
    assert "onto itself" in str(raised.value)
    assert (root / "a.bin").read_bytes() == data
    assert set(snapshot(root)) == {"a.bin"}


@pytest.mark.parametrize("overwrite", [False, True])
def test_copy_onto_hard_link(root: Path, copier: CopyFileWorker, overwrite: bool) -> None:
    data = os.urandom(CHUNK_SIZE + 5)
    (root / "a.bin").write_bytes(data)
    os.link(root / "a.bin", root / "b.bin")

    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "a.bin", "destination": "b.bin", "overwrite": overwrite})

    assert str(root / "a.bin") in str(raised.value)
    assert "same file" in str(raised.value)
    assert (root / "a.bin").read_bytes() == data
    assert (root / "a.bin").stat().st_ino == (root / "b.bin").stat().st_ino
    assert temp_files(root) == []


def test_copy_onto_symlink_alias(root: Path, copier: CopyFileWorker) -> None:
    (root / "a.txt").write_bytes(b"abc")
    (root / "alias").symlink_to("a.txt")

    with pytest.raises(CopyError) as raised:
        run_worker(copier, {"source": "a.txt", "destination": "alias", "overwrite": True})

    assert "onto itself" in str(raised.value)
    assert (root / "a.txt").read_bytes() == b"abc"


def test_copy_unknown_field(copier: CopyFileWorker) -> None:
    with pytest.raises(InvalidConfig) as raised:
        copier.validate_config({"source": "a", "destination": "b", "follow": True})

    assert raised.value.detail[0]["field"] == "follow"


# copyfile: status and info ------------------------------------------------------


def test_copy_disabled_without_roots() -> None:
    copier = CopyFileWorker([])

    assert "--copy-root" in copier.disabled_reason()
    assert copier.info()["status"] == "disabled"
    assert copier.info()["limits"]["roots"] == []


def test_copy_info_lists_roots(root: Path, copier: CopyFileWorker) -> None:
    info = copier.info()

    assert copier.disabled_reason() is None
    assert info["status"] == "enabled"
    assert info["limits"]["roots"] == [str(root)]
    assert info["limits"]["max_tasks"] == 10


# PathPolicy ----------------------------------------------------------------------


def test_policy_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        PathPolicy([tmp_path / "absent"])

    assert str(tmp_path / "absent") in str(raised.value)


def test_policy_file_root(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"")

    with pytest.raises(ConfigurationError) as raised:
        PathPolicy([tmp_path / "plain"])

    assert str(tmp_path / "plain") in str(raised.value)
    assert "not a directory" in str(raised.value)


def test_policy_resolves_relative(root: Path) -> None:
    policy = PathPolicy([root])

    assert policy.resolve("a/b.txt") == root / "a" / "b.txt"
    assert policy.resolve("a/../b.txt") == root / "b.txt"
    assert policy.resolve(str(root / "c.txt")) == root / "c.txt"


class SwappingPolicy(PathPolicy):
    """Policy that swaps the folder 'sub' for a symlink right after each path check."""

    def __init__(self, root: Path, target: Path) -> None:
        super().__init__([root])
        self.root = root
        self.target = target

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        resolved = super().resolve(path)
        sub = self.root / "sub"
        if sub.is_dir() and not sub.is_symlink():
            for child in sub.iterdir():
                child.unlink()
            sub.rmdir()
            sub.symlink_to(self.target, target_is_directory=True)
        return resolved


def test_policy_swap_before_read(root: Path, outside: Path) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "secret.txt").write_bytes(b"inside")
    policy = SwappingPolicy(root, outside)

    with pytest.raises(PathRejected) as raised:
        policy.open_source("sub/secret.txt")

    assert str(root / "sub") in str(raised.value)
    assert "symbolic link" in str(raised.value)


def test_policy_swap_before_write(root: Path, outside: Path) -> None:
    before = snapshot(outside)
    (root / "sub").mkdir()
    policy = SwappingPolicy(root, outside)

    with pytest.raises(PathRejected) as raised:
        with policy.atomic_write("sub/new.txt") as target:
            target.write(b"must not land outside")

    assert str(root / "sub") in str(raised.value)
    assert snapshot(outside) == before


def test_policy_final_symlink_swap(root: Path, outside: Path) -> None:
    (root / "file.txt").write_bytes(b"inside")

    class FinalSwap(PathPolicy):
        def resolve(self, path: str | os.PathLike[str]) -> Path:
            resolved = super().resolve(path)
            if not (root / "file.txt").is_symlink():
                (root / "file.txt").unlink()
                (root / "file.txt").symlink_to(outside / "secret.txt")
            return resolved

    with pytest.raises(PathRejected) as raised:
        FinalSwap([root]).open_source("file.txt")

    assert str(root / "file.txt") in str(raised.value)


def test_atomic_write_failure_cleans(root: Path) -> None:
    policy = PathPolicy([root])

    with pytest.raises(RuntimeError):
        with policy.atomic_write("new.txt") as target:
            target.write(b"partial")
            raise RuntimeError("stop")

    assert snapshot(root) == {}


def test_atomic_write_no_overwrite(root: Path) -> None:
    policy = PathPolicy([root])
    (root / "taken.txt").write_bytes(b"first")

    with pytest.raises(FileExistsError):
        with policy.atomic_write("taken.txt") as target:
            target.write(b"second")

    assert (root / "taken.txt").read_bytes() == b"first"
    assert snapshot(root) == {"taken.txt": b"first"}


def test_atomic_write_race_loses(root: Path) -> None:
    policy = PathPolicy([root])

    with pytest.raises(FileExistsError):
        with policy.atomic_write("late.txt") as target:
            target.write(b"mine")
            (root / "late.txt").write_bytes(b"theirs")

    assert (root / "late.txt").read_bytes() == b"theirs"
    assert temp_files(root) == []


# ifconfig ------------------------------------------------------------------------


def test_ifconfig_lists_loopback() -> None:
    result = run_worker(IfconfigWorker(), {})
    interfaces = {entry["name"]: entry for entry in result["interfaces"]}
    loopback = interfaces["lo"]
    ipv4 = [(entry["address"], entry["prefix_length"]) for entry in loopback["ipv4"]]

    assert ("127.0.0.1", 8) in ipv4
    assert loopback["is_up"] is True
    assert isinstance(loopback["mtu"], int)
    assert [entry["name"] for entry in result["interfaces"]] == sorted(interfaces)


def test_ifconfig_rejects_config() -> None:
    with pytest.raises(InvalidConfig):
        IfconfigWorker().validate_config({"interface": "lo"})


@pytest.mark.parametrize(
    ("netmask", "expected"),
    [
        ("255.0.0.0", 8),
        ("255.255.255.0", 24),
        ("255.255.255.255", 32),
        ("0.0.0.0", 0),
        ("ffff:ffff:ffff:ffff::", 64),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128),
        ("255.0.255.0", None),
        (None, None),
        ("not a mask", None),
    ],
)
def test_prefix_length(netmask: str | None, expected: int | None) -> None:
    assert prefix_length(netmask) == expected


# sysctl --------------------------------------------------------------------------


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    folder = tmp_path / "proc-sys"
    values = {
        "net/ipv4/ip_forward": "1\n",
        "net/ipv4/ip_local_port_range": "32768\t60999\n",
        "kernel/ostype": "Linux\n",
        "kernel/pid_max": "4194304\n",
        "vm/swappiness": "60\n",
    }
    for name, value in values.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
    return folder


def test_sysctl_real_proc() -> None:
    if not Path("/proc/sys/kernel/ostype").exists():
        pytest.skip("/proc/sys exists only on Linux")

    result = run_worker(SysctlWorker(), {"checks": [{"key": "kernel.ostype", "expected": "Linux"}]})

    assert result["checks"][0]["value"] == "Linux"
    assert result["checks"][0]["ok"] is True
    assert result["ok"] is True


def test_sysctl_unknown_key(proc_root: Path) -> None:
    result = run_worker(SysctlWorker(proc_root), {"checks": [{"key": "net.ipv4.no_such_key", "expected": 1}]})
    check = result["checks"][0]

    assert check["ok"] is False
    assert check["value"] is None
    assert "unknown key 'net.ipv4.no_such_key'" in check["error"]
    assert result["ok"] is False


def test_sysctl_unknown_key_unchecked(proc_root: Path) -> None:
    result = run_worker(SysctlWorker(proc_root), {"checks": [{"key": "fs.absent"}]})

    assert result["checks"][0]["ok"] is False
    assert result["ok"] is False


def test_sysctl_group_key(proc_root: Path) -> None:
    result = run_worker(SysctlWorker(proc_root), {"checks": [{"key": "net.ipv4"}]})

    assert "group of keys" in result["checks"][0]["error"]
    assert result["checks"][0]["ok"] is False


@pytest.mark.parametrize(
    ("key", "expected", "op", "ok"),
    [
        ("net.ipv4.ip_forward", 1, "eq", True),
        ("net.ipv4.ip_forward", "1", "eq", True),
        ("net.ipv4.ip_forward", 1.0, "eq", True),
        ("net.ipv4.ip_forward", 0, "eq", False),
        ("net.ipv4.ip_forward", 0, "ne", True),
        ("kernel.pid_max", 32768, "gt", True),
        ("kernel.pid_max", 32768, "lt", False),
        ("kernel.pid_max", 4194304, "ge", True),
        ("kernel.pid_max", 4194304, "le", True),
        ("vm.swappiness", "100", "lt", True),
        ("vm.swappiness", 10, "le", False),
        ("kernel.ostype", "Linux", "eq", True),
        ("kernel.ostype", "Darwin", "ne", True),
        ("net.ipv4.ip_local_port_range", "32768 60999", "eq", True),
        ("net.ipv4.ip_local_port_range", "32768   60999", "eq", True),
    ],
)
def test_sysctl_compare(proc_root: Path, key: str, expected: Any, op: str, ok: bool) -> None:
    result = run_worker(SysctlWorker(proc_root), {"checks": [{"key": key, "expected": expected, "op": op}]})

    assert result["checks"][0]["ok"] is ok
    assert result["checks"][0]["error"] is None


def test_sysctl_value_normalised(proc_root: Path) -> None:
    result = run_worker(SysctlWorker(proc_root), {"checks": [{"key": "net.ipv4.ip_local_port_range"}]})
    check = result["checks"][0]

    assert check["value"] == "32768 60999"
    assert check["ok"] is None
    assert result["ok"] is True


def test_sysctl_ordering_non_numeric(proc_root: Path) -> None:
    result = run_worker(SysctlWorker(proc_root), {"checks": [{"key": "kernel.ostype", "expected": 3, "op": "gt"}]})
    check = result["checks"][0]

    assert check["ok"] is False
    assert "'Linux' is not a number" in check["error"]
    assert check["value"] == "Linux"


def test_sysctl_mismatch_reported(proc_root: Path) -> None:
    config = {
        "checks": [
            {"key": "net.ipv4.ip_forward", "expected": 0},
            {"key": "kernel.ostype", "expected": "Linux"},
        ]
    }

    result = run_worker(SysctlWorker(proc_root), config)

    assert result["ok"] is False
    assert result["checks"][0]["ok"] is False
    assert result["checks"][1]["ok"] is True


def test_sysctl_mismatch_fails(proc_root: Path) -> None:
    config = {
        "checks": [
            {"key": "net.ipv4.ip_forward", "expected": 0},
            {"key": "kernel.ostype", "expected": "Linux"},
            {"key": "no.such.key"},
        ],
        "fail_on_mismatch": True,
    }

    with pytest.raises(SysctlMismatch) as raised:
        run_worker(SysctlWorker(proc_root), config)

    message = str(raised.value)
    assert "net.ipv4.ip_forward" in message
    assert "no.such.key" in message
    assert "kernel.ostype" not in message
    assert "2 of 3" in message
    assert len(raised.value.detail["checks"]) == 3


def test_sysctl_all_ok_passes(proc_root: Path) -> None:
    config = {"checks": [{"key": "kernel.ostype", "expected": "Linux"}], "fail_on_mismatch": True}

    result = run_worker(SysctlWorker(proc_root), config)

    assert result["ok"] is True


def test_sysctl_symlink_out(proc_root: Path, outside: Path) -> None:
    (proc_root / "kernel" / "leak").symlink_to(outside / "secret.txt")

    result = run_worker(SysctlWorker(proc_root), {"checks": [{"key": "kernel.leak"}]})
    check = result["checks"][0]

    assert check["value"] is None
    assert check["ok"] is False
    assert "rejected" in check["error"]


@pytest.mark.parametrize("key", ["../etc", "net/ipv4/ip_forward", "net..ipv4", ".net", "net.", "", "/etc/passwd", "a b"])
def test_sysctl_bad_key(key: str) -> None:
    with pytest.raises(ValidationError):
        SysctlCheck(key=key)


def test_sysctl_dotdot_rejected() -> None:
    with pytest.raises(InvalidConfig) as raised:
        SysctlWorker().validate_config({"checks": [{"key": "../etc"}]})

    assert raised.value.detail[0]["field"] == "checks.0.key"
    assert raised.value.status == 422


def test_sysctl_needs_a_check() -> None:
    with pytest.raises(InvalidConfig) as raised:
        SysctlWorker().validate_config({"checks": []})

    assert raised.value.detail[0]["field"] == "checks"


def test_sysctl_disabled_without_proc(tmp_path: Path) -> None:
    worker = SysctlWorker(tmp_path / "absent")

    assert str(tmp_path / "absent") in worker.disabled_reason()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
