"""Finding and reading the integrator's files, whatever stands at their paths.

A path in `connector.yaml` or under `mappings/` and `rules/` is text a contributor commits,
so it may name a symlink loop, a name too long for the file system, a FIFO (opening it for
reading would wait for a writer forever) or a device (`/dev/zero` never ends). Each of those
is a finding here, in the integrator's words, and no read goes past the size limit: a file
is opened without blocking, checked to be a regular file, and read for at most limit + 1
bytes, whatever its size claims.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from connector.diagnostics import Diagnostic, error

YAML_SUFFIXES = (".yaml", ".yml")

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def display(path: Path, root: Path) -> str:
    """A path as findings show it: relative to the project root when inside it (a path that
    cannot be resolved, a symlink loop, is shown as written)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop before 3.13
        pass
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def os_finding(exc: OSError, name: str, at: tuple[str, int, int] | None = None,
               path: Path | None = None) -> Diagnostic:
    """The finding for path `name` the system refused, at `at` (file, line, column: where
    the path is written) or on the file itself."""
    file, line, col = at or (name, 0, 0)
    number = exc.errno
    if number == errno.ELOOP:
        return error(file, line, col, "file-symlink-loop",
                     f"{name} is a symlink loop: following its links comes back to them",
                     "point the link at the real file, or remove it")
    if number == errno.ENAMETOOLONG:
        return error(file, line, col, "file-path-invalid",
                     f"{_short(name)} is too long a path for the file system",
                     "shorten it: a name has at most 255 bytes, a path at most 4,096")
    if number == errno.ENOTDIR:
        return error(file, line, col, "file-path-invalid",
                     f"{_short(name)}: a part of the path is a file, not a directory",
                     "correct the path")
    if number == errno.ENOENT:
        hint = ""
        if path is not None and path.is_symlink():
            hint = f"it is a symlink to {os.readlink(path)}, which does not exist"
        return error(file, line, col, "file-not-found", f"{_short(name)} does not exist", hint)
    return error(file, line, col, "file-unreadable", f"cannot read file: {exc.strerror}")


def _short(name: str) -> str:
    return name if len(name) <= 120 else f"{name[:60]}...{name[-40:]} ({len(name)} characters)"


def special_finding(mode: int, name: str,
                    at: tuple[str, int, int] | None = None) -> Diagnostic | None:
    """A finding for a path that is not a regular file (a directory, FIFO, device, socket)."""
    file, line, col = at or (name, 0, 0)
    for test, what in _KINDS:
        if test(mode):
            return error(file, line, col, "file-not-regular",
                         f"{_short(name)} is {what}, not a regular file",
                         "put the YAML file itself there (a symlink to a regular file is fine)")
    return None


def problem(path: Path, name: str, at: tuple[str, int, int] | None = None) -> Diagnostic | None:
    """Why `path` cannot be read as a file (missing, a loop, too long, not regular), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return os_finding(exc, name, at, path)
    except ValueError:  # an embedded NUL byte
        file, line, col = at or (name, 0, 0)
        return error(file, line, col, "file-path-invalid", "the path holds a NUL character")
    return special_finding(mode, name, at)


def exists(path: Path) -> bool:
    """Whether something stands at `path` (a loop or a bad path does: it is reported then)."""
    try:
        os.lstat(path)
    except (OSError, ValueError) as exc:
        return isinstance(exc, OSError) and exc.errno not in (errno.ENOENT, errno.ENOTDIR)
    return True


def read_bytes(path: Path, name: str, limit: int) -> tuple[bytes | None, list[Diagnostic]]:
    """The bytes of a regular file of at most `limit` bytes, or the finding that refuses it.

    Opened non-blocking (a FIFO then opens at once and is refused by its type), checked with
    `fstat` on the open descriptor (no race with a swapped path), and read for at most
    limit + 1 bytes, so a file that grows, or lies about its size, is never read whole."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return None, [os_finding(exc, name, path=path)]
    except ValueError:
        return None, [error(name, 0, 0, "file-path-invalid", "the path holds a NUL character")]
    try:
        info = os.fstat(fd)
        special = special_finding(info.st_mode, name)
        if special is not None:
            return None, [special]
        if info.st_size > limit:
            return None, [_too_large(name, f"file is {info.st_size} bytes", limit)]
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        return None, [os_finding(exc, name)]
    finally:
        os.close(fd)
    if size > limit:
        return None, [_too_large(name, "file is larger than that", limit)]
    return b"".join(chunks), []


def _too_large(name: str, what: str, limit: int) -> Diagnostic:
    return error(name, 1, 1, "yaml-too-large", f"{what}; the limit is {limit} bytes",
                 "split it, or check that this is the file you meant")


def yaml_files(directory: Path) -> list[Path]:
    """The YAML files under `directory`, sorted, descending into symlinked directories once
    each (a link back up is not followed again). Entries that are not directories are all
    listed, a broken link or a loop included, so reading them reports them."""
    return sorted(_walk(directory, set()))


def _walk(directory: Path, seen: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        info = os.stat(directory)
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    if (info.st_dev, info.st_ino) in seen:
        return
    seen.add((info.st_dev, info.st_ino))
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        path = Path(entry.path)
        if is_dir:
            yield from _walk(path, seen)
        elif path.suffix in YAML_SUFFIXES:
            yield path
