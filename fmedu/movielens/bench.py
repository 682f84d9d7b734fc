"""Benchmarks: ``python -m fmedu bench`` (notebook 06 quotes its output).

1. Prox steps per second, side by side in one run, one thread each: the published-style
   torch step (:class:`fmedu.prox.published.PublishedProxTrainer`: golden-section search,
   torch operations at every evaluation of q, the corrected write) against the compiled
   engine's exact step (:mod:`fmedu.engine`, one run, one epoch), on the same MovieLens
   samples and the same step size η = 1/23; their ratio.
2. Sweep throughput: sample-steps per second for each method with several runs trained
   together, on the compiled CPU engine (every thread), in a run's first epoch and in its
   later epochs (most of a sweep; for Adam the first 37,411 steps of a run still carry bias
   corrections, which cost more), and Adam's rate against SGD's. The methods take turns over
   five rounds; each method's rate is its best round, and Adam's ratio to SGD is the median of
   the ratios within a round, so that a machine whose speed drifts during the benchmark does
   not favour one method. The last column divides the later-epoch rate by the number of
   threads: sample-steps per second per thread.
3. Where a CUDA GPU is present: the same for the GPU engine (:mod:`fmedu.engine.cuda`, many
   runs per launch), and each method's ratio to the CPU engine measured in the same run. The
   runs share the sweeps' 10 seeds, so an epoch's host work (10 shuffles) is the sweep's.

The last line reads ``prox step speed-up: N×``. Only ratios measured in the same run are
meaningful on a shared CPU; absolute rates are printed for orientation.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = [
    "synthetic_data",
    "published_steps_per_second",
    "engine_steps_per_second",
    "sweep_throughput",
    "ratio_in_rounds",
    "gpu_present",
    "main",
    "against",
]

ETA = 1.0 / 23.0
SWEEP_SEEDS = 10  # the sweeps' attempts: run s has seed s % 10, one shuffle per seed and epoch as there


# the sweep's methods: the engine's, less the prox-linearised ablation, plus the exact prox step
# with the per-touch L2 penalty of the regularised experiment ("prox+L2", target: >= 0.5x SGD's rate)
BENCH_METHODS = ("prox", "prox-published", "sgd", "adagrad", "adam", "prox+L2")
REGULARISED = {"lam_w": 0.003, "lam_v": 0.03}


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


def _trainer_maker(idx, nnz, y, n_features, method: str, runs: int, rows, device: str):
    """A function that makes fresh trainers of ``runs`` runs of ``method`` over ``rows``
    (``"prox+L2"``: the exact prox step with the per-touch penalty ``REGULARISED``).

    Run s has seed s % ``SWEEP_SEEDS``, as in a sweep of 10 attempts: each epoch shuffles the
    rows once per distinct seed on the host, so 500 runs with 500 seeds would time 500
    permutations (1.6 s on MovieLens) besides the kernel, which a sweep never does.
    """
    from .. import engine

    eta = ETA if method.startswith("prox") else 1e-2
    penalty = REGULARISED if method == "prox+L2" else {}
    name = "prox" if method == "prox+L2" else method
    return lambda: engine.make_trainer(
        [engine.Run(name, eta, s % SWEEP_SEEDS, **penalty) for s in range(runs)],
        idx,
        nnz,
        y,
        device=device,
        n_features=n_features,
        train_rows=rows,
    )


def _epoch_rates(make, epochs: int, samples: int) -> list[float]:
    """Sample-steps/s of each of a fresh trainer's first ``epochs`` epochs (``samples`` per epoch)."""
    trainer = make()
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.epoch()  # returns host arrays: the GPU has finished
        rates.append(samples / (time.perf_counter() - start))
    return rates


def engine_steps_per_second(
    idx,
    nnz,
    y,
    n_features,
    method: str = "prox",
    runs: int = 1,
    threads: int = 1,
    rows=None,
    repeats: int = 3,
    device: str = "cpu",
    epoch: int = 1,
) -> float:
    """Sample-steps/s of an engine backend: ``runs`` runs of ``method``, their ``epoch``-th epoch over ``rows``.

    ``epoch=1`` times a run's first epoch from fresh parameters (for Adam its first 37,411
    steps still have bias corrections); ``epoch=2`` times the next one, as most epochs of a
    sweep are. The best of ``repeats``, after one untimed epoch that compiles or loads the
    kernels.
    """
    from .. import engine

    engine.set_threads(threads)
    rows = np.arange(len(y)) if rows is None else rows
    make = _trainer_maker(idx, nnz, y, n_features, method, runs, rows, device)
    make().epoch()
    return max(_epoch_rates(make, epoch, runs * len(rows))[-1] for _ in range(repeats))


