"""Named MovieLens experiments, resumable sweeps, results files with provenance (notebook 06).

``python -m fmedu experiment NAME`` runs a preset (``PRESETS``) with the compiled engine and
writes, under ``--out`` (default ``results/``):

* ``NAME.csv`` — one row per (run, epoch), columns ``COLUMNS``:

  - ``preset``, ``variant``, ``join`` (``correct`` or ``published``, erratum E4), ``method``,
    ``eta`` (step size), ``eta_index`` (its place in the preset's list), ``attempt``, ``seed``
    (attempt a uses seed a), ``epoch`` (1-based);
  - ``train_loss``: mean logistic loss of the epoch, each sample's loss taken before its own
    update (the published training loss);
  - ``val_loss``, ``test_loss``: mean logistic loss on the validation rows and on the test
    rows after the epoch (empty, read as NaN, for a variant without held-out rows). Choose
    the epoch and the step size on ``val_loss``; report ``test_loss`` of that choice;
  - ``v_rms`` (RMS norm of the latent rows), ``w0`` (global bias) after the epoch;
  - ``n_train``, ``n_val``, ``n_test``: the sizes of the three row sets.

  On the CPU, runs are trained in chunks (up to 10 runs of one method, e.g. all attempts of one
  step size); on a GPU (``--device cuda``) all the selected runs of a variant are one chunk,
  trained together. A chunk's rows are appended in one write, flushed and fsync'ed as soon
  as it finishes.
* ``NAME.json`` — provenance: the configuration, seeds, git commit, package versions,
  device, and the wall time of every session that added runs.

An interrupted sweep resumes: runs with all their epochs in the CSV are skipped, the rows of
the one run cut off mid-write are set aside (saying so; the file is cut back atomically to
its last finished run) and that run is redone. Everything else about an existing file is
checked, not assumed: one session at a time holds ``NAME.lock`` (naming its holder; a second
session refuses); the CSV is parsed strictly and each row must belong to this configuration
(preset, variant, join, method, step size, epochs, data counts), with or without the JSON; a
damaged or foreign file is refused with the file and line, never rewritten. Nothing is
written before the first chunk is trained, and every write is atomic or cut back on failure.

Splits: a variant with ``held_out=True`` trains on a fixed, seeded 80 % of its ratings and
evaluates the other 20 % after every epoch, 10 % as the validation split and 10 % as the test
split (:func:`fmedu.movielens.data.split_rows` with seed 0, ``SPLIT``). Variants reproducing
the published code train on all their ratings and hold nothing out.

Seeds: attempt ``a`` uses seed ``a`` for every method and step size (common random numbers:
the same initial parameters and the same shuffles), so methods differ only by their updates.
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
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FMInputError, ResultsError

try:
    import fcntl
except ImportError:  # not on Windows: an exclusive create stands in (see _exclusive)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Variant",
    "Preset",
    "PRESETS",
    "run_experiment",
    "load_results",
    "COLUMNS",
    "step_sizes",
    "ResultsError",
    "ResultsWarning",
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

PUBLISHED_ETA = 1.0 / 23.0  # 1/(2·max nnz + 1), the published prox step size
ADAM_DEFAULT_LR = 1e-3
CHUNK_RUNS = 10  # runs trained together (and written together) in one chunk on the CPU
SPLIT = (0.8, 0.1, 0.1)  # train / validation / test fractions of a held-out variant's ratings
SPLIT_SEED = 0


def step_sizes(method: str, count: int = 10) -> list[float]:
    """The sweep's geometric step sizes: 1e-5 … 1/23 for prox, 1e-5 … 1e-1 otherwise."""
    top = PUBLISHED_ETA if method.startswith("prox") else 1e-1
    return [float(v) for v in np.geomspace(1e-5, top, count)]


