"""Gradients: closed form = sympy = autograd = central differences; losses; errata E1 and E6; errors."""

import pytest
import sympy as sp
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import fmedu
from fmedu import FMInputError, grad, symbolic, testing

F64 = torch.float64


def problem(n, k, batch, loss, seed, density=1.0, one_hot=False):
    return testing.random_problem(
        n, k, batch, loss, torch.Generator().manual_seed(seed), density=density, one_hot=one_hot
    )


# ----------------------------------------------------------------------------- three-way agreement


@given(
    n=st.integers(2, 16),
    k=st.integers(3, 6),
    batch=st.integers(1, 6),
    loss=st.sampled_from(["squared", "logistic", "hinge"]),
    layout=st.sampled_from(["dense", "sparse", "one-hot"]),
    density=st.floats(0.1, 1.0),
    seed=st.integers(0, 10_000),
)
def test_three_way_agreement(n, k, batch, loss, layout, density, seed):
    """Closed form = autograd = central differences, with k ≥ 3 and n ≠ k (erratum E6)."""
    assume(n != k)
    x, y, w0, w, V = problem(
        n, k, batch, loss, seed, density=1.0 if layout == "dense" else density, one_hot=layout == "one-hot"
    )
    kw = {"x": x} if layout == "dense" else dict(zip(("idx", "val"), fmedu.dense_to_sparse(x)))
    if loss == "hinge":
        assume(grad.kink_safe_step(y, w0, w, V, **kw))
    result = grad.three_way_check(y, w0, w, V, loss, **kw)
    assert result["loss_equal"]
    assert result["closed_vs_autograd_ok"], result
    assert result["closed_vs_fd_ok"], result
    assert result["autograd_vs_fd_ok"], result


