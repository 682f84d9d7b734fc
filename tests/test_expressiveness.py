"""Expressiveness (notebook 03): completions and their factors, bounds on k, user–item blocks,
symmetries of the FM and what a fit recovers; every construction checked exactly or within a bound."""

import itertools

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fmedu
from fmedu import FMInputError, symbolic
from fmedu import expressiveness as ex

F64 = torch.float64
EPS = torch.finfo(F64).eps


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


@given(n=st.integers(2, 60), seed=st.integers(0, 10_000))
def test_float_dominant_and_shift_completions(n, seed):
    W = float_symmetric(n, seed)
    for A, rank in ((ex.dominant_completion(W, 1e-3), n), (ex.shift_completion(W), n - 1)):
        assert float(torch.linalg.eigvalsh(A)[0]) >= -1e-12 * float(torch.linalg.matrix_norm(A, 2))
        V = ex.psd_factor(A)
        assert V.shape[1] <= rank
        assert float(ex.offdiag_error(V, W)) <= 10 * n * EPS * float(torch.linalg.matrix_norm(A, 2))


def test_trace_identity_and_zero_diagonal():
    for n, k in ((1, 3), (3, 4), (4, 3), (5, 2)):
        assert ex.trace_identity(n, k) == 0
    W = sp.Matrix([[0, 1], [1, 0]])
    assert W.trace() == 0 and min(W.eigenvals()) < 0  # not a Gram matrix
    assert ex.offdiag_error(sp.Matrix([[1], [1]]), W) == 0  # but its off-diagonal is


def test_notes_dominance_rule_counterexample():
    assert ex.notes_dominance_rule_exact(sp.Matrix([[1, -2], [-2, 1]])) == (True, False, -1)
    assert ex.notes_dominance_rule_exact(sp.Matrix([[3, -1], [-1, 3]])) == (True, True, 2)
    assert ex.notes_dominance_rule_exact(sp.ones(3, 3))[1:] == (False, 0)  # Gram, not dominant


def test_min_trace_certificate_for_all_plus_one():
    for n in (3, 5, 8):
        W = ex.ones_offdiag(n, 1)
        Y = sp.Rational(n, n - 1) * (sp.eye(n) - sp.ones(n, n) / n)
        assert min(Y.eigenvals()) >= 0 and all(Y[i, i] == 1 for i in range(n))
        assert -sum(W[i, j] * Y[i, j] for i in range(n) for j in range(n) if i != j) == n
        assert ex.dominant_completion(W).trace() == n * (n - 1)


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
    assert ex.dimension_count_k(10) == 6


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


def test_k_examples_bounds_and_observed_scan():
    examples = ex.k_examples(6)
    assert {name: (lo, up) for name, (_, lo, up) in examples.items()}["all -1"] == (5, 5)
    rows = [r for r in ex.k_scan_rows(6, seeds=(0, 1)) if r["example"] != "random ±1"]
    observed = ex.observed_k(rows)
    assert observed == {"planted rank 3": 3, "all +1": 1, "all -1": 5}


# --- user–item ----------------------------------------------------------------------------------


def test_user_item_idx_layout():
    idx = ex.user_item_idx(2, 3)
    assert idx.tolist() == [[0, 2], [0, 3], [0, 4], [1, 2], [1, 3], [1, 4]]
    assert ex.all_pairs_idx(4).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


