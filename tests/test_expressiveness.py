"""Expressiveness (notebook 03): completions and their factors, bounds on k, user–item blocks,
symmetries of the FM and what a fit recovers; every construction checked exactly or within a bound."""

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fmedu
from fmedu import FMInputError, symbolic
from fmedu import expressiveness as ex
from fmedu import user_item as ui

F64 = torch.float64
EPS = torch.finfo(F64).eps
ROOT = Path(__file__).resolve().parents[1]


def rational_symmetric(n, seed, zero_diag=True):
    rng = np.random.default_rng(seed)
    W = sp.zeros(n, n)
    for i, j in itertools.combinations(range(n), 2):
        W[i, j] = W[j, i] = sp.Rational(int(rng.integers(-9, 10)), int(rng.integers(1, 5)))
    if not zero_diag:
        for i in range(n):
            W[i, i] = sp.Rational(int(rng.integers(-9, 10)), 3)
    return W


def float_symmetric(n, seed):
    R = torch.randn(n, n, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return (R + R.T) / 2


# --- free diagonal ------------------------------------------------------------------------------


@given(n=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_pair_factor_is_exactly_the_dominant_completion(n, seed):
    W = rational_symmetric(n, seed, zero_diag=False)
    V = ex.pair_factor(W)
    A = ex.dominant_completion(W)
    assert (V * V.T - A).applyfunc(sp.simplify).is_zero_matrix
    assert ex.offdiag_error(V, W) == 0
    for i in range(n):  # diagonal is the absolute row sum off the diagonal
        assert A[i, i] == sum(abs(W[i, j]) for j in range(n) if j != i)


def test_pair_factor_symbolic_entries():
    a, b, c = sp.symbols("a b c", real=True)
    W = sp.Matrix([[0, a, b], [a, 0, c], [b, c, 0]])
    V = ex.pair_factor(W)
    assert sp.simplify(V * V.T - ex.dominant_completion(W)) == sp.zeros(3, 3)


@given(n=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_ldl_factor_of_strict_completion_has_n_columns(n, seed):
    W = rational_symmetric(n, seed)
    A = ex.dominant_completion(W, sp.Rational(1, 10))
    V = ex.ldl_factor_exact(A)
    assert V.shape == (n, n)
    assert (V * V.T - A).applyfunc(sp.simplify).is_zero_matrix
    assert ex.offdiag_error(V, W) == 0


def test_ldl_factor_drops_zero_pivots_and_refuses_non_psd():
    n = 6
    V = ex.ldl_factor_exact(n * sp.eye(n) - sp.ones(n, n))  # PSD of rank n - 1
    assert V.shape == (n, n - 1)
    assert ex.offdiag_error(V, ex.ones_offdiag(n, -1)) == 0
    with pytest.raises(FMInputError, match="not PSD"):
        ex.ldl_factor_exact(sp.Matrix([[1, -2], [-2, 1]]))
    with pytest.raises(FMInputError, match="zero pivot"):
        ex.ldl_factor_exact(sp.Matrix([[0, 1], [1, 0]]))


@settings(max_examples=25)
@given(n=st.integers(2, 7), seed=st.integers(0, 10_000))
def test_schur_completion_has_rank_n_minus_one(n, seed):
    W = rational_symmetric(n, seed, zero_diag=False)  # the diagonal of W is ignored
    M = ex.schur_completion_exact(W)
    assert ex.offdiag(M) == ex.offdiag(W)
    V = ex.ldl_factor_exact(M)  # raises if M is not PSD
    assert V.shape[1] <= n - 1
    assert (V * V.T - M).applyfunc(sp.simplify).is_zero_matrix
    with pytest.raises(FMInputError, match="at least 2"):
        ex.schur_completion_exact(sp.zeros(1, 1))


@given(n=st.integers(2, 60), seed=st.integers(0, 10_000))
def test_float_dominant_completion_factor(n, seed):
    W = float_symmetric(n, seed)
    M = ex.dominant_completion(W, 1e-3)
    assert float(torch.linalg.eigvalsh(M)[0]) >= 1e-3 * (1 - 1e-9) - 1e-12 * float(torch.linalg.matrix_norm(M, 2))
    V = ex.psd_factor(M)
    assert V.shape[1] == n
    assert float(ex.offdiag_error(V, W)) <= 10 * n * EPS * float(torch.linalg.matrix_norm(M, 2))


def test_trace_identity_and_zero_diagonal():
    for n, k in ((1, 3), (3, 4), (4, 3), (5, 2)):
        assert ex.trace_identity(n, k) == 0
    W = sp.Matrix([[0, 1], [1, 0]])
    assert W.trace() == 0 and min(W.eigenvals()) < 0  # not a Gram matrix
    assert ex.offdiag_error(sp.Matrix([[1], [1]]), W) == 0  # but its off-diagonal is


def test_notes_dominance_rule_counterexample_and_e7_example():
    assert ex.notes_dominance_rule_exact(sp.Matrix([[1, -2], [-2, 1]])) == (True, False, -1)
    assert ex.notes_dominance_rule_exact(sp.Matrix([[3, -1], [-1, 3]])) == (True, True, 2)
    # E7: positive definite without being dominant (unit diagonal, 3/5 off it)
    M = sp.Matrix(3, 3, lambda i, j: 1 if i == j else sp.Rational(3, 5))
    assert ex.notes_dominance_rule_exact(M) == (False, False, sp.Rational(2, 5))
    assert M.eigenvals() == {sp.Rational(11, 5): 1, sp.Rational(2, 5): 2}
    V = ex.ldl_factor_exact(M)
    assert V.shape == (3, 3) and (V * V.T - M).applyfunc(sp.simplify).is_zero_matrix


@settings(max_examples=25)
@given(n=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_trace_lower_bound(n, seed):
    W = rational_symmetric(n, seed)
    bound = ex.trace_lower_bound_exact(W)
    # the dominant completion's trace is exactly n − 1 times the bound ...
    assert ex.dominant_completion(W).trace() == (n - 1) * bound
    # ... and no PSD completion is below it: the identity behind the bound, with a symbolic diagonal
    delta = sp.symbols(f"d0:{n}", real=True)
    M = W + sp.diag(*delta)
    total = 0
    for i, j in itertools.combinations(range(n), 2):
        e = sp.zeros(n, 1)
        e[i], e[j] = 1, -1 if W[i, j] >= 0 else 1
        total += (e.T * M * e)[0]
    assert sp.expand(total - ((n - 1) * M.trace() - (n - 1) * bound)) == 0
    # and the Schur completion (PSD) respects it
    assert ex.schur_completion_exact(W).trace() >= bound


def test_trace_bound_is_attained_for_all_plus_one():
    for n in (3, 5, 8):
        W = ex.ones_offdiag(n, 1)
        assert ex.trace_lower_bound_exact(W) == n == (sp.ones(n, 1) * sp.ones(1, n)).trace()
        assert ex.offdiag_error(sp.ones(n, 1), W) == 0
        assert ex.dominant_completion(W).trace() == n * (n - 1)
    with pytest.raises(FMInputError, match="at least 2"):
        ex.trace_lower_bound_exact(sp.zeros(1, 1))


# --- how large k must be ------------------------------------------------------------------------


@given(n=st.integers(4, 9), k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_block_rank_never_exceeds_k(n, k, seed):
    rng = np.random.default_rng(seed)
    V = sp.Matrix(rng.integers(-3, 4, size=(n, k)).tolist())
    rows = list(range(n // 2))
    assert ex.block_rank_exact(V * V.T, rows, list(range(n // 2, n))) <= k


def test_block_rank_rejects_overlap():
    with pytest.raises(FMInputError, match="disjoint"):
        ex.block_rank_exact(sp.eye(4), [0, 1], [1, 2])


def test_dimension_count():
    for n in range(1, 40):
        k = ex.dimension_count_k(n)
        assert n * k - k * (k - 1) // 2 >= n * (n - 1) // 2
        assert k == 0 or n * (k - 1) - (k - 1) * (k - 2) // 2 < n * (n - 1) // 2
        assert k <= max(n - 1, 0)  # never above the proven upper bound
    assert ex.dimension_count_k(10) == 6
    with pytest.raises(FMInputError, match="positive int"):
        ex.dimension_count_k(0)


def test_offdiag_loss_gradient_three_ways():
    rng = np.random.default_rng(0)
    n, k = 7, 4
    W = rng.standard_normal((n, n))
    W = (W + W.T) / 2
    V = rng.standard_normal((n, k))
    _, grad = ex.offdiag_loss(V, W)
    Vt = torch.tensor(V, requires_grad=True)
    R = Vt @ Vt.T - torch.tensor(W)
    R = R - torch.diag(torch.diagonal(R))
    (R * R).sum().backward()
    assert np.allclose(grad, Vt.grad.numpy(), rtol=1e-12, atol=1e-12)
    h = 1e-6
    fd = np.zeros_like(V)
    for i, f in itertools.product(range(n), range(k)):
        E = np.zeros_like(V)
        E[i, f] = h
        fd[i, f] = (ex.offdiag_loss(V + E, W)[0] - ex.offdiag_loss(V - E, W)[0]) / (2 * h)
    assert np.allclose(grad, fd, rtol=1e-6, atol=1e-6)


def test_fit_offdiag_finds_planted_rank_and_not_less():
    W, _ = ex.planted_offdiag(8, 2, seed=4)
    assert ex.fit_offdiag(W, 2)[0] <= 1e-8
    assert ex.fit_offdiag(W, 1)[0] >= 1e-2
    # all −1 needs n − 1 columns (proven); the fit agrees on both sides of the bound
    assert ex.fit_offdiag(ex.ones_offdiag(6, -1), 5)[0] <= 1e-8
    assert ex.fit_offdiag(ex.ones_offdiag(6, -1), 4)[0] >= 1e-2
    with pytest.raises(FMInputError, match="positive int"):
        ex.fit_offdiag(W, 0)


def test_k_examples_bounds_are_certified():
    for name, (W, lower, upper, V) in ex.k_examples(8).items():
        assert 1 <= lower <= upper <= 7, name
        assert V.shape[1] == upper and ex.offdiag_error(V, W) == 0, name
    assert ex.k_examples(6)["all -1"][1:3] == (5, 5)
    assert ex.k_examples(6)["all +1"][1:3] == (1, 1)


def test_all_minus_one_bounds_meet_for_every_small_n():
    for n in range(2, 9):
        V = ex.simplex_factor(n)
        assert ex.offdiag_error(V, ex.ones_offdiag(n, -1)) == 0
        assert V.shape[1] == n - 1 == ex.all_minus_one_lower_bound(n)
    for bad in (1, 2.0, "3"):
        with pytest.raises(FMInputError, match="int >= 2"):
            ex.all_minus_one_lower_bound(bad)
        with pytest.raises(FMInputError, match="int >= 2"):
            ex.simplex_factor(bad)


@given(n=st.integers(2, 7), seed=st.integers(0, 10_000))
@settings(max_examples=15, deadline=None)
def test_schur_certificate_never_exceeds_n_minus_one_columns(n, seed):
    W = rational_symmetric(n, seed)
    V = ex.ldl_factor_exact(ex.schur_completion_exact(W))
    assert ex.offdiag_error(V, W) == 0
    assert V.shape[1] <= n - 1


def test_observed_scan():
    rows = [r for r in ex.k_scan_rows(6, seeds=(0, 1)) if r["example"] != "random ±1"]
    observed = ex.observed_k(rows)
    assert observed == {"planted rank 3": 3, "all +1": 1, "all -1": 5}


# --- user–item ----------------------------------------------------------------------------------


def test_user_item_idx_layout():
    idx = ui.user_item_idx(2, 3)
    assert idx.tolist() == [[0, 2], [0, 3], [0, 4], [1, 2], [1, 3], [1, 4]]
    assert ui.all_pairs_idx(4).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert ui.one_hot_pair(1, 2, 2, 3).T.tolist() == [[0, 1, 0, 0, 1]]
    with pytest.raises(FMInputError, match="0 ≤ u < n_u"):
        ui.one_hot_pair(2, 0, 2, 3)


def test_user_item_table_is_the_fm_definition_on_one_hot_pairs():
    _, w0, w, V = symbolic.fm_symbols(5, 3)
    Y = ui.user_item_table_exact(w0, w, V, 2)
    for u, i in itertools.product(range(2), range(3)):
        x = ui.one_hot_pair(u, i, 2, 3)
        assert sp.expand(Y[u, i] - symbolic.fm_prediction(x, w0, w, V)) == 0
        dot = sum(V[u, f] * V[2 + i, f] for f in range(3))
        assert sp.expand(Y[u, i] - (w0 + w[u] + w[2 + i] + dot)) == 0
    with pytest.raises(FMInputError, match="n_u"):
        ui.user_item_table_exact(w0, w, V, 5)


def test_tiny_example_rank_three_table_from_a_rank_one_fm():
    V = sp.Matrix([1, 2, -1, 2, 0, 1, -1])
    w = sp.Matrix([0, 1, 3, 1, -2, 0, 2])
    B_want = sp.Matrix([[3, -2, 1, 1], [6, -1, 3, 1], [2, 1, 2, 6]])
    assert ui.user_item_table_exact(0, w, V, 3) == B_want
    assert B_want.rank() == 3 and (V[:3, :] * V[3:, :].T).rank() == 1
    assert ui.user_item_min_k(B_want) == 1


@settings(max_examples=25)
@given(n_u=st.integers(1, 4), n_i=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_double_centring_gives_the_minimum_rank(n_u, n_i, seed):
    rng = np.random.default_rng(seed)
    r = int(rng.integers(0, min(n_u, n_i) + 1))
    low = sp.Matrix(rng.integers(-3, 4, size=(n_u, r)).tolist() or sp.zeros(n_u, 0)) * sp.Matrix(
        rng.integers(-3, 4, size=(r, n_i)).tolist() or sp.zeros(0, n_i)
    )
    a0 = sp.Matrix(rng.integers(-5, 6, size=(n_u, 1)).tolist())
    b0 = sp.Matrix(rng.integers(-5, 6, size=(n_i, 1)).tolist())
    B = low + a0 * sp.ones(1, n_i) + sp.ones(n_u, 1) * b0.T
    a, b = ui.row_column_effects(B)
    C = ui.double_centre(B)
    assert B - a * sp.ones(1, n_i) - sp.ones(n_u, 1) * b.T == C  # JBJ is a candidate ...
    assert ui.double_centre(B - a0 * sp.ones(1, n_i) - sp.ones(n_u, 1) * b0.T) == C  # ... J kills every effect
    k = ui.user_item_min_k(B)
    assert k == C.rank() <= min(low.rank(), B.rank())
    # the FM from the proof has exactly k columns (at least one) and reproduces the full model exactly
    w0, w = sp.Rational(1, 3), sp.Matrix([sp.Rational(j, 2) for j in range(n_u + n_i)])
    w0_fm, w_fm, V = ui.user_item_fm(w0, w, B)
    assert V.shape[1] == max(k, 1)
    assert ui.user_item_table_exact(w0_fm, w_fm, V, n_u) == ui.full_model_table(w0, w, B)


@settings(max_examples=30)
@given(n_u=st.integers(2, 12), n_i=st.integers(2, 12), r=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_float_user_item_fm_reproduces_full_model(n_u, n_i, r, seed):
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(n_u, r, dtype=F64, generator=gen) @ torch.randn(r, n_i, dtype=F64, generator=gen)
    B = B + torch.randn(n_u, 1, dtype=F64, generator=gen) + torch.randn(1, n_i, dtype=F64, generator=gen)
    w0, w = torch.randn((), dtype=F64, generator=gen), torch.randn(n_u + n_i, dtype=F64, generator=gen)
    w0_f, w_f, V = ui.user_item_fm(w0, w, B)
    assert V.shape[1] == ui.user_item_min_k(B) <= min(r, n_u - 1, n_i - 1)
    got = fmedu.predict_sparse(ui.user_item_idx(n_u, n_i), w0_f, w_f, V)
    scale = float(w0.abs() + 2 * w_f.abs().max() + B.abs().max())
    assert float((got - ui.full_interaction_predict(w0, w, B)).abs().max()) <= 64 * max(n_u, n_i) * EPS * scale


@given(n_u=st.integers(1, 12), n_i=st.integers(1, 12), r=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_balanced_svd_factor(n_u, n_i, r, seed):
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(n_u, r, dtype=F64, generator=gen) @ torch.randn(r, n_i, dtype=F64, generator=gen)
    V_u, V_i = ui.svd_factor(B)
    assert V_u.shape[1] == V_i.shape[1] <= min(r, n_u, n_i)
    scale = float(torch.linalg.matrix_norm(B, 2))
    assert torch.allclose(V_u @ V_i.T, B, atol=1e-12 * max(scale, 1))
    assert torch.allclose(V_u.T @ V_u, V_i.T @ V_i, atol=1e-10 * max(scale, 1))  # balanced


def test_rank_factor_exact_and_sympy_fm_predictions():
    B = sp.Matrix([[1, 2], [-1, sp.Rational(1, 3)], [0, 3]]) * sp.Matrix([[1, 0, -2, 3], [2, 1, 0, sp.Rational(2, 5)]])
    V_u, V_i = ui.rank_factor_exact(B)
    assert V_u.shape == (3, 2) and V_i.shape == (4, 2)
    assert V_u * V_i.T == B
    V = V_u.col_join(V_i)
    for u, i in itertools.product(range(3), range(4)):
        x = ui.one_hot_pair(u, i, 3, 4)
        assert symbolic.pairwise_double_sum(x, V) == B[u, i]
    assert ui.rank_factor_exact(sp.zeros(2, 3))[0] == sp.zeros(2, 1)


def test_full_model_table_checks_shapes():
    with pytest.raises(FMInputError, match=r"n_u \+ n_i"):
        ui.full_interaction_predict(
            torch.tensor(0.0, dtype=F64), torch.zeros(4, dtype=F64), torch.zeros(2, 3, dtype=F64)
        )
    with pytest.raises(FMInputError, match=r"n_u \+ n_i"):
        ui.full_model_table(0, sp.zeros(4, 1), sp.zeros(2, 3))
    with pytest.raises(FMInputError, match=r"n_u \+ n_i"):
        ui.user_item_fm(0, sp.zeros(4, 1), sp.zeros(2, 3))
    with pytest.raises(FMInputError, match=r"n_u \+ n_i"):
        ui.user_item_fm(torch.tensor(0.0, dtype=F64), torch.zeros(4, dtype=F64), torch.zeros(2, 3, dtype=F64))


def test_param_counts():
    assert ui.param_counts(943, 1682, 20) == {"n_u": 943, "n_i": 1682, "k": 20, "full": 1_588_752, "fm": 55_126}
    assert ui.param_counts(1, 1, 1)["full"] == 4 and ui.param_counts(1, 1, 1)["fm"] == 5


# --- identifiability ----------------------------------------------------------------------------


@settings(max_examples=12)
@given(p=st.integers(-9, 9), q=st.integers(1, 9), p2=st.integers(1, 9), q2=st.integers(-9, 9))
def test_rational_rotations_are_orthogonal_and_keep_predictions(p, q, p2, q2):
    Q = ui.rational_rotation(3, 0, 1, p, q) * ui.rational_rotation(3, 2, 1, p2, q2)
    assert Q.T * Q == sp.eye(3) and Q.det() == 1
    x, _, _, V = symbolic.fm_symbols(4, 3)
    assert sp.expand(symbolic.pairwise_rendle(x, V * Q) - symbolic.pairwise_rendle(x, V)) == 0
    assert sp.expand(ui.frobenius_sq(V * Q) - ui.frobenius_sq(V)) == 0
    assert sp.expand(ui.pair_interaction_sq(V * Q, 2) - ui.pair_interaction_sq(V, 2)) == 0


def test_rational_rotation_errors_and_the_3_4_5_triangle():
    assert ui.rational_rotation(2, 0, 1, 2, 1) == sp.Matrix(
        [[sp.Rational(3, 5), -sp.Rational(4, 5)], [sp.Rational(4, 5), sp.Rational(3, 5)]]
    )
    with pytest.raises(FMInputError, match="two different axes"):
        ui.rational_rotation(3, 1, 1, 2, 1)
    with pytest.raises(FMInputError, match="both be 0"):
        ui.rational_rotation(3, 0, 1, 0, 0)


@given(n=st.integers(2, 30), k=st.integers(3, 8), seed=st.integers(0, 10_000))
def test_rotation_keeps_float_predictions_and_procrustes_finds_it(n, k, seed):
    gen = torch.Generator().manual_seed(seed)
    V = torch.randn(n, k, dtype=F64, generator=gen)
    w = torch.randn(n, dtype=F64, generator=gen)
    x = torch.randn(8, n, dtype=F64, generator=gen)
    Q = ui.random_orthogonal(k, gen)
    assert torch.allclose(Q.T @ Q, torch.eye(k, dtype=F64), atol=1e-13)
    w0 = torch.tensor(0.0, dtype=F64)
    bound = 16 * n * EPS * (1 + 0.5 * float(((x.abs() @ V.abs()) ** 2).sum(-1).max()))
    assert float((fmedu.predict(x, w0, w, V @ Q) - fmedu.predict(x, w0, w, V)).abs().max()) <= bound
    if n >= k:  # V has full column rank (almost surely), so the alignment is unique
        R = ui.procrustes(V @ Q, V)
        assert float((V @ Q @ R - V).abs().max()) <= 1e-10 * float(V.abs().max())


def test_procrustes_rejects_shape_mismatch():
    with pytest.raises(FMInputError, match="same shape"):
        ui.procrustes(torch.zeros(3, 2, dtype=F64), torch.zeros(3, 3, dtype=F64))


def test_invertible_reparametrisation_keeps_the_block():
    _, _, _, V = symbolic.fm_symbols(4, 3)
    R = sp.Matrix([[2, 1, 0], [0, 1, 0], [sp.Rational(1, 3), 0, 1]])
    assert R.T * R != sp.eye(3)
    assert sp.expand((V[:2, :] * R) * (V[2:, :] * R.inv().T).T - V[:2, :] * V[2:, :].T).is_zero_matrix


def test_translations_keep_user_item_predictions_exactly():
    _, w0, w, V = symbolic.fm_symbols(5, 3)
    s = sp.Matrix([sp.symbols("s_1:4", real=True)])
    t = sp.Matrix([sp.symbols("t_1:4", real=True)])
    moved = ui.translate_user_item(w0, w, V, 2, s, t)
    assert (ui.user_item_table_exact(*moved, 2) - ui.user_item_table_exact(w0, w, V, 2)).is_zero_matrix
    # the block changes by a row effect plus a column effect, so J B J does not
    B, B_moved = V[:2, :] * V[2:, :].T, moved[2][:2, :] * moved[2][2:, :].T
    assert sp.expand(ui.double_centre(B_moved) - ui.double_centre(B)).is_zero_matrix
    assert not sp.expand(B_moved - B).is_zero_matrix


def test_translation_changes_both_regularisers_tiny_example():
    V = sp.Matrix([1, 2, -1, 2, 0, 1, -1])
    w = sp.Matrix([0, 1, 3, 1, -2, 0, 2])
    w0_t, w_t, V_t = ui.translate_user_item(0, w, V, 3, [1], [1])
    assert ui.user_item_table_exact(w0_t, w_t, V_t, 3) == ui.user_item_table_exact(0, w, V, 3)
    assert (ui.frobenius_sq(V), ui.frobenius_sq(V_t)) == (12, 27)
    assert (ui.pair_interaction_sq(V, 3), ui.pair_interaction_sq(V_t, 3)) == (36, 182)
    B, B_t = V[:3, :] * V[3:, :].T, V_t[:3, :] * V_t[3:, :].T
    assert ui.frobenius_sq(ui.double_centre(B)) == ui.frobenius_sq(ui.double_centre(B_t)) == sp.Rational(70, 3)


@given(n_u=st.integers(1, 6), n_i=st.integers(1, 6), k=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_float_translations_match_sympy_and_keep_predictions(n_u, n_i, k, seed):
    gen = torch.Generator().manual_seed(seed)
    w0, w = torch.randn((), dtype=F64, generator=gen), torch.randn(n_u + n_i, dtype=F64, generator=gen)
    V = torch.randn(n_u + n_i, k, dtype=F64, generator=gen)
    s, t = torch.randn(k, dtype=F64, generator=gen), torch.randn(k, dtype=F64, generator=gen)
    idx = ui.user_item_idx(n_u, n_i)
    moved = ui.translate_user_item(w0, w, V, n_u, s, t)
    y, y_moved = fmedu.predict_sparse(idx, w0, w, V), fmedu.predict_sparse(idx, *moved)
    assert torch.allclose(y_moved, y, atol=1e-12 * (1 + float(y.abs().max()) + float((V.abs().max() + 3) ** 2)))
    exact = ui.translate_user_item(
        sp.Float(float(w0), 30), sp.Matrix(w.tolist()), sp.Matrix(V.tolist()), n_u, s.tolist(), t.tolist()
    )
    assert abs(float(exact[0]) - float(moved[0])) <= 1e-12 * (1 + float(s.abs().sum() * t.abs().sum()))
    assert torch.allclose(torch.tensor(np.array(exact[2].tolist(), dtype=float)), moved[2], atol=1e-13)


def test_regularisers_differ_exactly():
    same_frob = (sp.Matrix([[1, 0], [1, 0]]), sp.Matrix([[1, 0], [0, 1]]))
    assert [ui.frobenius_sq(M) for M in same_frob] == [2, 2]
    assert [ui.pair_interaction_sq(M, 1) for M in same_frob] == [1, 0]
    same_pair = (sp.Matrix([[1, 0], [1, 0]]), sp.Matrix([[2, 0], [sp.Rational(1, 2), 0]]))
    assert [ui.pair_interaction_sq(M, 1) for M in same_pair] == [1, 1]
    assert [ui.frobenius_sq(M) for M in same_pair] == [2, sp.Rational(17, 4)]


def test_regulariser_families():
    reparam = ui.reparametrisation_rows(thetas=np.logspace(-1, 1, 9))
    two_nuc = reparam[0]["two_nuclear_norm"]
    assert all(r["max_prediction_change"] <= 1e-12 * r["prediction_scale"] for r in reparam)
    assert all(r["frobenius_sq"] >= two_nuc * (1 - 1e-12) for r in reparam)
    assert abs(reparam[4]["frobenius_sq"] - two_nuc) <= 1e-12 * two_nuc  # θ = 1: the balanced factor
    assert max(r["frobenius_sq"] for r in reparam) > 2 * two_nuc
    b = [r["B_frobenius_sq"] for r in reparam]
    assert max(b) - min(b) <= 1e-12 * max(b)
    shifts = ui.translation_rows(thetas=np.linspace(-2, 2, 9))
    assert all(r["max_prediction_change"] <= 1e-12 * r["prediction_scale"] for r in shifts)
    c = [r["JBJ_frobenius_sq"] for r in shifts]
    assert max(c) - min(c) <= 1e-12 * max(c)
    b = [r["B_frobenius_sq"] for r in shifts]
    assert max(b) > 10 * min(b) and min(b) >= c[0] * (1 - 1e-12)  # ‖B‖² ≥ ‖JBJ‖² (exercise 3.4)


def test_double_centre_sympy_torch_and_effects():
    B = torch.randn(3, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    Bs = sp.Matrix(B.tolist())
    assert torch.allclose(
        ui.double_centre(B), torch.tensor(np.array(ui.double_centre(Bs).tolist(), dtype=float)), atol=1e-13
    )
    a, b = torch.randn(3, 1, dtype=F64), torch.randn(1, 4, dtype=F64)
    assert torch.allclose(ui.double_centre(B + a + b + 2.0), ui.double_centre(B), atol=1e-13)
    assert not torch.allclose(ui.double_centre(B), B)
    a_t, b_t = ui.row_column_effects(B)
    assert torch.allclose(B - a_t[:, None] - b_t[None, :], ui.double_centre(B), atol=1e-13)
    a_s, b_s = ui.row_column_effects(Bs)
    assert torch.allclose(torch.tensor([float(e) for e in a_s], dtype=F64), a_t, atol=1e-13)
    assert torch.allclose(torch.tensor([float(e) for e in b_s], dtype=F64), b_t, atol=1e-13)


@pytest.mark.parametrize("d", [2, 3])
def test_translation_symmetry_needs_fixed_nnz(d):
    c = sp.Matrix([sp.symbols("c_1:4", real=True)])
    _, w0, w, V = symbolic.fm_symbols(5, 3)
    moved = ui.translate_fixed_nnz(w0, w, V, c, d)
    for size in (2, 3):
        for S in itertools.combinations(range(5), size):
            x = [1 if f in S else 0 for f in range(5)]
            diff = sp.expand(symbolic.fm_prediction(x, *moved) - symbolic.fm_prediction(x, w0, w, V))
            assert (diff == 0) == (size == d)


def test_translate_fixed_nnz_float_matches_definition():
    gen = torch.Generator().manual_seed(0)
    w0, w, V = (
        torch.randn((), dtype=F64, generator=gen),
        torch.randn(6, dtype=F64, generator=gen),
        torch.randn(6, 3, dtype=F64, generator=gen),
    )
    c = torch.randn(3, dtype=F64, generator=gen)
    idx = ui.recovery_samples("pairs+triples", 6)
    triples = idx[:, 2] >= 0
    moved = ui.translate_fixed_nnz(w0, w, V, c, 3)
    y, y_moved = fmedu.predict_sparse(idx, w0, w, V), fmedu.predict_sparse(idx, *moved)
    assert torch.allclose(y_moved[triples], y[triples], atol=1e-12)
    assert float((y_moved[~triples] - y[~triples]).abs().min()) > 1e-3


def test_diagonal_pinned():
    _, V0 = ex.planted_offdiag(7, 3, seed=1)
    assert ui.diagonal_pinned_exact(V0 * V0.T, 3)
    _, V1 = ex.planted_offdiag(5, 3, seed=1)  # n < 2k + 1: no disjoint k×k blocks avoid i
    assert not ui.diagonal_pinned_exact(V1 * V1.T, 3)


def test_planted_recovery_by_fitting():
    errors = ui.planted_recovery("user-item", 2)
    assert set(errors) == set(ui.RECOVERY_QUANTITIES)
    assert errors["predictions"] <= 1e-8 and errors["JBJ"] <= 1e-6
    assert errors["B"] >= 1e-2 and errors["V up to rotation"] >= 1e-2 and errors["w"] >= 1e-2
    mixed = ui.planted_recovery("pairs+triples", 2)
    assert mixed["predictions"] <= 1e-8 and mixed["V up to rotation"] <= 1e-6 and mixed["w"] <= 1e-6
    assert mixed["V"] >= 1e-2 and mixed["B"] is None and mixed["JBJ"] is None
    pairs = ui.planted_recovery("pairs", 0)
    assert pairs["predictions"] <= 1e-8 and pairs["V up to rotation"] >= 1e-2
    with pytest.raises(FMInputError, match="unknown setting"):
        ui.recovery_samples("triples", 5)


# --- input errors -------------------------------------------------------------------------------


def test_check_symmetric_errors():
    with pytest.raises(FMInputError, match="square"):
        ex.dominant_completion(torch.zeros(2, 3, dtype=F64))
    with pytest.raises(FMInputError, match="symmetric"):
        ex.dominant_completion(torch.tensor([[0.0, 1.0], [2.0, 0.0]], dtype=F64))
    with pytest.raises(FMInputError, match="symmetric"):
        ex.pair_factor(sp.Matrix([[0, 1], [2, 0]]))
    with pytest.raises(FMInputError, match="torch.Tensor or a sympy Matrix"):
        ex.offdiag([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(FMInputError, match="float64"):
        ex.offdiag(torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(FMInputError, match="non-finite"):
        ex.offdiag(torch.tensor([[0.0, float("nan")], [float("nan"), 0.0]], dtype=F64))
    with pytest.raises(FMInputError, match="eps must be"):
        ex.dominant_completion(torch.zeros(2, 2, dtype=F64), eps=-1.0)
    with pytest.raises(FMInputError, match="not PSD"):
        ex.psd_factor(torch.tensor([[1.0, -2.0], [-2.0, 1.0]], dtype=F64))
    with pytest.raises(FMInputError, match="positive int"):
        ex.fit_offdiag(sp.zeros(3, 3), 0)


def test_three_vector_figure_data_has_inner_products_minus_one():
    rows = list(csv.DictReader(open(ROOT / "figures" / "03_three_vectors.csv")))
    assert [int(r["feature"]) for r in rows] == [1, 2, 3]
    for r, nxt in zip(rows, rows[1:] + rows[:1]):
        x, y, nx, ny = float(r["x"]), float(r["y"]), float(nxt["x"]), float(nxt["y"])
        assert abs(x * x + y * y - 2) <= 8 * EPS
        assert abs(x * nx + y * ny + 1) <= 8 * EPS
        assert float(r["inner_with_next"]) == x * nx + y * ny


def test_block_diagram_data_marks_only_the_user_item_block():
    rows = list(csv.DictReader(open(ROOT / "figures" / "04_block_diagram.csv")))
    n_u, n = 3, 7
    assert len(rows) == n * n
    for r in rows:
        i, j = int(r["row"]), int(r["col"])
        expected = "diagonal" if i == j else ("B" if (i < n_u) != (j < n_u) else "unused")
        assert r["block"] == expected
