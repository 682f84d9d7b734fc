"""Output folders of the command line and the experiment writers, checked before any work.

:func:`output_folder` is called by every writer (figures, experiments, peers) *before* it
computes anything, so that a bad ``--out`` is reported at once, naming the path and the fix,
rather than as the system's bare ``[Errno 17] File exists`` after minutes of work.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import FMInputError

__all__ = [
    "output_folder",
    "check_output_folder",
    "describe_os_error",
    "atomic_write",
    "append_complete",
    "TEMP_TOKEN",
    "temp_prefix",
    "temp_pattern",
]


def check_output_folder(out: str | os.PathLike[str]) -> Path:
    """Refuse an ``--out`` that cannot hold results, without creating anything.

    Refused: an empty name (it would write into the current folder unasked), a path that is a
    file, a symbolic link that points at itself or in a loop, a link to nothing, and a folder
    (or its nearest existing parent) that this user cannot write to."""
    text = os.fspath(out)
    if text.strip() == "":
        raise FMInputError("--out is empty; name a folder, e.g. --out results (use --out . for the current folder)")
    path = Path(text)
    try:
        resolved = path.resolve(strict=False)
    except (RuntimeError, OSError) as error:  # a symlink loop (RuntimeError before Python 3.13)
        raise FMInputError(
            f"--out {path} is a symbolic link that loops ({error}); remove the link or name another folder"
        ) from None
    if path.is_symlink() and not path.exists():
        raise FMInputError(
            f"--out {path} is a symbolic link to {os.readlink(path)}, which does not exist (or loops back); "
            "create the target folder, remove the link, or name another folder"
        )
    if path.exists() and not path.is_dir():
        raise FMInputError(f"--out {path} is a file, not a folder; name a folder, or move the file away")
    existing = resolved
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FMInputError(
            f"--out {path}: {existing} is a file, so no folder can be made under it; name another folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FMInputError(
            f"--out {path}: cannot write to {existing} (permission denied); name a folder you can write to, "
            f"or change the permissions of {existing}"
        )
    return path


@contextlib.contextmanager
def output_folder(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Check ``out`` (:func:`check_output_folder`), create it, and yield it; folders created here are
    removed again on the way out if they are still empty (a failed run leaves no new empty folder)."""
    path = check_output_folder(out)
    created = [p for p in [path, *path.parents] if not p.exists() and not p.is_symlink()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FMInputError(describe_os_error(error, path)) from None
    try:
        yield path
    finally:
        for folder in created:  # innermost first; only folders made here, and only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def describe_os_error(error: OSError, fallback: str | os.PathLike[str] | None = None) -> str:
    """The system's error in words that name the path and a fix."""
    path = error.filename if error.filename is not None else fallback
    where = f" {path}" if path is not None else ""
    reason = error.strerror or str(error)
    fixes = {
        "EACCES": "check its permissions, or pass another --out folder",
        "EPERM": "check its permissions, or pass another --out folder",
        "EROFS": "the disk is read-only: pass an --out folder on a writable disk",
        "ENOSPC": "the disk is full: free some space (finished work is kept) and run the command again",
        "EEXIST": "a file of that name is in the way: move it, or pass another --out folder",
        "ENOTDIR": "a file stands where a folder is needed: move it, or pass another --out folder",
        "ELOOP": "a symbolic link loops: remove or fix it",
        "ENOENT": "the folder does not exist: create it, or pass another --out folder",
    }
    import errno

    name = errno.errorcode.get(error.errno or 0, "")
    fix = fixes.get(name, "check the path and its permissions, then run the command again")
    return f"cannot use{where}: {reason}; {fix}"


# --------------------------------------------------------------------------- the one writer

TEMP_TOKEN = "fmedu"


def temp_prefix(name: str) -> str:
    """``.NAME.fmedu-PID-``: the package's temporary files, told apart from anything else by name."""
    return f".{name}.{TEMP_TOKEN}-{os.getpid()}-"


def temp_pattern(name: str) -> re.Pattern[str]:
    """Every temporary name :func:`atomic_write` can make for the file ``name``, and nothing else."""
    return re.compile(rf"\.{re.escape(name)}\.{TEMP_TOKEN}-\d+-[A-Za-z0-9_]+\.tmp")


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Replace ``path`` by ``data`` all at once: a unique temporary file in the same folder,
    flushed to disk, then renamed. On any failure (a full disk) the temporary file is removed
    and ``path`` is left as it was. A symbolic link is followed: its target is replaced and the
    link kept, so that the link and what it points to never disagree. Every results and figure
    file of the package is replaced through this function. Returns ``path`` as given."""
    given = Path(path)
    target = Path(os.path.realpath(given))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return given


def append_complete(path: str | os.PathLike[str], text: str) -> None:
    """Append ``text`` (complete lines) in one flushed write; a link is followed. A failed write
    (a full disk) is cut back, so that the file still ends where it ended before."""
    if text and not text.endswith("\n"):
        raise ValueError("append_complete appends complete lines only (text must end with a newline)")
    with open(path, "a", encoding="utf-8", newline="") as fh:
        size = fh.tell()
        try:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                fh.truncate(size)
            raise