@given(n=st.integers(2, 12), k=st.integers(3, 6), batch=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_predict_grad_matches_autograd_per_sample(n, k, batch, seed):
    assume(n != k)
    x, _, w0, w, V = problem(n, k, batch, "squared", seed)
    g_w0, g_w, g_V = fmedu.predict_grad(x, w0, w, V)
    assert g_w0.shape == (batch,) and g_w.shape == (batch, n) and g_V.shape == (batch, n, k)
    for b in range(batch):
        params = [p.clone().requires_grad_(True) for p in (w0, w, V)]
        auto = torch.autograd.grad(fmedu.predict(x[b], *params), params)
        bound = 64 * (n + k) * grad.EPS64 * (1 + x[b].abs().max() ** 2 * (V.abs().sum(0).max() + 1))
        assert float(auto[0]) == 1.0 == float(g_w0[b])
        assert torch.equal(auto[1], g_w[b])
        assert float((auto[2] - g_V[b]).abs().max()) <= float(bound)
    single = fmedu.predict_grad(x[0], w0, w, V)
    assert single[0].shape == () and single[1].shape == (n,) and single[2].shape == (n, k)
    assert torch.equal(single[2], g_V[0])


@given(n=st.integers(3, 30), k=st.integers(3, 6), batch=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_sparse_gradient_rows_align_with_idx(n, k, batch, seed):
    assume(n != k)
    x, _, w0, w, V = problem(n, k, batch, "squared", seed, density=0.3)
    idx, val = fmedu.dense_to_sparse(x)
    s_w0, s_w, s_V = fmedu.predict_grad_sparse(idx, w0, w, V, val)
    d_w0, d_w, d_V = fmedu.predict_grad(x, w0, w, V)
    m = idx.shape[1]
    assert s_w.shape == (batch, m) and s_V.shape == (batch, m, k)
    assert torch.equal(s_w0, d_w0)
    pad = idx < 0
    assert bool((s_w[pad] == 0).all()) and bool((s_V[pad] == 0).all())
    for b in range(batch):
        cols = idx[b][idx[b] >= 0]
        assert torch.equal(s_w[b][: cols.numel()], d_w[b, cols])
        assert torch.allclose(s_V[b][: cols.numel()], d_V[b, cols], rtol=0, atol=1e-12)
        untouched = torch.ones(n, dtype=torch.bool)
        untouched[cols] = False
        assert bool((d_V[b][untouched] == 0).all())  # rows outside idx have zero gradient


def test_one_hot_default_values():
    w0, w, V = torch.tensor(0.1, dtype=F64), torch.arange(6, dtype=F64), torch.arange(18, dtype=F64).reshape(6, 3)
    idx = torch.tensor([1, 4, -1])
    _, g_w, g_V = fmedu.predict_grad_sparse(idx, w0, w, V)
    assert g_w.tolist() == [1.0, 1.0, 0.0]
    # one-hot pair (1, 4): ∂ŷ/∂v_1f = v_4f and ∂ŷ/∂v_4f = v_1f
    assert torch.equal(g_V[0], V[4]) and torch.equal(g_V[1], V[1]) and bool((g_V[2] == 0).all())


# ----------------------------------------------------------------------------- sympy


@pytest.mark.parametrize("n,k", [(4, 3), (5, 3), (3, 4), (6, 5)])
def test_sympy_derivation_equals_closed_form(n, k):
    x, V, y_hat, derived, closed = symbolic.symbolic_gradient(n, k)
    assert (derived - closed).applyfunc(sp.expand) == sp.zeros(n, k)
    assert sp.diff(y_hat, sp.Symbol("w_0", real=True)) == 1
    assert [sp.diff(y_hat, sp.Symbol(f"w_{i + 1}", real=True)) for i in range(n)] == list(x)


def test_e1_note_formula_is_wrong_by_v_x_squared():
    x, V, _, derived, _ = symbolic.symbolic_gradient(5, 3)
    wrong = symbolic.note_gradient(x, V)
    diff = (wrong - derived).applyfunc(sp.expand)
    assert diff == sp.Matrix(5, 3, lambda i, f: -V[i, f] * x[i] ** 2)
    e = symbolic.e1_explanation(5, 3, 1, 2)
    assert e["rest"] == 0
    assert sp.expand(e["z_fixed"].subs(sp.Symbol("Z", real=True), e["Z"]) - wrong[1, 2]) == 0
    assert sp.expand(e["total"] - derived[1, 2]) == 0
    assert sp.expand(e["total"] - e["z_fixed"].subs(sp.Symbol("Z", real=True), e["Z"]) - e["chain_term"]) == 0


def test_e1_note_formula_fails_numeric_gradient_check():
    x, y, w0, w, V = problem(7, 3, 4, "logistic", 3)
    note_V = grad.note_batch_grad_V(x, y, w0, w, V, "logistic")
    auto = grad.autograd_batch_grad(y, w0, w, V, "logistic", x=x)[3]
    bound = grad.roundoff_bound(y, w0, w, V, "logistic", x=x)[2]
    assert not bool(((note_V - auto).abs() <= bound).all())
    assert bool(((grad.batch_loss_grad(x, y, w0, w, V, "logistic")[3] - auto).abs() <= bound).all())


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_e6_factor_index_slip(k):
    n = k + 3
    first_own = symbolic.slipped_symbolic_gradient(n, k, "first-own-rest-last") - symbolic.symbolic_gradient(n, k)[3]
    all_last = symbolic.slipped_symbolic_gradient(n, k, "all-last") - symbolic.symbolic_gradient(n, k)[3]
    assert (first_own.applyfunc(sp.expand) == sp.zeros(n, k)) == (k <= 2)
    assert (all_last.applyfunc(sp.expand) == sp.zeros(n, k)) == (k == 1)
    for seed in range(3):
        assert grad.e6_gradient_test(n, k, "first-own-rest-last", seed=seed) == (k <= 2)
        assert grad.e6_gradient_test(n, k, "all-last", loss="logistic", seed=seed) == (k == 1)
        assert grad.e6_gradient_test(n, k, list(range(k)), seed=seed)  # the correct column map


def test_slip_column_maps():
    assert symbolic.slipped_columns(4, "first-own-rest-last") == [0, 3, 3, 3]
    assert symbolic.slipped_columns(2, "first-own-rest-last") == [0, 1]  # the identity: invisible at k = 2
    assert symbolic.slipped_columns(3, [0, 0, 0]) == [0, 0, 0]
    with pytest.raises(FMInputError, match="column map"):
        symbolic.slipped_columns(3, [0, 3, 1])


# ----------------------------------------------------------------------------- losses


def test_logistic_stable_at_large_margins():
    y_hat = torch.tensor([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype=F64)
    y = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0], dtype=F64)
    value = fmedu.logistic_loss(y_hat, y)
    assert value.tolist() == [0.0, 1000.0, 1000.0, 0.0, float(torch.log(torch.tensor(2.0, dtype=F64)))]
    deriv = fmedu.logistic_loss_derivative(y_hat, y)
    assert deriv.tolist() == [0.0, -1.0, 1.0, 0.0, -0.5]
    t = y_hat.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(fmedu.logistic_loss(t, y).sum(), t)
    assert torch.equal(auto, deriv)


def test_hinge_subgradient_and_squared():
    y_hat = torch.tensor([2.0, 1.0, 0.5, -3.0], dtype=F64)
    y = torch.tensor([1.0, 1.0, 1.0, -1.0], dtype=F64)
    assert fmedu.hinge_loss(y_hat, y).tolist() == [0.0, 0.0, 0.5, 0.0]
    assert fmedu.hinge_loss_derivative(y_hat, y).tolist() == [0.0, -1.0, -1.0, 0.0]
    t = y_hat.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(fmedu.hinge_loss(t, y).sum(), t)
    assert torch.equal(auto, fmedu.hinge_loss_derivative(y_hat, y))  # same choice at the kink
    assert fmedu.squared_loss_derivative(y_hat, y).tolist() == [2.0, 0.0, -1.0, -4.0]


# ----------------------------------------------------------------------------- errors


def test_wrong_labels_are_rejected():
    x, y, w0, w, V = problem(5, 3, 4, "squared", 0)
    for loss in ("logistic", "hinge"):
        with pytest.raises(FMInputError, match=r"y must take values in .*y = 2 \* y - 1"):
            fmedu.batch_loss_grad(x, torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=F64), w0, w, V, loss)
        idx, val = fmedu.dense_to_sparse(x)
        with pytest.raises(FMInputError, match="y must take values"):
            fmedu.batch_loss_grad_sparse(idx, y, w0, w, V, loss, val)