def sweep_throughput(
    idx, nnz, y, n_features, runs: int = 8, threads: int | None = None, rows=None, device: str = "cpu", repeats: int = 5
) -> dict:
    """Sample-steps/s per method with ``runs`` runs trained together (CPU: on every thread), in a
    run's first epoch (``first``) and in its second (``rates``, as most epochs of a sweep).

    The methods take turns, ``repeats`` rounds of one fresh trainer each; each rate is the best
    of its rounds, and ``rounds[method]`` lists every round's (first, later) rates, so that a
    ratio between two methods can be taken within each round (:func:`ratio_in_rounds`): on a
    machine whose speed drifts, measurements made seconds apart share the drift.
    """
    from .. import engine

    used = engine.set_threads(threads)
    rows = np.arange(len(y)) if rows is None else rows
    makers = {m: _trainer_maker(idx, nnz, y, n_features, m, runs, rows, device) for m in BENCH_METHODS}
    for make in makers.values():
        make().epoch()  # compile or load the kernels
    rounds: dict[str, list[tuple[float, float]]] = {m: [] for m in makers}
    for _ in range(repeats):
        for method, make in makers.items():
            rate_first, rate_later = _epoch_rates(make, 2, runs * len(rows))
            rounds[method].append((rate_first, rate_later))
    first = {m: max(r[0] for r in rounds[m]) for m in makers}
    later = {m: max(r[1] for r in rounds[m]) for m in makers}
    return {"threads": used, "rates": later, "first": first, "rounds": rounds}


def ratio_in_rounds(rounds: dict, a: str, b: str, epoch: int = 1) -> tuple[float, float, float]:
    """(median, lowest, highest) over the rounds of ``a``'s rate / ``b``'s rate in the same round;
    ``epoch`` 0 for the first epochs, 1 for the later ones."""
    ratios = sorted(ra[epoch] / rb[epoch] for ra, rb in zip(rounds[a], rounds[b]))
    return float(np.median(ratios)), ratios[0], ratios[-1]


def gpu_present() -> str | None:
    """The name of a usable CUDA GPU, or None (no numba-cuda, no GPU, or only the simulator)."""
    try:
        from ..engine import cuda
    except Exception:  # numba-cuda missing or unusable: no GPU to measure
        return None
    if not cuda.gpu_available():
        return None
    return str(cuda.device_info()["gpu"])


def main(published_steps: int = 200, quick: bool = False, threads: int | None = None, gpu_runs: int = 500) -> float:
    """Print the benchmark table; returns the prox-step speed-up."""
    idx, nnz, y, n_features, source = _data()
    rows = np.arange(min(20_000, len(y)) if quick else len(y))
    print(f"data: {source}, {len(y):,} samples, {n_features:,} features, k = 20, eta = 1/23")
    pub = published_steps_per_second(
        idx, nnz, y, n_features, steps=min(published_steps, 50) if quick else published_steps
    )
    eng = engine_steps_per_second(idx, nnz, y, n_features, "prox", runs=1, threads=1, rows=rows)
    print(f"prox steps/s, 1 thread: published-style torch step {pub:,.0f}; compiled engine {eng:,.0f}")
    cpu = sweep_throughput(
        idx, nnz, y, n_features, runs=4 if quick else 8, threads=threads, rows=rows, repeats=2 if quick else 5
    )
    print(
        f"sweep throughput, cpu engine ({cpu['threads']} threads, {len(rows):,} samples per epoch, "
        "sample-steps/s in a run's first epoch, in its later epochs, and in its later epochs per thread):"
    )
    for method, rate in cpu["rates"].items():
        print(f"  {method:15s} {cpu['first'][method]:14,.0f} {rate:14,.0f} {rate / cpu['threads']:14,.0f}")
    for method in ("adam", "prox+L2"):
        print(
            "{} / sgd on the cpu, median (range) over {} rounds: {:.2f} ({:.2f}-{:.2f}); first epoch: {:.2f} "
            "({:.2f}-{:.2f})".format(
                method,
                len(cpu["rounds"][method]),
                *ratio_in_rounds(cpu["rounds"], method, "sgd", 1),
                *ratio_in_rounds(cpu["rounds"], method, "sgd", 0),
            )
        )
    gpu = gpu_present()
    if gpu is None:
        print("gpu: no CUDA GPU on this machine; not measured")
    else:
        runs = 8 if quick else gpu_runs
        rates = sweep_throughput(idx, nnz, y, n_features, runs=runs, rows=rows, device="cuda", repeats=2)["rates"]
        print(f"sweep throughput, gpu engine ({gpu}, {runs} runs per method, later epochs, and x the cpu engine):")
        for method, rate in rates.items():
            print(f"  {method:15s} {rate:14,.0f}  {rate / cpu['rates'][method]:8.1f}x")
    ratio = eng / pub
    print(f"prox step speed-up: {ratio:,.0f}×")
    return ratio


def against(source: str, rounds: int = 5, epochs: int = 2, methods=None) -> list[dict]:
    """Print this CPU engine against the engine of the fmedu checkout ``source``
    (:mod:`fmedu.movielens.compare`); returns the rows."""
    from .. import engine
    from . import compare

    before = compare.load_engine(source)
    idx, nnz, y, n_features, label = _data()
    print(f"data: {label}, {len(y):,} samples, {n_features:,} features, k = 20; against: {source}")
    rows = compare.compare(before, engine, (idx, nnz, y, n_features), methods or tuple(compare.METHODS), rounds, epochs)
    for line in compare.format_rows(rows, rounds):
        print(line)
    engine.set_threads(None)
    return rows
