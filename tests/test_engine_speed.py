"""What makes the CPU engine fast, each piece checked to keep the results bit for bit."""

import math
import platform
import re
from pathlib import Path

import numba
import numpy as np
import pytest

from fmedu import engine
from fmedu.__main__ import main as cli
from fmedu.engine import cpu, rules
from fmedu.errors import FMInputError
from fmedu.movielens import bench, compare
from fmedu.prox import scalar

ROOT = Path(__file__).resolve().parents[1]

MARGINS = [0.0, -0.0, 1e-300, -1e-300, 0.5, -0.5, 1.0, -1.0, 30.0, -30.0, 36.8, -36.8, 700.0, -700.0, 800.0, -800.0]
MARGINS += [math.inf, -math.inf, *np.random.default_rng(0).normal(0, 8, 200)]


@numba.njit
def _compiled(y, y_hat):
    return rules.logistic_loss_slope(y, y_hat), scalar.softplus_neg(y * y_hat), rules.logistic_slope(y, y_hat)


def test_the_shared_exponential_gives_the_floats_of_the_two_separate_pieces():
    """ℓ and dℓ/dŷ from one e^(−|m|) are the very floats of softplus_neg and logistic_slope,
    in Python and compiled, for both labels, both zeros, overflow and infinities."""
    for y in (1.0, -1.0):
        for y_hat in MARGINS:
            loss, slope = rules.logistic_loss_slope(y, y_hat)
            assert loss == scalar.softplus_neg(y * y_hat) and slope == rules.logistic_slope(y, y_hat)
            assert math.copysign(1, slope) == math.copysign(1, rules.logistic_slope(y, y_hat))
            (c_loss, c_slope), c_sep_loss, c_sep_slope = _compiled(y, y_hat)
            assert (c_loss, c_slope) == (loss, slope) == (c_sep_loss, c_sep_slope)
        nan_loss, nan_slope = rules.logistic_loss_slope(y, math.nan)
        assert math.isnan(nan_loss) and math.isnan(nan_slope)


def _packed_double_ops(vectorised: bool) -> int:
    """Packed double-precision arithmetic in a fresh compilation of the SGD run kernel."""
    kernel = numba.njit(_nrt=False, error_model="numpy")(cpu._sgd_run.py_func)
    theta, idx = np.zeros((50, 21)), np.zeros((4, 11), np.int64)
    args = (0.01, 0.0, theta, np.arange(4), (idx, np.ones(4, np.int64), np.ones(4)), 0.0, 0.0, (0,) * 21)
    if vectorised:
        with cpu._slp_vectorised():
            kernel(*args)
    else:
        kernel(*args)
    asm = kernel.inspect_asm(kernel.signatures[0])
    return len(re.findall(r"\b(?:v?(?:add|sub|mul)pd)\b", asm))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="counts x86-64 instructions")
def test_the_column_loops_are_vectorised_only_with_the_slp_vectoriser():
    """With k + 1 known at compile time the column loops are unrolled; numba's default (no SLP
    vectoriser) leaves them scalar, the engine's setting packs them; the setting is restored."""
    before = numba.core.config.SLP_VECTORIZE
    with_slp, without = _packed_double_ops(True), _packed_double_ops(False)
    assert numba.core.config.SLP_VECTORIZE == before
    assert with_slp >= 20 and with_slp > 2 * without


def test_compiled_runs_equal_the_shared_pieces_run_as_python():
    """The compiled engine (stack buffers, vectorised columns, the gathered visiting order, int32
    indices) changes no result: an SGD, an Adam and a prox run equal a plain
    Python replay of the same per-sample pieces (no compiled code), bit for bit."""
    idx, nnz, y, n, _ = bench.synthetic_data(N=300, n=40, seed=3)
    for method in ("sgd", "adam", "prox"):
        trainer = engine.make_trainer([engine.Run(method, 0.02, 5)], idx, nnz, y, n_features=n, k=4)
        trainer.epoch()
        w0, theta = _python_epoch(method, 0.02, 5, idx, nnz, y, n, 4)
        assert trainer.w0[0] == w0 and np.array_equal(trainer.theta[0], theta), method