def test_shape_mismatches_are_rejected():
    x, y, w0, w, V = problem(5, 3, 4, "squared", 0)
    with pytest.raises(FMInputError, match=r"y has shape \(3,\) but the batch has 4 samples"):
        fmedu.batch_loss_grad(x, y[:3], w0, w, V)
    with pytest.raises(FMInputError, match="x has 4 features"):
        fmedu.predict_grad(x[:, :4], w0, w, V)
    with pytest.raises(FMInputError, match="w has 5 entries but V has 4 rows"):
        fmedu.predict_grad(x, w0, w, V[:4])
    with pytest.raises(FMInputError, match="val has shape"):
        idx, val = fmedu.dense_to_sparse(x)
        fmedu.predict_grad_sparse(idx, w0, w, V, val[:, :1])
    with pytest.raises(FMInputError, match="unknown loss 'cubic'"):
        fmedu.batch_loss_grad(x, y, w0, w, V, "cubic")
    with pytest.raises(FMInputError, match="y has dtype torch.float32"):
        fmedu.batch_loss_grad(x, y.float(), w0, w, V)


def test_non_finite_inputs_are_rejected():
    x, y, w0, w, V = problem(5, 3, 4, "squared", 0)
    bad_x = x.clone()
    bad_x[1, 2] = float("nan")
    with pytest.raises(FMInputError, match=r"x contains non-finite values \(first at index \(1, 2\)"):
        fmedu.predict_grad(bad_x, w0, w, V)
    bad_y = y.clone()
    bad_y[3] = float("inf")
    with pytest.raises(FMInputError, match="y contains non-finite values"):
        fmedu.batch_loss_grad(x, bad_y, w0, w, V)
    bad_V = V.clone()
    bad_V[0, 0] = float("-inf")
    with pytest.raises(FMInputError, match="V contains non-finite values"):
        fmedu.predict_grad_sparse(torch.tensor([0, 1]), w0, w, bad_V)
    with pytest.raises(FMInputError, match="idx has index 7"):
        fmedu.predict_grad_sparse(torch.tensor([0, 7]), w0, w, V)


