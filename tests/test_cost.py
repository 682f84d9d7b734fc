"""Cost helpers: exact flop counts and the slope fit."""

import math

import torch

import fmedu
from fmedu import cost, testing


def test_flop_counts_match_formulas():
    for n, k, batch in [(30, 3, 4), (64, 5, 8)]:
        gen = torch.Generator().manual_seed(n)
        x = torch.randn(batch, n, dtype=torch.float64, generator=gen)
        w0, w, V = (
            torch.zeros((), dtype=torch.float64),
            torch.zeros(n, dtype=torch.float64),
            torch.randn(n, k, dtype=torch.float64, generator=gen),
        )
        assert cost.matmul_flops(fmedu.predict_naive, x, w0, w, V) == 2 * n * n * k + 2 * batch * n * n
        assert cost.matmul_flops(fmedu.predict, x, w0, w, V) == 4 * batch * n * k


def test_slope_fit_recovers_power_laws():
    sizes = [10, 20, 40, 80]
    assert math.isclose(cost.fit_loglog_slope(sizes, [3 * s**2 for s in sizes]), 2.0, rel_tol=1e-12)
    assert math.isclose(cost.fit_loglog_slope(sizes, [0.1 * s for s in sizes]), 1.0, rel_tol=1e-12)


def test_best_time_is_positive_and_calls_function():
    calls = []
    seconds = cost.best_time(lambda: calls.append(1), repeat=2, min_seconds=0.0)
    assert seconds >= 0 and len(calls) >= 3
    both = cost.best_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeat=3, min_seconds=0.0)
    assert set(both) == {"a", "b"} and calls.count("a") >= 4 and calls.count("b") >= 4


def test_elements_written_follow_nnz_not_n():
    """The sparse form's work is affine in nnz and the same at n = 50 and n = 5,000."""
    counts = {}
    for n in (50, 5_000):
        gen = torch.Generator().manual_seed(n)
        w0, w, V = testing.random_fm(n, 3, gen)
        for m in (2, 4, 8):
            idx = torch.stack([torch.randperm(n, generator=gen)[:m] for _ in range(5)])
            counts[n, m] = cost.elements_written(fmedu.predict_sparse, idx, w0, w, V, check=False)
    assert all(counts[50, m] == counts[5_000, m] for m in (2, 4, 8))
    assert counts[50, 8] - counts[50, 4] == 2 * (counts[50, 4] - counts[50, 2]) > 0
    # views write nothing; an elementwise product writes its output once
    x = torch.ones(4, 6, dtype=torch.float64)
    assert cost.elements_written(lambda: x.unsqueeze(0).expand(3, 4, 6)) == 0
    assert cost.elements_written(lambda: x * x) == 24


def test_timing_tables_have_every_size_and_form():
    rows = cost.time_dense_forms([8, 16], k=3, batch=2, repeat=1)
    assert sorted((r.size, r.form) for r in rows) == [(8, "naive"), (8, "rendle"), (16, "naive"), (16, "rendle")]
    sparse = cost.time_sparse_form([1, 3], ns=(50,), k=3, batch=2, repeat=1)
    assert [r.size for r in sparse] == [1, 3] and all(r.seconds > 0 for r in sparse)