@given(n_u=st.integers(1, 12), n_i=st.integers(1, 12), r=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_fm_with_rank_k_reproduces_full_model(n_u, n_i, r, seed):
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(n_u, r, dtype=F64, generator=gen) @ torch.randn(r, n_i, dtype=F64, generator=gen)
    w0, w = torch.randn((), dtype=F64, generator=gen), torch.randn(n_u + n_i, dtype=F64, generator=gen)
    V_u, V_i = ex.svd_factor(B)
    assert V_u.shape[1] == V_i.shape[1] <= min(r, n_u, n_i)
    V = torch.cat([V_u, V_i])
    got = fmedu.predict_sparse(ex.user_item_idx(n_u, n_i), w0, w, V)
    want = ex.full_interaction_predict(w0, w, B)
    scale = float(w0.abs() + 2 * w.abs().max() + torch.linalg.matrix_norm(B, 2))
    assert float((got - want).abs().max()) <= 64 * max(n_u, n_i) * EPS * scale
    assert torch.allclose(V_u.T @ V_u, V_i.T @ V_i, atol=1e-10 * scale)  # balanced


def test_rank_factor_exact_and_sympy_fm_predictions():
    B = sp.Matrix([[1, 2], [-1, sp.Rational(1, 3)], [0, 3]]) * sp.Matrix([[1, 0, -2, 3], [2, 1, 0, sp.Rational(2, 5)]])
    V_u, V_i = ex.rank_factor_exact(B)
    assert V_u.shape == (3, 2) and V_i.shape == (4, 2)
    assert V_u * V_i.T == B
    V = V_u.col_join(V_i)
    for u, i in itertools.product(range(3), range(4)):
        x = sp.Matrix([1 if f in (u, 3 + i) else 0 for f in range(7)])
        assert symbolic.pairwise_double_sum(x, V) == B[u, i]
    assert ex.rank_factor_exact(sp.zeros(2, 3))[0] == sp.zeros(2, 1)


def test_full_interaction_predict_checks_shapes():
    with pytest.raises(FMInputError, match=r"n_u \+ n_i"):
        ex.full_interaction_predict(
            torch.tensor(0.0, dtype=F64), torch.zeros(4, dtype=F64), torch.zeros(2, 3, dtype=F64)
        )


def test_param_counts():
    assert ex.param_counts(943, 1682, 20) == {"n_u": 943, "n_i": 1682, "k": 20, "full": 1_588_752, "fm": 55_126}
    assert ex.param_counts(1, 1, 1)["full"] == 4 and ex.param_counts(1, 1, 1)["fm"] == 5


# --- identifiability ----------------------------------------------------------------------------


@settings(max_examples=12)
@given(entries=st.lists(st.fractions(min_value=-5, max_value=5, max_denominator=7), min_size=3, max_size=3))
def test_cayley_is_exactly_orthogonal_and_keeps_predictions(entries):
    p, q, r = (sp.Rational(e.numerator, e.denominator) for e in entries)
    S = sp.Matrix([[0, p, q], [-p, 0, r], [-q, -r, 0]])
    Q = ex.cayley_exact(S)
    assert Q.T * Q == sp.eye(3)
    x, _, _, V = symbolic.fm_symbols(4, 3)
    assert sp.expand(symbolic.pairwise_rendle(x, V * Q) - symbolic.pairwise_rendle(x, V)) == 0
    assert sp.expand(ex.frobenius_sq(V * Q) - ex.frobenius_sq(V)) == 0
    assert sp.expand(ex.pair_interaction_sq(V * Q, 2) - ex.pair_interaction_sq(V, 2)) == 0


def test_cayley_rejects_non_skew():
    with pytest.raises(FMInputError, match="skew"):
        ex.cayley_exact(sp.eye(2))


@given(n=st.integers(2, 30), k=st.integers(3, 8), seed=st.integers(0, 10_000))
def test_rotation_keeps_float_predictions_and_procrustes_finds_it(n, k, seed):
    gen = torch.Generator().manual_seed(seed)
    V = torch.randn(n, k, dtype=F64, generator=gen)
    w = torch.randn(n, dtype=F64, generator=gen)
    x = torch.randn(8, n, dtype=F64, generator=gen)
    Q = ex.random_orthogonal(k, gen)
    assert torch.allclose(Q.T @ Q, torch.eye(k, dtype=F64), atol=1e-13)
    w0 = torch.tensor(0.0, dtype=F64)
    bound = 16 * n * EPS * (1 + 0.5 * float(((x.abs() @ V.abs()) ** 2).sum(-1).max()))
    assert float((fmedu.predict(x, w0, w, V @ Q) - fmedu.predict(x, w0, w, V)).abs().max()) <= bound
    if n >= k:  # V has full column rank (almost surely), so the alignment is unique
        R = ex.procrustes(V @ Q, V)
        assert float((V @ Q @ R - V).abs().max()) <= 1e-10 * float(V.abs().max())


def test_procrustes_rejects_shape_mismatch():
    with pytest.raises(FMInputError, match="same shape"):
        ex.procrustes(torch.zeros(3, 2, dtype=F64), torch.zeros(3, 3, dtype=F64))


def test_regularisers_differ_exactly():
    same_frob = (sp.Matrix([[1, 0], [1, 0]]), sp.Matrix([[1, 0], [0, 1]]))
    assert [ex.frobenius_sq(M) for M in same_frob] == [2, 2]
    assert [ex.pair_interaction_sq(M, 1) for M in same_frob] == [1, 0]
    same_pair = (sp.Matrix([[1, 0], [1, 0]]), sp.Matrix([[2, 0], [sp.Rational(1, 2), 0]]))
    assert [ex.pair_interaction_sq(M, 1) for M in same_pair] == [1, 1]
    assert [ex.frobenius_sq(M) for M in same_pair] == [2, sp.Rational(17, 4)]


def test_balanced_factor_minimises_frobenius():
    rows = ex.gauge_rows(ts=np.logspace(-1, 1, 9))
    two_nuc = rows[0]["two_nuclear_norm"]
    assert all(r["frobenius_sq"] >= two_nuc * (1 - 1e-12) for r in rows)
    assert abs(rows[4]["frobenius_sq"] - two_nuc) <= 1e-12 * two_nuc  # t = 1
    assert max(r["frobenius_sq"] for r in rows) > 2 * two_nuc
    assert max(r["max_B_change"] for r in rows) <= 1e-12 * two_nuc


def test_double_centre_sympy_torch_and_gauge():
    B = torch.randn(3, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    Bs = sp.Matrix(B.tolist())
    assert torch.allclose(
        ex.double_centre(B), torch.tensor(np.array(ex.double_centre(Bs).tolist(), dtype=float)), atol=1e-13
    )
    a, b = torch.randn(3, 1, dtype=F64), torch.randn(1, 4, dtype=F64)
    assert torch.allclose(ex.double_centre(B + a + b + 2.0), ex.double_centre(B), atol=1e-13)
    assert not torch.allclose(ex.double_centre(B), B)


def test_translation_symmetry_needs_fixed_nnz():
    c = sp.Matrix([sp.symbols("c_1:4", real=True)])
    x_, w0, w, V = symbolic.fm_symbols(4, 3)

    def fm(x, w0_, w_, V_):
        x = sp.Matrix(x)
        return w0_ + (w_.T * x)[0] + symbolic.pairwise_double_sum(x, V_)

    d = 2
    Vc = V + sp.ones(4, 1) * c
    wc = sp.Matrix([w[a] - (d - 1) * (V[a, :] * c.T)[0] for a in range(4)])
    w0c = w0 - sp.binomial(d, 2) * (c * c.T)[0]
    pair = [1, 1, 0, 0]
    triple = [1, 1, 1, 0]
    assert sp.expand(fm(pair, w0c, wc, Vc) - fm(pair, w0, w, V)) == 0
    assert sp.expand(fm(triple, w0c, wc, Vc) - fm(triple, w0, w, V)) != 0


def test_diagonal_pinned():
    _, V0 = ex.planted_offdiag(7, 3, seed=1)
    assert ex.diagonal_pinned_exact(V0 * V0.T, 3)
    _, V1 = ex.planted_offdiag(5, 3, seed=1)  # n < 2k + 1: no disjoint k×k blocks avoid i
    assert not ex.diagonal_pinned_exact(V1 * V1.T, 3)


def test_planted_recovery_by_fitting():
    ui = ex.planted_recovery("user-item", 2)
    assert ui["predictions"] <= 1e-8 and ui["centred B"] <= 1e-6 and ui["balanced centred"] <= 1e-6
    assert ui["B"] >= 1e-2 and ui["V aligned"] >= 1e-2
    mixed = ex.planted_recovery("pairs+triples", 2)
    assert mixed["predictions"] <= 1e-8 and mixed["V aligned"] <= 1e-6 and mixed["w"] <= 1e-6
    assert mixed["V"] >= 1e-2
    pairs = ex.planted_recovery("pairs", 0)
    assert pairs["predictions"] <= 1e-8 and pairs["V aligned"] >= 1e-2
    with pytest.raises(FMInputError, match="unknown setting"):
        ex.recovery_samples("triples", 5)


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