@dataclass(frozen=True)
class Variant:
    """One data set-up and the runs trained on it.

    ``join``: "correct" or "published" (erratum E4); ``subset``: use the first ``subset``
    ratings (None: all); ``held_out``: split them 80/10/10 into fixed train, validation and test
    rows (``SPLIT``), else train on all of them; ``etas``: method → step sizes; ``attempts``:
    seeds 0 … attempts−1.
    """

    name: str
    join: str
    etas: dict
    attempts: int
    subset: int | None = None
    held_out: bool = True


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    epochs: int
    variants: tuple
    k: int = 20

    def runs(self) -> Iterator[tuple[Variant, str, int, float, int]]:
        """(variant, method, eta_index, eta, attempt) of every run, chunk-major order."""
        for v in self.variants:
            for method, etas in v.etas.items():
                for j, eta in enumerate(etas):
                    for a in range(v.attempts):
                        yield v, method, j, eta, a


def _sweep(methods, attempts):
    return {m: step_sizes(m) for m in methods}


ALL_METHODS = ("prox", "prox-published", "sgd", "adagrad", "adam")

PRESETS = {
    "smoke": Preset(
        "smoke",
        "CI smoke test: first 2,000 ratings, every method, 2 step sizes, 2 attempts, 2 epochs",
        epochs=2,
        variants=(
            Variant("smoke", "correct", {m: step_sizes(m, 10)[-3:-1] for m in ALL_METHODS}, attempts=2, subset=2000),
        ),
    ),
    "published-10epoch": Preset(
        "published-10epoch",
        "prox at eta=1/23 and Adam at default settings, 10 epochs, all ratings: as published "
        "(published join E4, latent vectors frozen E3, no held-out data) and corrected "
        "(correct join, exact prox step, 10% validation and 10% test held out)",
        epochs=10,
        variants=(
            Variant(
                "published",
                "published",
                {"prox-published": [PUBLISHED_ETA], "adam": [ADAM_DEFAULT_LR]},
                attempts=3,
                held_out=False,
            ),
            Variant(
                "corrected",
                "correct",
                {"prox": [PUBLISHED_ETA], "adam": [ADAM_DEFAULT_LR]},
                attempts=3,
                held_out=True,
            ),
        ),
    ),
    "stability-published": Preset(
        "stability-published",
        "the published sweep: first 1,000 ratings (published join), 10 step sizes, 10 attempts, "
        "10 epochs, training loss; every method",
        epochs=10,
        variants=(
            Variant("published-subset", "published", _sweep(ALL_METHODS, 10), attempts=10, subset=1000, held_out=False),
        ),
    ),
    "stability-full": Preset(
        "stability-full",
        "all 100,000 ratings (correct join, 80/10/10 train/validation/test), 10 step sizes, 10 attempts, "
        "20 epochs, training, validation and test loss; every method",
        epochs=20,
        variants=(Variant("full", "correct", _sweep(ALL_METHODS, 10), attempts=10),),
    ),
    "long": Preset(
        "long",
        "exact prox for 50 epochs on all ratings (correct join, 80/10/10 train/validation/test), "
        "10 step sizes, 10 attempts",
        epochs=50,
        variants=(Variant("full", "correct", {"prox": step_sizes("prox")}, attempts=10),),
    ),
}


# --------------------------------------------------------------------------- provenance


def _git_commit() -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "--", "fmedu"], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            != ""
        )
        return {"commit": commit or None, "fmedu_modified": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "fmedu_modified": None}


def _versions() -> dict:
    import numba
    import torch

    from .. import __version__

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "fmedu": __version__,
    }