def _python_epoch(method, eta, seed, idx, nnz, y, n, k):
    """One epoch of one run written with the shared pieces called as Python (the simulator's way)."""
    from fmedu.engine import adam, common

    w0, w, V = common.init_params(seed, n, k)
    theta = np.concatenate([w[:, None], V], axis=1)
    K1 = k + 1
    col_s, col_sq, coef = np.zeros(K1), np.zeros(K1), np.zeros(adam.SERIES_TERMS + 1)
    m0 = v0 = 0.0
    exp_avg, exp_avg_sq, last = np.zeros_like(theta), np.zeros_like(theta), np.zeros(n, np.int64)
    tables = adam.tables()
    for t, row in enumerate(common.epoch_permutation(seed, 0, np.arange(len(y))), start=1):
        d = int(nnz[row])
        if method == "adam":
            rules.adam_catch_up_rows(theta, exp_avg, exp_avg_sq, last, idx, row, d, t - 1, eta, 0, K1, 1, tables, coef)
        rules.column_sums(theta, idx, row, d, 0, K1, 1, col_s, col_sq)
        B, A, C = rules.sample_scalars(w0, col_s, col_sq)
        y_hat = B + 0.5 * (C - A)
        dl = rules.logistic_slope(y[row], y_hat)
        if method == "sgd":
            w0 = rules.sgd_update(w0, dl, eta)
            rules.sgd_columns(theta, idx, row, d, 0, K1, 1, col_s, dl, eta, 0.0, 0.0)
        elif method == "adam":
            step_size, c2_sqrt = adam.step_factors(t, eta, tables)
            w0, m0, v0 = adam.adam_update(w0, m0, v0, dl, step_size, c2_sqrt)
            rules.adam_columns(
                theta, exp_avg, exp_avg_sq, last, idx, row, d, 0, K1, 1, col_s, dl, step_size, c2_sqrt, t, 0.0, 0.0
            )
        else:
            beta, c, inv_E, rho = rules.prox_step_coefficients(B, A, C, d, eta, y[row], w0, col_s[0], 0.0, 0.0, False)
            w0 += beta
            rules.prox_columns(theta, idx, row, d, 0, K1, 1, col_s, beta, c, inv_E, True, rho)
    if method == "adam":
        rules.adam_flush_columns(theta, exp_avg, exp_avg_sq, last, len(y), eta, 0, K1, 1, tables, coef)
    return w0, theta


def test_compare_runs_two_engines_in_turns_and_reports_identical_results():
    """bench --against: this tree against itself gives the same parameters and a full report."""
    before = compare.load_engine(ROOT)
    assert before.__name__ == "fmedu_against.engine" and before is not engine
    idx, nnz, y, n, _ = bench.synthetic_data(N=2000, n=200, seed=1)
    rows = compare.compare(before, engine, (idx, nnz, y, n), methods=("sgd", "prox+L2"), rounds=2, epochs=2)
    assert [row["method"] for row in rows] == ["sgd", "prox+L2"]
    for row in rows:
        assert row["identical"] is True and len(row["ratios"]) == 2
        assert 0 < row["low"] <= min(row["ratios"]) <= max(row["ratios"]) <= row["high"]
        assert row["before_rate"] > 0 and row["after_rate"] > 0
    lines = compare.format_rows(rows, rounds=2)
    assert lines[0].startswith("this engine against --against's") and "median over 2 rounds" in lines[0]
    assert lines[2].split()[0] == "sgd" and lines[2].split()[-1] == "True"
    with pytest.raises(FMInputError, match="unknown method"):
        compare.compare(before, engine, (idx, nnz, y, n), methods=("bogus",), rounds=1, epochs=1)
    engine.set_threads(None)


def test_against_a_folder_without_fmedu_is_refused_in_words(tmp_path, capsys):
    with pytest.raises(FMInputError, match="no fmedu package with an engine there"):
        compare.load_engine(tmp_path)
    assert cli(["bench", "--against", str(tmp_path)]) == 2
    assert "git worktree add" in capsys.readouterr().err
