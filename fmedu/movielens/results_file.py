"""Results files of the MovieLens experiments: strict reading, resuming, atomic writes, one writer.

:mod:`fmedu.movielens.experiments` writes a sweep's rows through this module, and chapter 07
reads them back with :func:`load_results`. The format: ``NAME.csv`` with the header ``HEADER``
(columns ``COLUMNS``, documented in :mod:`fmedu.movielens.experiments`), one block of rows per
finished run (epochs 1 … E in order), appended in one flushed write per chunk of runs.

* Reading is strict (:func:`load_results`, :func:`finished_runs`): a damaged line, a row of
  another configuration, a run twice or rows out of order raise
  :class:`fmedu.errors.ResultsError` naming the file and line; only a last run block cut off
  by an interruption is set aside (:class:`ResultsWarning`), to be redone.
* Writing never loses finished work: :func:`append_rows` cuts a failed append back to its last
  complete row; :func:`atomic_write` replaces a file all at once.
* One session at a time: :func:`exclusive` holds ``NAME.lock``, naming its holder.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import math
import os
import platform
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ResultsError
from ..paths import TEMP_TOKEN, append_complete, atomic_write, fsync_dir, temp_pattern, temp_prefix
from .presets import Preset

try:
    import fcntl
except ImportError:  # not on Windows: an exclusive create stands in (see exclusive)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "COLUMNS",
    "HEADER",
    "ResultsWarning",
    "load_results",
    "finished_runs",
    "check_counts",
    "format_rows",
    "append_rows",
    "atomic_write",
    "read_prefix",
    "read_provenance",
    "exclusive",
    "remove_stale_temporaries",
]

COLUMNS = [
    "preset",
    "variant",
    "join",
    "method",
    "eta",
    "eta_index",
    "attempt",
    "seed",
    "epoch",
    "train_loss",
    "val_loss",
    "test_loss",
    "v_rms",
    "w0",
    "n_train",
    "n_val",
    "n_test",
]

# --------------------------------------------------------------------------- results file


class ResultsWarning(UserWarning):
    """Rows of an unfinished run were dropped from a results file; the run is trained again."""


HEADER = ",".join(COLUMNS) + "\n"
_INT_COLUMNS = ("eta_index", "attempt", "seed", "epoch", "n_train", "n_val", "n_test")
_FLOAT_COLUMNS = ("eta", "train_loss", "val_loss", "test_loss", "v_rms", "w0")
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|-?inf")
_REPAIR = (
    "restore the file from a backup or version control, or move it away to start over "
    "(finished runs are never dropped silently)"
)


def _run_key(row) -> tuple:
    return (row["variant"], row["method"], int(row["eta_index"]), int(row["attempt"]))


def _describe(key: tuple) -> str:
    variant, method, j, a = key
    return f"run (variant {variant}, method {method}, eta_index {j}, attempt {a})"


@dataclass
class _ResultsFile:
    """A results CSV read line by line: its complete rows and where a cut-off last write starts."""

    path: Path
    raw: bytes
    rows: list[dict]  # complete lines, in file order, numbers converted
    lines: list[int]  # 1-based line number of each row
    ends: list[int]  # byte offset just after each row's newline
    header_end: int  # byte offset just after the header line (0 if there is none)
    cut_line: int | None  # line number of a last line without its newline (an interrupted write)


def _parse_row(text: str, path: Path, lineno: int) -> dict:
    fields = next(csv.reader([text]), [])
    if len(fields) != len(COLUMNS):
        raise ResultsError(
            f"{path}, line {lineno}: {len(fields)} fields where a row has {len(COLUMNS)} "
            f"({','.join(COLUMNS)}): the file is damaged; {_REPAIR}"
        )
    row: dict = dict(zip(COLUMNS, fields))
    for c in COLUMNS:
        value = row[c]
        if c in _INT_COLUMNS:
            ok = _INT.fullmatch(value) is not None and int(value) >= 0
            row[c] = int(value) if ok else value
        elif c in _FLOAT_COLUMNS:
            ok = _FLOAT.fullmatch(value) is not None
            row[c] = float(value) if ok else value
            ok = ok and (c != "eta" or (math.isfinite(row[c]) and row[c] > 0))
        else:
            ok = value != "" and value == value.strip()
        if not ok:
            raise ResultsError(f"{path}, line {lineno}: column {c} holds {value!r}: the file is damaged; {_REPAIR}")
    if row["epoch"] < 1 or row["seed"] != row["attempt"]:
        raise ResultsError(
            f"{path}, line {lineno}: epoch {row['epoch']}, seed {row['seed']}, attempt {row['attempt']} "
            f"(epochs count from 1 and attempt a uses seed a): the file is damaged; {_REPAIR}"
        )
    return row


def _read_results(path: Path) -> _ResultsFile:
    """Parse ``path`` strictly: a damaged line raises ResultsError naming the file and line; only
    a last line without its newline (a write cut off by an interruption) is set aside."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ResultsError(
            f"{path}, line 1: the file starts with a UTF-8 byte-order mark, so another program re-saved "
            f"it and it may differ elsewhere too; {_REPAIR}"
        )
    if b"\r" in raw:
        line = raw[: raw.index(b"\r")].count(b"\n") + 1
        raise ResultsError(
            f"{path}, line {line}: Windows (CRLF) line endings, written by an editor or by a git checkout "
            "with core.autocrlf; results files must keep Unix (LF) endings byte for byte. Fix: convert "
            "it back with `dos2unix FILE`, or check it out again with `git checkout -- FILE` (the "
            "repository's .gitattributes keeps results/ byte-exact, whatever core.autocrlf says)"
        )
    parsed = _ResultsFile(path, raw, [], [], [], 0, None)
    pos, lineno = 0, 0
    while pos < len(raw):
        lineno += 1
        nl = raw.find(b"\n", pos)
        if nl < 0:  # the last write was cut off inside this line
            if lineno == 1 and not HEADER.encode().startswith(raw[pos:]):
                raise ResultsError(f"{path}, line 1: not the results header {HEADER.strip()!r}; {_REPAIR}")
            parsed.cut_line = lineno
            break
        try:
            text = raw[pos:nl].decode("utf-8")
        except UnicodeDecodeError:
            raise ResultsError(f"{path}, line {lineno}: not UTF-8 text: the file is damaged; {_REPAIR}") from None
        if lineno == 1:
            if text + "\n" != HEADER:
                raise ResultsError(
                    f"{path}, line 1: {text[:120]!r} is not the results header {HEADER.strip()!r}: "
                    f"not a results file of this version, or damaged; {_REPAIR}"
                )
            parsed.header_end = nl + 1
        else:
            parsed.rows.append(_parse_row(text, path, lineno))
            parsed.lines.append(lineno)
            parsed.ends.append(nl + 1)
        pos = nl + 1
    return parsed


