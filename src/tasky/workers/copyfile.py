"""The `copyfile` example worker: copies one file inside the configured copy roots.

All path checks live in `tasky.files.PathPolicy`; this module turns the
failures that a user can fix into `CopyError` messages and runs the chunked,
cancelable copy.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky.context import TaskContext
from tasky.errors import InvalidConfig, TaskyError
from tasky.files import PathPolicy, PathRejected, describe_file_type
from tasky.worker import Worker

CHUNK_SIZE = 1024 * 1024


class CopyError(TaskyError, OSError):
    """Error of a copy that cannot start or that failed; the message names the path and the fix."""

    code = "copy_failed"


class CopyFileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        ...,
        min_length=1,
        description="File to copy. A relative path starts at the first copy root; an absolute path must be inside a root.",
    )
    destination: str = Field(
        ...,
        min_length=1,
        description="Path of the new file, including its name. Its folder must exist inside a copy root.",
    )
    overwrite: bool = Field(False, description="Replace the destination if it already exists.")


class CopyFileWorker(Worker):
    name = "copyfile"
    description = """
        Copy one regular file to a new path, reporting progress in bytes.

        Both paths must be inside a copy root: a folder that the server owner
        chose with --copy-root. The roots are listed under limits.roots, and a
        relative path starts at the first root. The copy is written to a
        temporary file in the destination folder and renamed into place, so a
        failed or canceled copy leaves no partial file. An existing destination
        is replaced only with "overwrite": true. Symbolic links that lead out of
        the roots, FIFOs, devices, sockets and sources with more than one hard
        link are rejected. The result gives both resolved paths, the byte count
        and the SHA-256 of the copied bytes.
        Config: {"source": "in/report.csv", "destination": "out/report.csv"}.
        """
    config = CopyFileConfig
    max_tasks = 10
    restartable = True
    examples = [{"source": "in/report.csv", "destination": "out/report.csv"}]

    def __init__(self, roots: Sequence[Path | str], *, allow_hard_links: bool = False) -> None:
        self.policy = PathPolicy(roots, allow_hard_links=allow_hard_links)

    @property
    def roots(self) -> tuple[Path, ...]:
        return self.policy.roots

    def disabled_reason(self) -> str | None:
        if not self.roots:
            return "no copy root is configured, so every copy would be rejected; start the server with --copy-root DIR"
        return None

    def info(self) -> dict[str, Any]:
        described = super().info()
        described["limits"]["roots"] = [str(root) for root in self.roots]
        return described

    def check_config(self, config: BaseModel) -> None:
        """Reject a source or destination outside the copy roots before the task is created.

        `perform` checks both paths again, because the files can change
        before the task runs.
        """
        rejected = []
        for field in ("source", "destination"):
            try:
                self.policy.resolve(getattr(config, field))
            except PathRejected as exc:
                rejected.append({"field": field, "message": str(exc), "type": "path_rejected"})
        if rejected:
            messages = " Also: ".join(item["message"] for item in rejected)
            raise InvalidConfig(f"invalid config for worker 'copyfile': {messages}", detail=rejected)

    def perform(self, config: CopyFileConfig, ctx: TaskContext) -> dict[str, Any]:
        source = self.policy.resolve(config.source)
        destination = self.policy.resolve(config.destination)
        if source == destination:
            raise CopyError(f"cannot copy {str(source)!r} onto itself; give another destination")

        source_status = self._status_of_source(source)
        destination_status = self._status_of_destination(destination)
        self._check_destination(source, source_status, destination, destination_status, config.overwrite)

        try:
            source_file = self.policy.open_source(source)
        except FileNotFoundError:
            raise _missing_source(source) from None
        except IsADirectoryError:
            raise CopyError(
                f"cannot copy {str(source)!r}: it is a directory; copyfile copies one regular file, so give a file path"
            ) from None

        with source_file:
            size = os.fstat(source_file.fileno()).st_size
            copied, digest = self._copy(source_file, source, destination, size, config.overwrite, ctx)

        ctx.log(f"copied {copied} bytes from {source} to {destination}")
        return {"source": str(source), "destination": str(destination), "bytes": copied, "sha256": digest}

    def _status_of_source(self, source: Path) -> os.stat_result:
        try:
            status = self.policy.lstat(source)
        except (FileNotFoundError, NotADirectoryError):
            status = None
        if status is None:
            raise _missing_source(source)
        return status

    def _status_of_destination(self, destination: Path) -> os.stat_result | None:
        try:
            return self.policy.lstat(destination)
        except (FileNotFoundError, NotADirectoryError):
            raise CopyError(
                f"cannot copy to {str(destination)!r}: its folder {str(destination.parent)!r} does not exist; "
                "create the folder first"
            ) from None

    def _check_destination(
        self,
        source: Path,
        source_status: os.stat_result,
        destination: Path,
        existing: os.stat_result | None,
        overwrite: bool,
    ) -> None:
        if existing is None:
            return
        if (existing.st_dev, existing.st_ino) == (source_status.st_dev, source_status.st_ino):
            raise CopyError(
                f"cannot copy {str(source)!r} to {str(destination)!r}: both names are hard links to the same file; "
                "give another destination"
            )
        if stat.S_ISDIR(existing.st_mode):
            raise CopyError(
                f"cannot copy to {str(destination)!r}: it is a directory; give the full path of the new file, "
                "including its name"
            )
        if not overwrite:
            raise CopyError(
                f"cannot copy to {str(destination)!r}: it already exists; set \"overwrite\": true to replace it "
                "or give another destination"
            )
        if not stat.S_ISREG(existing.st_mode):
            kind = describe_file_type(existing.st_mode)
            raise CopyError(f"cannot replace {str(destination)!r}: it is a {kind}; only regular files are replaced")

    def _copy(
        self,
        source_file: Any,
        source: Path,
        destination: Path,
        size: int,
        overwrite: bool,
        ctx: TaskContext,
    ) -> tuple[int, str]:
        """Copy in chunks into a temporary file, then place it; return the byte count and SHA-256."""
        mode = stat.S_IMODE(os.fstat(source_file.fileno()).st_mode) & 0o777
        digest = hashlib.sha256()
        copied = 0
        try:
            with self.policy.atomic_write(destination, overwrite=overwrite, mode=mode) as target:
                while True:
                    ctx.checkpoint()
                    chunk = source_file.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    target.write(chunk)
                    digest.update(chunk)
                    copied += len(chunk)
                    ctx.progress(copied, max(size, copied), f"copied {copied} of {size} bytes")
        except TaskyError:
            raise
        except FileExistsError:
            raise CopyError(
                f"cannot copy to {str(destination)!r}: it appeared during the copy; "
                "set \"overwrite\": true to replace it or give another destination"
            ) from None
        except OSError as exc:
            raise CopyError(
                f"copying {str(source)!r} to {str(destination)!r} failed: {exc.strerror or exc}; "
                "nothing was written, so fix the cause and run the task again"
            ) from None
        return copied, digest.hexdigest()


def _missing_source(source: Path) -> CopyError:
    return CopyError(f"cannot copy {str(source)!r}: the source file does not exist; check the path")
