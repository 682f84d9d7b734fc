"""MovieLens sweeps: run a named preset, resumably, into a results file with provenance (notebook 06).

``python -m fmedu experiment NAME`` runs a preset (``PRESETS``, defined in
:mod:`fmedu.movielens.presets`) with the compiled engine and writes, under ``--out`` (default
``results/``), through :mod:`fmedu.movielens.results_file`:

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

  On the CPU, runs are trained in chunks (up to 50 runs of one method, e.g. all attempts of five
  step sizes: the runs of a chunk share each epoch's shuffles, and the threads share out more
  runs); on a GPU (``--device cuda``) all the selected runs of a variant are one chunk,
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

import json
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FMInputError, ResultsError
from ..paths import output_folder
from . import results_file
from .presets import (
    ALL_METHODS,
    PRESETS,
    SPLIT,
    SPLIT_SEED,
    Preset,
    Variant,
    step_sizes,
)
from .results_file import COLUMNS, ResultsWarning, load_results

__all__ = [
    "ALL_METHODS",
    "SPLIT",
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


CHUNK_RUNS = 50  # runs trained together (and written together) in one chunk on the CPU


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
    with output_folder(out) as folder, results_file.exclusive(folder, name):
        results_file.remove_stale_temporaries(folder, name)
        return _sweep_locked(name, folder, preset, device, methods, attempts, epochs, data_root, progress, on_chunk)


def _sweep_locked(name, out: Path, preset: Preset, device, methods, attempts, epochs, data_root, progress, on_chunk):
    from .. import engine

    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    prov = results_file.read_provenance(json_path, name)
    resume = results_file.finished_runs(csv_path, PRESETS[name], preset.epochs)
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
        results_file.atomic_write(csv_path, results_file.read_prefix(csv_path, resume.keep_bytes))
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

    data_cache: dict[str, tuple] = {}
    # finished runs are checked against the data whether or not any work is left
    for v in preset.variants:
        if any(row["variant"] == v.name for row in resume.kept):
            data_cache[v.name] = _load_variant(v, data_root)
            results_file.check_counts(csv_path, resume.kept, v.name, data_cache[v.name])
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
            results_file.append_rows(csv_path, _result_rows(name, members, res, sizes))
            session["runs_added"] += len(members)
            session["wall_s"] = round(time.perf_counter() - start, 3)
            prov["runs_complete"] = done_here + session["runs_added"]
            prov["runs_total"] = total
            prov["wall_s_total"] = round(sum(s.get("wall_s", 0.0) for s in prov["sessions"]), 3)
            results_file.atomic_write(json_path, json.dumps(prov, indent=1) + "\n")
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
    results_file.atomic_write(json_path, json.dumps(prov, indent=1) + "\n")
    return prov