def _device(device: str) -> dict:
    import numba

    info = {
        "backend": device,
        "threads": numba.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device == "cuda":
        from ..engine import cuda

        info.update(cuda.device_info())
    return info


def _config(preset: Preset) -> dict:
    cfg = asdict(preset)
    cfg["variants"] = [asdict(v) for v in preset.variants]
    return cfg


def _data_key(preset: Preset) -> dict:
    """What must match for old rows to be reused: epochs, k and each variant's data set-up."""
    return {
        "epochs": preset.epochs,
        "k": preset.k,
        "variants": {v.name: [v.join, v.subset, list(SPLIT) if v.held_out else None] for v in preset.variants},
    }


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


def _finished_runs(path: Path, preset: Preset, epochs: int) -> _Resume:
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


def _format_rows(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    for row in rows:
        writer.writerow({c: (repr(row[c]) if isinstance(row[c], float) else row[c]) for c in COLUMNS})
    return buf.getvalue()


def _fsync_dir(folder: Path) -> None:
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


def _atomic_write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` by ``data`` all at once: a unique temporary file in the same folder,
    flushed to disk, then renamed. On any failure (a full disk) the temporary file is removed
    and ``path`` is left as it was."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _append(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` in one write, flushed to disk; a new file is created whole, with its header.
    A failed write (a full disk) is cut back so that the file ends with a complete row."""
    text = _format_rows(rows)
    if not path.exists() or path.stat().st_size == 0:
        _atomic_write(path, HEADER + text)
        return
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


def _read_provenance(path: Path, name: str) -> dict | None:
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
def _exclusive(out: Path, name: str):
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


def _remove_stale_temporaries(out: Path, name: str) -> None:
    """Temporary files of :func:`_atomic_write` left by a killed session (ours by their name)."""
    for stem in (f"{name}.csv", f"{name}.json"):
        for tmp in out.glob(f".{glob.escape(stem)}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


# --------------------------------------------------------------------------- the sweep


def _load_variant(variant: Variant, root=None):
    from . import data

    ds = data.load_movielens(root, join=variant.join)
    N = len(ds) if variant.subset is None else min(variant.subset, len(ds))
    idx, nnz, y = ds.idx[:N], ds.nnz[:N], ds.y[:N]
    if variant.held_out:
        train_rows, val_rows, test_rows = data.split_rows(N, SPLIT, seed=SPLIT_SEED)
    else:
        train_rows, val_rows, test_rows = np.arange(N, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return idx, nnz, y, ds.n_features, train_rows, val_rows, test_rows


def _positive_int(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise FMInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_methods(preset: Preset, methods) -> list[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
        raise FMInputError(f"methods must be a list of method names, e.g. ['prox', 'adam'], got {methods!r}")
    methods = list(methods)
    offered = sorted({m for v in preset.variants for m in v.etas})
    if not methods:
        raise FMInputError(f"methods is empty: name at least one of {', '.join(offered)}")
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise FMInputError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(ALL_METHODS)}")
    absent = [m for m in methods if m not in offered]
    if absent:
        raise FMInputError(
            f"method(s) {', '.join(absent)} not in preset {preset.name!r}, so no runs are left for them; "
            f"its methods are {', '.join(offered)}"
        )
    return methods


def _select(preset: Preset, methods=None, attempts=None, epochs=None) -> Preset:
    variants = []
    for v in preset.variants:
        etas = {m: e for m, e in v.etas.items() if methods is None or m in methods}
        if etas:
            count = v.attempts if attempts is None else attempts
            variants.append(Variant(v.name, v.join, etas, count, v.subset, v.held_out))
    if not variants:
        raise FMInputError(
            f"no runs left in preset {preset.name!r} after choosing methods {methods}; "
            f"its methods are {sorted({m for v in preset.variants for m in v.etas})}"
        )
    return Preset(
        preset.name, preset.description, preset.epochs if epochs is None else epochs, tuple(variants), preset.k
    )


def _chunks(preset: Preset, done: set, device: str) -> list[list]:
    """The runs still to train, grouped into chunks that are trained and written together.

    CPU: up to ``CHUNK_RUNS`` consecutive runs of one variant and method (all attempts of a
    step size, or several step sizes when there are few attempts). GPU: every selected run of
    a variant at once (one launch per epoch trains them all).
    """
    chunks: list[list] = []
    for v, method, j, eta, a in preset.runs():
        if (v.name, method, j, a) in done:
            continue
        head = chunks[-1][0] if chunks else None
        if device == "cuda":
            new = head is None or head[0].name != v.name
        else:
            new = (
                head is None
                or (head[0].name, head[1]) != (v.name, method)
                or len(chunks[-1]) >= max(CHUNK_RUNS, v.attempts)
            )
        if new:
            chunks.append([])
        chunks[-1].append((v, method, j, eta, a))
    return chunks


def _result_rows(name: str, members: list, res, sizes: dict) -> list[dict]:
    """The CSV rows (``COLUMNS``) of a trained chunk: one per run and epoch."""
    rows = []
    for r, (v, method, j, eta, a) in enumerate(members):
        for e in range(res.train_loss.shape[1]):
            rows.append(
                {
                    "preset": name,
                    "variant": v.name,
                    "join": v.join,
                    "method": method,
                    "eta": float(eta),
                    "eta_index": j,
                    "attempt": a,
                    "seed": a,
                    "epoch": e + 1,
                    "train_loss": float(res.train_loss[r, e]),
                    "val_loss": float(res.val_loss[r, e]),
                    "test_loss": float(res.test_loss[r, e]),
                    "v_rms": float(res.v_rms[r, e]),
                    "w0": float(res.w0[r, e]),
                    **sizes,
                }
            )
    return rows


def run_experiment(
    name: str,
    out="results",
    *,
    device: str = "cpu",
    methods=None,
    attempts=None,
    epochs=None,
    data_root=None,
    progress: bool | None = None,
    on_chunk=None,
    threads: int | None = None,
) -> dict:
    """Run (or resume) preset ``name``; returns the provenance dict written next to the CSV.

    ``methods`` (names from the preset) / ``attempts`` restrict or extend the runs (a later call
    can add runs to the same file); ``epochs`` changes the configuration (and therefore needs a
    fresh ``out``). ``on_chunk(done_runs)`` is called after each chunk is on disk (tests
    interrupt there).

    Safety: one session at a time per results file (``out/NAME.lock`` names the holder; a
    second one raises :class:`ResultsError`); an existing CSV is parsed strictly and every row
    checked against this configuration (a damaged or foreign file is refused, naming the file
    and line, and never rewritten); only the rows of a run cut off by an interruption are set
    aside (with a :class:`ResultsWarning`) and that run is redone. Nothing is written before
    the first chunk is trained, and every write is atomic or cut back on failure.
    """
    from .. import engine

    if name not in PRESETS:
        raise FMInputError(f"unknown experiment {name!r}; choose one of {', '.join(PRESETS)}")
    if device not in ("cpu", "cuda"):
        raise FMInputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    methods = _check_methods(PRESETS[name], methods)
    attempts = _positive_int(attempts, "attempts")
    epochs = _positive_int(epochs, "epochs")
    threads = _positive_int(threads, "threads")
    if device == "cuda":
        from ..engine import cuda  # needs numba-cuda: a clear FMInputError without it

        if not cuda.cuda.is_available():
            raise FMInputError("device='cuda' but numba-cuda finds no CUDA GPU; use --device cpu")
    preset = _select(PRESETS[name], methods, attempts, epochs)
    engine.set_threads(threads)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FMInputError(f"--out {out} is a file, not a folder")
    created = [p for p in [out, *out.parents] if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _exclusive(out, name):
            _remove_stale_temporaries(out, name)
            return _sweep_locked(name, out, preset, device, methods, attempts, epochs, data_root, progress, on_chunk)
    finally:
        for folder in created:  # innermost first; only folders made here, and only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _sweep_locked(name, out: Path, preset: Preset, device, methods, attempts, epochs, data_root, progress, on_chunk):
    from .. import engine

    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    prov = _read_provenance(json_path, name)
    resume = _finished_runs(csv_path, PRESETS[name], preset.epochs)
    key = _data_key(preset)
    if prov is not None and resume.kept:
        old = prov.get("data_key") or {}
        same = (
            old.get("epochs") == key["epochs"]
            and old.get("k") == key["k"]
            and all(old.get("variants", {}).get(vn, setup) == setup for vn, setup in key["variants"].items())
        )
        if not same:
            raise ResultsError(
                f"{csv_path} holds runs of a different configuration ({old}); "
                "pass another --out folder or move the old files away to start over"
            )
        key = {**key, "variants": {**old.get("variants", {}), **key["variants"]}}
    done = resume.done
    if resume.dropped:
        note = (
            f"{csv_path}: set aside {'; '.join(resume.dropped)}; the unfinished run is trained again, "
            f"{len(done)} finished runs are kept"
        )
        warnings.warn(note, ResultsWarning, stacklevel=3)
        _atomic_write(csv_path, _read_prefix(csv_path, resume.keep_bytes))
    if prov is None:
        prov = {"preset": name, "description": preset.description, "sessions": []}
    prov.update(
        {
            "data_key": key,
            "config": _config(PRESETS[name]) if epochs is None else _config(preset),
            "seeds": "attempt a uses seed a: init SeedSequence([a, 0]), epoch e shuffle SeedSequence([a, 1, e])",
            "columns": COLUMNS,
        }
    )
    session: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git_commit(),
        "versions": _versions(),
        "device": _device(device),
        "runs_added": 0,
        "wall_s": 0.0,
        "selection": {
            "methods": list(methods) if methods else "all",
            "attempts": attempts if attempts is not None else "preset",
            "epochs": preset.epochs,
        },
        "command_line": " ".join(sys.argv),
    }
    if resume.dropped:
        session["set_aside"] = resume.dropped
    prov["sessions"].append(session)

    chunks = _chunks(preset, done, device)
    selected = {(v.name, m, j, a) for v, m, j, _, a in preset.runs()}
    total = len(selected)
    done_here = len(done & selected)
    if progress is None:
        progress = not os.environ.get("CI") and sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done_here, desc=name, unit="run")
    data_cache: dict[str, tuple] = {}
    start = time.perf_counter()
    try:
        for members in chunks:
            v = members[0][0]
            if v.name not in data_cache:
                data_cache[v.name] = _load_variant(v, data_root)
                _check_counts(csv_path, resume.kept, v.name, data_cache[v.name])
            idx, nnz, y, n_features, train_rows, val_rows, test_rows = data_cache[v.name]
            runs = [engine.Run(method, eta, a) for _, method, _, eta, a in members]
            if bar is not None:
                methods_here = sorted({m for _, m, _, _, _ in members})
                bar.set_postfix_str(f"{v.name} {','.join(methods_here)}: {len(members)} runs")
            res = engine.train_runs(
                runs,
                idx,
                nnz,
                y,
                n_features=n_features,
                epochs=preset.epochs,
                train_rows=train_rows,
                val_rows=val_rows,
                test_rows=test_rows,
                k=preset.k,
                device=device,
            )
            sizes = {"n_train": len(train_rows), "n_val": len(val_rows), "n_test": len(test_rows)}
            _append(csv_path, _result_rows(name, members, res, sizes))
            session["runs_added"] += len(members)
            session["wall_s"] = round(time.perf_counter() - start, 3)
            prov["runs_complete"] = done_here + session["runs_added"]
            prov["runs_total"] = total
            prov["wall_s_total"] = round(sum(s.get("wall_s", 0.0) for s in prov["sessions"]), 3)
            _atomic_write(json_path, json.dumps(prov, indent=1) + "\n")
            if bar is not None:
                bar.update(len(members))
            if on_chunk is not None:
                on_chunk(session["runs_added"])
    finally:
        if bar is not None:
            bar.close()
    session["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    session["wall_s"] = round(time.perf_counter() - start, 3)
    prov["runs_complete"] = done_here + session["runs_added"]
    prov["runs_total"] = total
    prov["wall_s_total"] = round(sum(s.get("wall_s", 0.0) for s in prov["sessions"]), 3)
    _atomic_write(json_path, json.dumps(prov, indent=1) + "\n")
    return prov


def _read_prefix(path: Path, length: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(length)


def _check_counts(path: Path, kept: list[dict], variant: str, loaded: tuple) -> None:
    """The finished runs of ``variant`` were trained on the data set-up just loaded."""
    sizes = (len(loaded[4]), len(loaded[5]), len(loaded[6]))
    for row in kept:
        if row["variant"] == variant and (row["n_train"], row["n_val"], row["n_test"]) != sizes:
            raise ResultsError(
                f"{path}: finished runs of variant {variant} were trained on n_train, n_val, n_test = "
                f"{row['n_train']}, {row['n_val']}, {row['n_test']}, but the data now gives {sizes}: another "
                "data set-up; pass another --out folder or move the file away to start over"
            )
