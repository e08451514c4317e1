"""The file-path policy that every file-touching worker uses.

A `PathPolicy` confines a worker to a set of root folders that the server
owner chose. It resolves a user-given path and rejects it with `PathRejected`
when it leaves every root: through `..`, as an absolute path elsewhere, or
through a symbolic link that points out of the roots.

Checking a path and then opening it by name leaves a window in which someone
with write access inside a root can swap a folder for a symlink. So the open
helpers never pass the full path to the kernel. They open the root, then each
folder below it with `O_DIRECTORY | O_NOFOLLOW`, then the last component with
`O_NOFOLLOW`, each relative to the previous folder's descriptor (`dir_fd=`).
A symlink that appears after the check makes the open fail instead of being
followed.

Sources must be regular files with one hard link (see `open_source`), and
writes go through `atomic_write`: a temporary file in the destination folder
that is renamed into place, so a failed or canceled write leaves no partial
file, and an existing file is replaced only with `overwrite=True`.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tasky.errors import ConfigurationError, TaskyError

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# O_NONBLOCK keeps the open from hanging on a FIFO that was swapped in after
# the type check. The flag is cleared once fstat shows a regular file.
_SOURCE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

# Keeps the temporary name ('.' + name + '.' + 12 hex digits + '.tmp') within
# the 255-byte NAME_MAX of Linux file systems.
_TEMP_STEM_MAX = 200


class PathRejected(TaskyError, PermissionError):
    """A path breaks the file-path policy; the message names the path and the rule."""

    code = "path_rejected"


def describe_file_type(mode: int) -> str:
    """Return a short noun for the file type in `mode`, such as 'FIFO' or 'directory'."""
    kinds = [
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ]
    for test, name in kinds:
        if test(mode):
            return name
    return "special file"


class PathPolicy:
    """Confinement of file access to a list of root folders.

    Roots are resolved once, at construction, so a root given as a symlink is
    confined to the folder that the symlink pointed to then. An empty list is
    allowed and rejects every path.

    Hard links: a regular file with more than one hard link is rejected as a
    source unless `allow_hard_links` is true. A hard link inside a root to a
    file outside every root looks exactly like any other file, and no check
    can find where the other names are, so counting links is the only
    defence. With `fs.protected_hardlinks = 1`, Linux stops users from
    linking files that they do not own, but root can still do it.
    Destinations need no such rule, because `atomic_write` replaces the
    directory entry and never writes into an existing inode.
    """

    def __init__(self, roots: Sequence[Path | str], *, allow_hard_links: bool = False) -> None:
        resolved: list[Path] = []
        for root in roots:
            path = Path(root).expanduser()
            if not path.exists():
                raise ConfigurationError(f"root folder {str(root)!r} does not exist; create it or give another folder")
            if not path.is_dir():
                raise ConfigurationError(f"root folder {str(root)!r} is not a directory; give a folder")
            resolved.append(path.resolve(strict=True))
        self._roots = tuple(resolved)
        self.allow_hard_links = allow_hard_links

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """Resolve a user-given path to an absolute path inside a root, or raise `PathRejected`.

        A relative path is taken relative to the first root. Symbolic links
        are followed, and a link whose target stays inside a root is
        accepted. The last component need not exist.
        """
        text = os.fspath(path)
        if not self._roots:
            raise PathRejected(f"path {text!r} is rejected: no root folder is configured, so every path is rejected")
        if not text:
            raise PathRejected("path '' is rejected: it is empty; give a file path")
        if "\0" in text:
            raise PathRejected(f"path {text!r} is rejected: it contains a NUL byte")

        requested = Path(text)
        candidate = requested if requested.is_absolute() else self._roots[0] / requested

        # The lexical check gives '..' and absolute paths their own messages.
        # The check after resolve() below is the one that enforces the rule.
        normalized = Path(os.path.normpath(candidate))
        if self._root_of(normalized) is None:
            if ".." in requested.parts:
                raise PathRejected(f"path {text!r} is rejected: '..' leads outside {self._describe_roots()}")
            raise PathRejected(f"path {text!r} is rejected: it is outside {self._describe_roots()}")

        try:
            resolved = candidate.resolve(strict=False)
        except RuntimeError as exc:  # Python 3.11 raises RuntimeError on a symlink loop
            raise PathRejected(f"path {text!r} is rejected: {exc}") from None
        if self._root_of(resolved) is None:
            raise PathRejected(
                f"path {text!r} is rejected: a symbolic link in it points to {str(resolved)!r}, "
                f"outside {self._describe_roots()}"
            )
        return resolved

    def lstat(self, path: str | os.PathLike[str]) -> os.stat_result | None:
        """Return the status of `path` without following a final symlink, or None when it does not exist.

        Raises FileNotFoundError or NotADirectoryError when a parent folder is
        missing or not a folder, and `PathRejected` when the path leaves the roots.
        """
        resolved = self.resolve(path)
        dir_fd, name = self._open_parent(resolved)
        try:
            return _lstat_at(dir_fd, name)
        finally:
            os.close(dir_fd)

    def open_source(self, path: str | os.PathLike[str]) -> BinaryIO:
        """Open a regular file inside the roots for reading, without following symlinks.

        Raises FileNotFoundError when it does not exist and IsADirectoryError
        for a folder. Raises `PathRejected` for a path outside the roots, a
        FIFO, device or socket, or a file swapped for a symlink after the
        check. A file with more than one hard link is rejected too, unless
        `allow_hard_links` is set. The type is checked before the open, so a
        FIFO or device is never opened.
        """
        resolved = self.resolve(path)
        dir_fd, name = self._open_parent(resolved)
        try:
            before = _lstat_at(dir_fd, name)
            if before is None:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(resolved))
            self._check_source(resolved, before)

            try:
                fd = os.open(name, _SOURCE_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise PathRejected(
                        f"source {str(resolved)!r} is rejected: it was replaced by a symbolic link while being "
                        "opened, and symbolic links are not followed at open time"
                    ) from None
                raise OSError(exc.errno, exc.strerror, str(resolved)) from None
        finally:
            os.close(dir_fd)

        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
                raise PathRejected(f"source {str(resolved)!r} is rejected: it was replaced while being opened; try again")
            self._check_source(resolved, opened)
            os.set_blocking(fd, True)
            return open(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

    @contextmanager
    def atomic_write(
        self, path: str | os.PathLike[str], *, overwrite: bool = False, mode: int = 0o666
    ) -> Iterator[BinaryIO]:
        """Yield a temporary file that becomes `path` when the block ends without an exception.

        The temporary file is created next to `path`, in the same folder, with
        permission bits `mode` masked by the umask. On a clean exit it is
        flushed, fsynced and placed. Without `overwrite` it is hard-linked to
        the final name, which fails with FileExistsError if the name exists,
        even if it appeared during the write. With `overwrite` it is renamed
        over the final name. The folder is then fsynced. On any exception,
        including `TaskCanceled`, the temporary file is removed and nothing
        is placed.

        Raises FileExistsError for an existing `path` without `overwrite`,
        IsADirectoryError when `path` is a folder, FileNotFoundError when its
        folder is missing, and `PathRejected` when it leaves the roots.
        """
        resolved = self.resolve(path)
        dir_fd, name = self._open_parent(resolved)
        try:
            existing = _lstat_at(dir_fd, name)
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(resolved))
            if existing is not None and not overwrite:
                raise FileExistsError(errno.EEXIST, "File exists", str(resolved))

            temp_name = f".{name[:_TEMP_STEM_MAX]}.{secrets.token_hex(6)}.tmp"
            temp_fd = os.open(temp_name, _TEMP_FLAGS, mode, dir_fd=dir_fd)
            temp_exists = True
            try:
                with open(temp_fd, "wb") as temp_file:
                    yield temp_file
                    temp_file.flush()
                    os.fsync(temp_file.fileno())

                if overwrite:
                    os.replace(temp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                else:
                    # NOTE: link() fails with EPERM on file systems without hard
                    # links (vfat, some FUSE mounts). There every write without
                    # overwrite fails, because no fallback is implemented.
                    os.link(temp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                    os.unlink(temp_name, dir_fd=dir_fd)
                temp_exists = False
                os.fsync(dir_fd)
            finally:
                if temp_exists:
                    try:
                        os.unlink(temp_name, dir_fd=dir_fd)
                    except FileNotFoundError:
                        pass
        finally:
            os.close(dir_fd)

    # Internals ---------------------------------------------------------------

    def _root_of(self, path: Path) -> Path | None:
        for root in self._roots:
            if path.is_relative_to(root):
                return root
        return None

    def _describe_roots(self) -> str:
        if len(self._roots) == 1:
            return f"the root folder {str(self._roots[0])!r}"
        listed = ", ".join(repr(str(root)) for root in self._roots)
        return f"every root folder ({listed})"

    def _open_parent(self, resolved: Path) -> tuple[int, str]:
        """Open the folder that contains `resolved`, walking down from its root without following symlinks.

        Returns the folder's descriptor, which the caller closes, and the last
        component's name. `resolved` must come from `resolve`.
        """
        root = self._root_of(resolved)
        if root is None:
            raise PathRejected(f"path {str(resolved)!r} is rejected: it is outside {self._describe_roots()}")
        parts = resolved.relative_to(root).parts
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "Is a directory (a root folder)", str(resolved))

        fd = os.open(root, _DIRECTORY_FLAGS)
        walked = root
        try:
            for part in parts[:-1]:
                walked = walked / part
                try:
                    next_fd = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
                except OSError as exc:
                    # A symlink opened with O_DIRECTORY | O_NOFOLLOW fails with
                    # ENOTDIR, like a plain file, so lstat distinguishes the two.
                    found = _lstat_at(fd, part)
                    if found is not None and stat.S_ISLNK(found.st_mode):
                        raise PathRejected(
                            f"path {str(resolved)!r} is rejected: {str(walked)!r} was replaced by a symbolic link "
                            "after the path was checked, and symbolic links are not followed at open time"
                        ) from None
                    raise OSError(exc.errno, exc.strerror, str(walked)) from None
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def _check_source(self, resolved: Path, status: os.stat_result) -> None:
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(resolved))
        if stat.S_ISLNK(status.st_mode):
            raise PathRejected(
                f"source {str(resolved)!r} is rejected: it was replaced by a symbolic link after the path was "
                "checked, and symbolic links are not followed at open time"
            )
        if not stat.S_ISREG(status.st_mode):
            kind = describe_file_type(status.st_mode)
            raise PathRejected(f"source {str(resolved)!r} is rejected: it is a {kind}; only regular files can be read")
        if status.st_nlink > 1 and not self.allow_hard_links:
            raise PathRejected(
                f"source {str(resolved)!r} is rejected: it has {status.st_nlink} hard links, and another name could "
                "be outside the root folders; remove the other links, or ask the server owner to allow hard-linked sources"
            )


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
