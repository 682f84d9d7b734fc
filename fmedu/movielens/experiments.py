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

An interrupted sweep resumes: runs with all their epochs in the CSV are skipped, rows of a
run cut off mid-write are dropped (the file is rewritten atomically) and the run is redone.

Splits: a variant with ``held_out=True`` trains on a fixed, seeded 80 % of its ratings and
evaluates the other 20 % after every epoch, 10 % as the validation split and 10 % as the test
split (:func:`fmedu.movielens.data.split_rows` with seed 0, ``SPLIT``). Variants reproducing
the published code train on all their ratings and hold nothing out.

Seeds: attempt ``a`` uses seed ``a`` for every method and step size (common random numbers:
the same initial parameters and the same shuffles), so methods differ only by their updates.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FMInputError, ResultsError

__all__ = ["Variant", "Preset", "PRESETS", "run_experiment", "load_results", "COLUMNS", "step_sizes", "ResultsError"]

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


def _run_key(row) -> tuple:
    return (row["variant"], row["method"], int(row["eta_index"]), int(row["attempt"]))


def load_results(path) -> list[dict]:
    """Rows of a results CSV as dicts with numbers converted (val_loss, test_loss may be NaN)."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if None in row or any(row.get(c) in (None, "") for c in COLUMNS if c not in ("val_loss", "test_loss")):
                continue  # a line cut off mid-write
            out = dict(row)
            for c in ("eta", "train_loss", "val_loss", "test_loss", "v_rms", "w0"):
                out[c] = float(row[c]) if row[c] not in ("", None) else math.nan
            for c in ("eta_index", "attempt", "seed", "epoch", "n_train", "n_val", "n_test"):
                out[c] = int(row[c])
            rows.append(out)
    return rows


def _complete_runs(path: Path, epochs: int) -> tuple[set, list[dict]]:
    """Keys of runs whose ``epochs`` rows are all present; the rows of those runs."""
    if not path.exists():
        return set(), []
    try:
        rows = load_results(path)
    except (ValueError, csv.Error):
        rows = []
    by_key: dict[tuple, list[dict]] = {}
    for row in rows:
        by_key.setdefault(_run_key(row), []).append(row)
    done = {key for key, rs in by_key.items() if sorted(r["epoch"] for r in rs) == list(range(1, epochs + 1))}
    kept = [r for r in rows if _run_key(r) in done]
    return done, kept


def _format_rows(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    for row in rows:
        writer.writerow({c: (repr(row[c]) if isinstance(row[c], float) else row[c]) for c in COLUMNS})
    return buf.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _append(path: Path, rows: list[dict]) -> None:
    with open(path, "a") as fh:
        fh.write(_format_rows(rows))
        fh.flush()
        os.fsync(fh.fileno())


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


def _select(preset: Preset, methods=None, attempts=None, epochs=None) -> Preset:
    variants = []
    for v in preset.variants:
        etas = {m: e for m, e in v.etas.items() if methods is None or m in methods}
        if etas:
            variants.append(Variant(v.name, v.join, etas, attempts or v.attempts, v.subset, v.held_out))
    if not variants:
        raise FMInputError(
            f"no runs left in preset {preset.name!r} after choosing methods {methods}; "
            f"its methods are {sorted({m for v in preset.variants for m in v.etas})}"
        )
    return Preset(preset.name, preset.description, epochs or preset.epochs, tuple(variants), preset.k)


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

    ``methods`` / ``attempts`` restrict or extend the runs (a later call can add runs to the
    same file); ``epochs`` changes the configuration (and therefore needs a fresh ``out``).
    ``on_chunk(done_runs)`` is called after each chunk is on disk (tests interrupt there).
    """
    from .. import engine

    if name not in PRESETS:
        raise FMInputError(f"unknown experiment {name!r}; choose one of {', '.join(PRESETS)}")
    if device not in ("cpu", "cuda"):
        raise FMInputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        from ..engine import cuda  # needs numba-cuda: a clear FMInputError without it

        if not cuda.cuda.is_available():
            raise FMInputError("device='cuda' but numba-cuda finds no CUDA GPU; use --device cpu")
    preset = _select(PRESETS[name], methods, attempts, epochs)
    engine.set_threads(threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    prov = json.loads(json_path.read_text()) if json_path.exists() else None
    key = _data_key(preset)
    if prov is not None and csv_path.exists():
        old = prov.get("data_key") or {}
        same = (
            old.get("epochs") == key["epochs"]
            and old.get("k") == key["k"]
            and all(old.get("variants", {}).get(name, setup) == setup for name, setup in key["variants"].items())
        )
        if not same:
            raise ResultsError(
                f"{csv_path} holds runs of a different configuration ({old}); "
                "pass another --out folder or delete the old files to start over"
            )
        key = {**key, "variants": {**old.get("variants", {}), **key["variants"]}}
    done, kept = _complete_runs(csv_path, preset.epochs)
    _atomic_write(csv_path, ",".join(COLUMNS) + "\n" + _format_rows(kept))  # drop cut-off runs
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
            "attempts": attempts or "preset",
            "epochs": preset.epochs,
        },
        "command_line": " ".join(sys.argv),
    }
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
            prov["wall_s_total"] = round(sum(s["wall_s"] for s in prov["sessions"]), 3)
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
    prov["wall_s_total"] = round(sum(s["wall_s"] for s in prov["sessions"]), 3)
    _atomic_write(json_path, json.dumps(prov, indent=1) + "\n")
    return prov