def load_results(path) -> list[dict]:
    """Rows of a results CSV as dicts with numbers converted (val_loss, test_loss may be NaN).

    A damaged file raises :class:`ResultsError` naming the file and line; a last line without
    its newline (a write in progress or cut off) is not a row and is skipped.
    """
    return _read_results(Path(path)).rows


def _check_row(row: dict, preset: Preset, epochs: int, path: Path, lineno: int) -> None:
    """Refuse a row that the configuration (all of ``preset``'s runs, ``epochs`` epochs) cannot produce."""
    other = (
        "the file holds runs of a different configuration; pass another --out folder, or move the "
        "file away to start over"
    )
    where = f"{path}, line {lineno}"
    if row["preset"] != preset.name:
        raise ResultsError(f"{where}: the row belongs to preset {row['preset']!r}, not {preset.name!r}: {other}")
    variants = {v.name: v for v in preset.variants}
    v = variants.get(row["variant"])
    if v is None or v.join != row["join"] or row["method"] not in v.etas:
        raise ResultsError(
            f"{where}: variant {row['variant']!r} (join {row['join']}) with method {row['method']!r} is not "
            f"part of preset {preset.name!r}: {other}"
        )
    etas = v.etas[row["method"]]
    if row["eta_index"] >= len(etas) or not math.isclose(row["eta"], etas[row["eta_index"]], rel_tol=1e-12):
        raise ResultsError(
            f"{where}: step size {row['eta']!r} at eta_index {row['eta_index']} is not this preset's "
            f"({len(etas)} step sizes for {row['method']}): {other}"
        )
    if row["epoch"] > epochs:
        raise ResultsError(
            f"{where}: epoch {row['epoch']}, but this configuration trains {epochs} epochs (another --epochs?): {other}"
        )


