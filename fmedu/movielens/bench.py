"""Benchmarks: ``python -m fmedu bench`` (notebook 06 quotes its output).

1. Prox steps per second, side by side in one run, one thread each: the published-style
   torch step (:class:`fmedu.prox_published.PublishedProxTrainer`: golden-section search,
   torch operations at every evaluation of q, the corrected write) against the compiled
   engine's exact step (:mod:`fmedu.engine`, one run, one epoch), on the same MovieLens
   samples and the same step size η = 1/23; their ratio.
2. Sweep throughput: sample-steps per second for each method with several runs in parallel,
   per backend: the compiled CPU engine (every thread), the vectorised torch backend on the
   CPU, and on CUDA where a GPU is present.

The last line reads ``prox step speed-up: N×``. Only ratios measured in the same run are
meaningful on a shared CPU; absolute rates are printed for orientation.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["synthetic_data", "published_steps_per_second", "engine_steps_per_second", "sweep_throughput", "main"]

ETA = 1.0 / 23.0


def synthetic_data(
    N: int = 100_000, n: int = 2728, positive: float = 0.212, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, str]:
    """``(idx, nnz, y, n, label)`` shaped like MovieLens: 6 to 11 sorted distinct indices per row."""
    rng = np.random.default_rng(seed)
    nnz = rng.integers(6, 12, N)
    idx = -np.ones((N, 11), np.int64)
    for r in range(N):
        idx[r, : nnz[r]] = np.sort(rng.choice(n, nnz[r], replace=False))
    y = np.where(rng.random(N) < positive, 1.0, -1.0)
    return idx, nnz, y, n, "synthetic (MovieLens not found)"


def _data():
    """MovieLens (correct join) if available, else synthetic data of the same shape.

    Only a missing data folder falls back; a corrupted one raises ``data.DataError``.
    """
    from . import data

    if not (data.data_root() / "u.data").is_file():
        return synthetic_data()
    ds = data.load_movielens()
    return ds.idx, ds.nnz, ds.y, ds.n_features, "MovieLens 100k"


def published_steps_per_second(idx, nnz, y, n_features, steps: int = 200, k: int = 20) -> float:
    """Steps/s of the published-style torch trainer (golden section, corrected write), 1 thread."""
    import torch

    from .. import engine
    from ..prox.published import PublishedProxTrainer

    torch.set_num_threads(1)
    w0, w, V = engine.init_params(0, n_features, k)
    trainer = PublishedProxTrainer(
        torch.tensor(w0, dtype=torch.float64), torch.from_numpy(w), torch.from_numpy(V), ETA, fix_write=True
    )
    rows = [torch.from_numpy(idx[r, : nnz[r]].copy()) for r in range(steps)]
    trainer.step(rows[0], float(y[0]))  # warm-up
    start = time.perf_counter()
    for r in range(steps):
        trainer.step(rows[r], float(y[r]))
    return steps / (time.perf_counter() - start)


def engine_steps_per_second(
    idx, nnz, y, n_features, method: str = "prox", runs: int = 1, threads: int = 1, rows=None, repeats: int = 3
) -> float:
    """Sample-steps/s of the compiled engine: ``runs`` runs, one epoch over ``rows``; best of ``repeats``."""
    from .. import engine

    engine.set_threads(threads)
    rows = np.arange(len(y)) if rows is None else rows
    eta = ETA if method.startswith("prox") else 1e-2
    best = 0.0
    for rep in range(repeats):
        trainer = engine.Trainer(
            [engine.Run(method, eta, s) for s in range(runs)], idx, nnz, y, n_features=n_features, train_rows=rows
        )
        if rep == 0:
            trainer.epoch()  # compile / load the cached kernels
        start = time.perf_counter()
        trainer.epoch()
        best = max(best, runs * len(rows) / (time.perf_counter() - start))
    return best


def sweep_throughput(idx, nnz, y, n_features, runs: int = 8, threads: int | None = None, rows=None) -> dict:
    """Sample-steps/s per method with ``runs`` runs in parallel on every thread (CPU backend)."""
    from .. import engine

    used = engine.set_threads(threads)
    out = {}
    for method in engine.METHODS:
        r = rows if method != "adam" else (rows[:5000] if rows is not None else np.arange(5000))
        out[method] = engine_steps_per_second(
            idx, nnz, y, n_features, method, runs=runs, threads=used, rows=r, repeats=2
        )
    return {"threads": used, "rates": out}


def torch_backend_throughput(
    idx, nnz, y, n_features, device: str, runs: int = 8, rows=None, methods=("prox", "sgd", "adagrad")
) -> dict:
    """Sample-steps/s of the vectorised torch backend (:mod:`fmedu.engine_cuda`) on ``device``."""
    import torch

    from .. import engine
    from ..engine.cuda import CudaTrainer

    rows = np.arange(2000) if rows is None else rows
    out = {}
    for method in methods:
        eta = ETA if method.startswith("prox") else 1e-2
        trainer = CudaTrainer(
            [engine.Run(method, eta, s) for s in range(runs)],
            idx,
            nnz,
            y,
            n_features=n_features,
            train_rows=rows,
            device=device,
        )
        trainer.epoch()  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.epoch()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out[method] = runs * len(rows) / (time.perf_counter() - start)
    return out


def main(published_steps: int = 200, quick: bool = False, threads: int | None = None) -> float:
    """Print the benchmark table; returns the prox-step speed-up."""
    import torch

    idx, nnz, y, n_features, source = _data()
    rows = np.arange(min(20_000, len(y)) if quick else len(y))
    print(f"data: {source}, {len(y):,} samples, {n_features:,} features, k = 20, eta = 1/23")
    pub = published_steps_per_second(
        idx, nnz, y, n_features, steps=min(published_steps, 50) if quick else published_steps
    )
    eng = engine_steps_per_second(idx, nnz, y, n_features, "prox", runs=1, threads=1, rows=rows)
    print(f"prox steps/s, 1 thread: published-style torch step {pub:,.0f}; compiled engine {eng:,.0f}")
    sweep = sweep_throughput(idx, nnz, y, n_features, runs=4 if quick else 8, threads=threads, rows=rows)
    print(f"sweep throughput, cpu backend ({sweep['threads']} threads, sample-steps/s):")
    for method, rate in sweep["rates"].items():
        print(f"  {method:15s} {rate:14,.0f}")
    small = rows[: 500 if quick else 2000]
    rates = torch_backend_throughput(idx, nnz, y, n_features, "cpu", runs=4 if quick else 8, rows=small)
    print("sweep throughput, vectorised torch backend on cpu (sample-steps/s):")
    for method, rate in rates.items():
        print(f"  {method:15s} {rate:14,.0f}")
    if torch.cuda.is_available():
        rates = torch_backend_throughput(idx, nnz, y, n_features, "cuda", runs=100 if not quick else 8, rows=small)
        print(f"sweep throughput, cuda backend ({torch.cuda.get_device_name(0)}, sample-steps/s):")
        for method, rate in rates.items():
            print(f"  {method:15s} {rate:14,.0f}")
    else:
        print("cuda backend: not available on this machine (no GPU); not measured")
    ratio = eng / pub
    print(f"prox step speed-up: {ratio:,.0f}×")
    return ratio
