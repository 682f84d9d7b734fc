"""A tiny sweep on generated data for the results-file tests: no MovieLens needed, well under a second.

``install(monkeypatch)`` registers preset ``tiny`` (14 runs of five methods, 3 epochs, chunks of
at most 2 runs) and a data loader for it. Run as a script, ``python tests/sweep_driver.py ARGS``
runs ``python -m fmedu ARGS`` with the preset installed, for tests that need a process of its own
(killed with SIGKILL, or two at once). Environment variables of the script:

* ``SWEEP_KILL_AT=k``: at the k-th write of a results or provenance file, write a random part
  of it (seeded by ``SWEEP_SEED``) and SIGKILL this process, as a power cut or the OOM killer would;
* ``SWEEP_HOLD=path``, ``SWEEP_RELEASE=path``: once the first chunk and its provenance are on
  disk, create the first path and wait (at most 300 s) until the second exists: meanwhile
  another process can try the same results file.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np

from fmedu.movielens import data, experiments, results_file

N_SAMPLES, N_FEATURES, WIDTH = 300, 40, 5

TINY = experiments.Preset(
    "tiny",
    "results-file tests: generated data, five methods, 2 attempts, 3 epochs",
    epochs=3,
    variants=(
        experiments.Variant(
            "syn",
            "correct",
            {
                "sgd": [0.02, 0.05],
                "adagrad": [0.05],
                "prox": [0.05, 0.1],
                "prox-published": [0.1],
                "adam": [0.01],
            },
            attempts=2,
        ),
    ),
    k=4,
)


def tiny_data(variant, root=None):
    """The loader of preset ``tiny``: ``(idx, nnz, y, n_features, train_rows, val_rows, test_rows)``."""
    rng = np.random.default_rng(7)
    nnz = rng.integers(1, WIDTH + 1, N_SAMPLES)
    idx = -np.ones((N_SAMPLES, WIDTH), np.int64)
    for r in range(N_SAMPLES):
        idx[r, : nnz[r]] = np.sort(rng.choice(N_FEATURES, nnz[r], replace=False))
    y = np.where(rng.random(N_SAMPLES) < 0.3, 1.0, -1.0)
    train_rows, val_rows, test_rows = data.split_rows(N_SAMPLES, experiments.SPLIT, seed=0)
    return idx, nnz, y, N_FEATURES, train_rows, val_rows, test_rows


def install(monkeypatch=None) -> None:
    """Register preset ``tiny`` and its loader (through ``monkeypatch`` in tests: undone afterwards)."""
    items = [(experiments, "_load_variant", tiny_data), (experiments, "CHUNK_RUNS", 2)]
    if monkeypatch is not None:
        monkeypatch.setitem(experiments.PRESETS, "tiny", TINY)
        for obj, name, value in items:
            monkeypatch.setattr(obj, name, value)
    else:
        experiments.PRESETS["tiny"] = TINY
        for obj, name, value in items:
            setattr(obj, name, value)


def _kill_switch(kill_at: int, seed: int) -> None:
    """Cut the kill_at-th write short and SIGKILL the process (the write functions of fmedu.movielens.results_file)."""
    count = [0]
    rng = random.Random(seed)
    append, atomic = results_file.append_rows, results_file.atomic_write

    def die(path: Path, payload: bytes, mode: str) -> None:
        cut = rng.randrange(len(payload) + 1)
        if mode == "append":
            with open(path, "ab") as fh:  # part of the appended rows reaches the disk
                fh.write(payload[:cut])
                fh.flush()
                os.fsync(fh.fileno())
        else:  # part of the temporary file is written; the rename never happens
            tmp = path.with_name(f".{path.name}.fmedu-{os.getpid()}-killed.tmp")  # as atomic_write names it
            tmp.write_bytes(payload[:cut])
        os.kill(os.getpid(), signal.SIGKILL)

    def killing_append(path, rows):
        count[0] += 1
        if count[0] == kill_at:
            if path.exists() and path.stat().st_size:
                die(path, results_file.format_rows(rows).encode(), "append")
            die(path, (results_file.HEADER + results_file.format_rows(rows)).encode(), "replace")
        return append(path, rows)

    def killing_atomic(path, payload):
        count[0] += 1
        if count[0] == kill_at:
            die(path, payload.encode() if isinstance(payload, str) else payload, "replace")
        return atomic(path, payload)

    results_file.append_rows = killing_append
    results_file.atomic_write = killing_atomic


def _hold(flag: Path, release: Path) -> None:
    atomic = results_file.atomic_write
    held = [False]

    def holding_atomic(path, payload):
        atomic(path, payload)
        if path.suffix == ".json" and not held[0]:
            held[0] = True
            flag.write_text(str(os.getpid()))
            deadline = time.monotonic() + 300
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    results_file.atomic_write = holding_atomic


def main(argv: list[str]) -> int:
    install()
    if os.environ.get("SWEEP_KILL_AT"):
        _kill_switch(int(os.environ["SWEEP_KILL_AT"]), int(os.environ.get("SWEEP_SEED", "0")))
    if os.environ.get("SWEEP_HOLD"):
        _hold(Path(os.environ["SWEEP_HOLD"]), Path(os.environ["SWEEP_RELEASE"]))
    from fmedu.__main__ import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