@dataclass
class _Resume:
    """What an existing results file contributes: its finished runs and the bytes to keep."""

    done: set
    kept: list[dict]
    keep_bytes: int  # the file is cut back to this length before new rows are appended
    dropped: list[str]  # what was set aside, in words


def _uniform_run_length(rows: list[dict]) -> int | None:
    """The number of epochs of every run block when all blocks have the same length, else None."""
    lengths, current = [], 0
    for row in rows:
        if row["epoch"] == 1 and current:
            lengths.append(current)
            current = 0
        current += 1
    lengths.append(current)
    return lengths[0] if len(set(lengths)) == 1 else None


def finished_runs(path: Path, preset: Preset, epochs: int) -> _Resume:
    """The finished runs of ``path`` for ``preset`` (all its runs) trained ``epochs`` epochs.

    A file is a sequence of run blocks (epochs 1 … E of one run, in order), as the sweep
    appends them; only the last block may be incomplete (an interrupted write): it and a
    cut-off last line are set aside, to be redone. Anything else (a damaged or foreign row, a
    run twice, a block cut short in the middle) raises :class:`ResultsError` naming the line.
    """
    if not path.exists():
        return _Resume(set(), [], 0, [])
    parsed = _read_results(path)
    blocks: list[list[int]] = []  # row positions of each run block, in file order
    first_line: dict[tuple, int] = {}
    counts: dict[str, tuple] = {}
    for i, row in enumerate(parsed.rows):
        lineno = parsed.lines[i]
        _check_row(row, preset, epochs, path, lineno)
        sizes = (row["n_train"], row["n_val"], row["n_test"])
        seen = counts.setdefault(row["variant"], (*sizes, lineno))
        if seen[:3] != sizes:
            raise ResultsError(
                f"{path}, line {lineno}: n_train, n_val, n_test = {sizes} but line {seen[3]} of "
                f"the same variant has {seen[:3]}: rows of different data set-ups; {_REPAIR}"
            )
        key = _run_key(row)
        if row["epoch"] == 1:
            if blocks and len(blocks[-1]) != epochs:
                last = blocks[-1]
                if _uniform_run_length(parsed.rows) == len(last):  # every run of the file stops there
                    raise ResultsError(
                        f"{path}: its runs were trained for {len(last)} epochs (lines {parsed.lines[0]}-"
                        f"{parsed.lines[last[-1]]}), not {epochs}: pass --epochs {len(last)} to resume them "
                        f"(or drop --epochs if {len(last)} is the preset's), or pass another --out folder "
                        f"for {epochs} epochs"
                    )
                raise ResultsError(
                    f"{path}, lines {parsed.lines[last[0]]}-{parsed.lines[last[-1]]}: "
                    f"{_describe(_run_key(parsed.rows[last[0]]))} stops after epoch {len(last)} of {epochs} "
                    f"although more rows follow (line {lineno}): the file was edited or damaged; {_REPAIR}"
                )
            if key in first_line:
                raise ResultsError(
                    f"{path}, line {lineno}: {_describe(key)} is already in the file (line {first_line[key]}): "
                    f"two sessions wrote into the same file; {_REPAIR}"
                )
            first_line[key] = lineno
            blocks.append([i])
        else:
            prev = parsed.rows[blocks[-1][-1]] if blocks else None
            if prev is None or _run_key(prev) != key or prev["epoch"] != row["epoch"] - 1:
                raise ResultsError(
                    f"{path}, line {lineno}: epoch {row['epoch']} of {_describe(key)} does not follow epoch "
                    f"{row['epoch'] - 1} of the same run: rows were reordered or lost; {_REPAIR}"
                )
            blocks[-1].append(i)
    dropped = []
    if parsed.cut_line is not None:
        dropped.append(f"line {parsed.cut_line} (cut off by an interrupted write)")
    if blocks and len(blocks[-1]) < epochs:
        last = blocks.pop()
        first, end = parsed.lines[last[0]], parsed.lines[last[-1]]
        dropped.append(
            f"{f'line {first}' if first == end else f'lines {first}-{end}'} "
            f"({_describe(_run_key(parsed.rows[last[0]]))} stopped after epoch {len(last)} of {epochs})"
        )
    done = {_run_key(parsed.rows[b[0]]) for b in blocks}
    kept = [parsed.rows[i] for b in blocks for i in b]
    keep_bytes = parsed.ends[blocks[-1][-1]] if blocks else parsed.header_end
    return _Resume(done, kept, keep_bytes, dropped)