def test_single_sample_batch_loss():
    x, y, w0, w, V = problem(6, 3, 1, "logistic", 2)
    full = fmedu.batch_loss_grad(x, y, w0, w, V, "logistic")
    single = fmedu.batch_loss_grad(x[0], y[0], w0, w, V, "logistic")
    assert all(torch.equal(a, b) for a, b in zip(full, single))


@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge"])
def test_empty_batches_are_refused_not_nan(loss):
    """Defect 11: the mean loss of an empty batch was NaN, returned silently with zero gradients."""
    w0, w, V = torch.tensor(0.0, dtype=F64), torch.zeros(4, dtype=F64), torch.ones(4, 3, dtype=F64)
    y = torch.zeros(0, dtype=F64)
    empty = "the batch is empty: pass at least one sample"
    with pytest.raises(FMInputError, match=empty):
        grad.batch_loss_grad(torch.zeros(0, 4, dtype=F64), y, w0, w, V, loss)
    with pytest.raises(FMInputError, match=empty):
        grad.batch_loss_grad_sparse(torch.zeros(0, 2, dtype=torch.int64), y, w0, w, V, loss)
    with pytest.raises(FMInputError, match=empty):
        grad.autograd_batch_grad(y, w0, w, V, loss, x=torch.zeros(0, 4, dtype=F64))
    with pytest.raises(FMInputError, match=empty):
        grad.finite_difference_batch_grad(y, w0, w, V, loss, idx=torch.zeros(0, 2, dtype=torch.int64))


@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge"])
def test_overflow_in_loss_and_gradient_is_refused(loss):
    """Defect 11: finite inputs too large for float64 gave NaN losses and gradients silently."""
    w0, w, V = torch.tensor(0.0, dtype=F64), torch.ones(4, dtype=F64), torch.ones(4, 3, dtype=F64)
    y = torch.ones(1, dtype=F64)
    x = torch.full((1, 4), 1e160, dtype=F64)
    with pytest.raises(FMInputError, match="overflowed to .* although every input is finite"):
        grad.batch_loss_grad(x, y, w0, w, V, loss)
    with pytest.raises(FMInputError, match="overflowed"):
        grad.batch_loss_grad_sparse(torch.tensor([[0, 1]]), y, w0, w, V, loss, torch.full((1, 2), 1e160, dtype=F64))
    with pytest.raises(FMInputError, match="overflowed"):
        grad.predict_grad(x, w0, w, V)
    with pytest.raises(FMInputError, match="overflowed"):
        grad.autograd_batch_grad(y, w0, w, V, loss, x=x)


def test_reference_gradients_check_their_inputs():
    w0, w, V = torch.tensor(0.0, dtype=F64), torch.zeros(4, dtype=F64), torch.ones(4, 3, dtype=F64)
    y = torch.ones(1, dtype=F64)
    with pytest.raises(FMInputError, match="pass exactly one of x"):
        grad.autograd_batch_grad(y, w0, w, V)
    with pytest.raises(FMInputError, match="index -2"):
        grad.finite_difference_batch_grad(y, w0, w, V, idx=torch.tensor([[0, -2]]))
    with pytest.raises(FMInputError, match="must take values in"):
        grad.autograd_batch_grad(torch.zeros(1, dtype=F64), w0, w, V, "logistic", x=torch.ones(1, 4, dtype=F64))
