"""fmedu.bench: both prox implementations timed side by side; the report's last line."""

import re

import numpy as np
import pytest

from fmedu import engine
from fmedu.movielens import bench


def small_data(N=3000, n=300, seed=0):
    return bench.synthetic_data(N, n, positive=0.2, seed=seed)


def test_engine_outpaces_the_published_torch_step():
    idx, nnz, y, n, _ = small_data()
    pub = bench.published_steps_per_second(idx, nnz, y, n, steps=20)
    eng = bench.engine_steps_per_second(idx, nnz, y, n, "prox", rows=np.arange(3000), repeats=1)
    assert pub > 0 and eng > 10 * pub  # the measured ratio is ~1000x; 10x leaves room for noisy machines


def test_report_ends_with_the_speed_up_line(monkeypatch, capsys):
    monkeypatch.setattr(bench, "_data", small_data)
    ratio = bench.main(published_steps=20, quick=True, threads=1)
    lines = capsys.readouterr().out.strip().splitlines()
    match = re.fullmatch(r"prox step speed-up: ([\d,]+)×", lines[-1])
    assert match and int(match.group(1).replace(",", "")) == round(ratio)
    assert any(line.strip().startswith("adam") for line in lines)
    # each method's row: first-epoch rate, later-epoch rate, later-epoch rate per thread (1 thread here)
    start = next(i for i, line in enumerate(lines) if line.startswith("sweep throughput, cpu engine (1 threads"))
    for method, line in zip(bench.BENCH_METHODS, lines[start + 1 : start + 1 + len(bench.BENCH_METHODS)]):
        name, first, later, per_thread = line.split()
        assert name == method and per_thread == later and float(first.replace(",", "")) > 0
    ratio_line = next(line for line in lines if line.startswith("adam /"))
    number = r"\d+\.\d\d"
    assert re.fullmatch(
        rf"adam / sgd on the cpu, median \(range\) over 2 rounds: {number} \({number}-{number}\); "
        rf"first epoch: {number} \({number}-{number}\)",
        ratio_line,
    )
    regularised = next(line for line in lines if line.startswith("prox+L2 /"))
    assert re.fullmatch(rf"prox\+L2 / sgd on the cpu, median \(range\) over 2 rounds: {number} .*", regularised)
    # without a GPU (the tests run the simulator, which does not count) the GPU part says so
    if bench.gpu_present() is None:
        assert "gpu: no CUDA GPU on this machine; not measured" in lines
    else:
        assert any("gpu engine" in line for line in lines)
    engine.set_threads(None)


def test_methods_take_turns_and_keep_their_best_round(monkeypatch):
    """A machine slowing down during the benchmark slows every method alike: rounds interleave."""
    calls = []
    speed = iter(range(100, 0, -1))  # every timed trainer is slower than the one before

    def fake_rates(make, epochs, samples):
        calls.append(make.method)
        rate = float(next(speed))
        return [rate, rate / 2][:epochs]

    def fake_maker(idx, nnz, y, n_features, method, runs, rows, device):
        class Make:
            def __call__(self):
                return type("T", (), {"epoch": lambda self: None})()

        make = Make()
        make.method = method
        return make

    monkeypatch.setattr(bench, "_epoch_rates", fake_rates)
    monkeypatch.setattr(bench, "_trainer_maker", fake_maker)
    idx, nnz, y, n, _ = small_data(N=50, n=20)
    out = bench.sweep_throughput(idx, nnz, y, n, runs=1, threads=1, repeats=3)
    assert calls == list(bench.BENCH_METHODS) * 3
    # each method keeps its best (its first) round: 100, 99, ... for the six methods
    assert [out["first"][m] for m in bench.BENCH_METHODS] == [100.0, 99.0, 98.0, 97.0, 96.0, 95.0]
    assert out["rates"]["sgd"] == 49.0
    # ratios are taken within a round: adam's rounds (96, 90, 84) over sgd's (98, 92, 86)
    median, low, high = bench.ratio_in_rounds(out["rounds"], "adam", "sgd", epoch=0)
    assert (median, low, high) == (90 / 92, 84 / 86, 96 / 98)
    engine.set_threads(None)


def test_the_gpu_engine_is_timed_like_the_cpu_engine():
    """The GPU path of the benchmark on the simulator (a tiny workload): a positive rate."""
    cuda = pytest.importorskip("fmedu.engine.cuda")
    if not cuda.cuda.is_available():
        pytest.skip("neither a GPU nor the simulator")
    idx, nnz, y, n, _ = small_data(N=40, n=30)
    rate = bench.engine_steps_per_second(idx, nnz, y, n, "adam", runs=2, rows=np.arange(20), repeats=1, device="cuda")
    assert rate > 0


def test_many_runs_share_the_sweeps_ten_seeds():
    """Timed epochs shuffle the rows once per distinct seed, as a sweep of 10 attempts does, not
    once per run (500 host permutations would dwarf a GPU kernel)."""
    idx, nnz, y, n, _ = small_data(N=200, n=50)
    trainer = bench._trainer_maker(idx, nnz, y, n, "sgd", 25, np.arange(200), "cpu")()
    orders, order_of_run = trainer.orders(0)
    assert orders.shape == (bench.SWEEP_SEEDS, 200)
    assert sorted({run.seed for run in trainer.runs}) == list(range(bench.SWEEP_SEEDS))
    assert np.array_equal(order_of_run, np.arange(25) % bench.SWEEP_SEEDS)