def format_rows(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    for row in rows:
        writer.writerow({c: (repr(row[c]) if isinstance(row[c], float) else row[c]) for c in COLUMNS})
    return buf.getvalue()


_fsync_dir = fsync_dir
_temp_prefix = temp_prefix
_temp_pattern = temp_pattern


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` in one write, flushed to disk; a new file is created whole, with its header.
    A failed write (a full disk) is cut back so that the file ends with a complete row."""
    text = format_rows(rows)
    if not path.exists() or path.stat().st_size == 0:
        atomic_write(path, HEADER + text)
        return
    append_complete(path, text)


def read_provenance(path: Path, name: str) -> dict | None:
    if not path.exists():
        return None
    advice = (
        "restore it from a backup or version control, or move it away: the results CSV alone is "
        "enough to resume (its rows are checked against the configuration)"
    )
    try:
        prov = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path} is damaged ({error}); {advice}") from None
    if not isinstance(prov, dict) or not isinstance(prov.get("sessions", []), list):
        raise ResultsError(f"{path} is not an fmedu provenance file; {advice}")
    if prov.get("preset", name) != name:
        raise ResultsError(
            f"{path} records preset {prov.get('preset')!r}, not {name!r}: pass another --out folder, or {advice}"
        )
    prov.setdefault("sessions", [])
    return prov


# --------------------------------------------------------------------------- one writer per file


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started']} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that is still starting"


@contextlib.contextmanager
def exclusive(out: Path, name: str):
    """Hold ``out/NAME.lock`` for the whole session: a second run on the same results refuses.

    The lock file names its holder (pid, host, start, command). With ``fcntl`` the lock is an
    advisory ``flock`` that the system releases when the holder dies, even by SIGKILL; a lock
    file left behind by a killed run is therefore taken over. The file is removed on exit.
    """
    path = out / f"{name}.lock"
    info = json.dumps(
        {
            "pid": os.getpid(),
            "host": platform.node(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
    )
    busy = ResultsError  # raised below with the holder's details
    if fcntl is None:  # no flock: an exclusive create; a stale file must be removed by hand
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise busy(
                f"{out / name}.csv is being written by another run: {_holder(path)}. Wait for it to "
                f"finish or use another --out folder; if no such run is alive, delete {path}"
            ) from None
    else:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise busy(
                    f"{out / name}.csv is being written by another run: {_holder(path)}. Wait for it to "
                    "finish, or use another --out folder"
                ) from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous holder removed the file meanwhile: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, info.encode())
        os.fsync(fd)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def remove_stale_temporaries(out: Path, name: str, files: tuple[str, ...] | None = None) -> None:
    """Temporary files of :func:`atomic_write` left by a killed session: only names that
    :func:`atomic_write` makes (``.NAME.csv.fmedu-PID-XXXX.tmp``), never another file. ``files``:
    the preset's file names in ``out`` (default ``NAME.csv`` and ``NAME.json``). Called while
    holding :func:`exclusive`, so no live session of this preset owns one."""
    for stem in files or (f"{name}.csv", f"{name}.json"):
        target = Path(os.path.realpath(out / stem))
        pattern = _temp_pattern(target.name)
        for tmp in target.parent.glob(f".{glob.escape(target.name)}.{TEMP_TOKEN}-*.tmp"):
            if pattern.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
                with contextlib.suppress(OSError):
                    tmp.unlink()


def read_prefix(path: Path, length: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(length)


def check_counts(path: Path, kept: list[dict], variant: str, loaded: tuple) -> None:
    """The finished runs of ``variant`` were trained on the data set-up just loaded."""
    sizes = (len(loaded[4]), len(loaded[5]), len(loaded[6]))
    for row in kept:
        if row["variant"] == variant and (row["n_train"], row["n_val"], row["n_test"]) != sizes:
            raise ResultsError(
                f"{path}: finished runs of variant {variant} were trained on n_train, n_val, n_test = "
                f"{row['n_train']}, {row['n_val']}, {row['n_test']}, but the data now gives {sizes}: another "
                "data set-up; pass another --out folder or move the file away to start over"
            )
