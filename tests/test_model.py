"""Model: naive, Rendle and sparse forms agree; the nn.Module; clear errors on bad input."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fmedu
from fmedu import FMInputError, testing

F64 = torch.float64


def params(n, k, seed):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn((), dtype=F64, generator=gen),
        torch.randn(n, dtype=F64, generator=gen),
        torch.randn(n, k, dtype=F64, generator=gen),
        gen,
    )


def brute_force(x, w0, w, V):
    """Python loops over pairs: the definition, independent of any tensor trick."""
    n = V.shape[0]
    total = float(w0) + sum(float(w[i] * x[i]) for i in range(n))
    for i in range(n):
        for j in range(i + 1, n):
            total += float(V[i] @ V[j]) * float(x[i]) * float(x[j])
    return total


@given(
    n=st.integers(1, 30),
    k=st.integers(1, 7),
    batch=st.integers(1, 6),
    kind=st.sampled_from(testing.RANDOM_X_KINDS),
    nnz=st.integers(1, 8),
    seed=st.integers(0, 10_000),
)
def test_forms_agree(n, k, batch, kind, nnz, seed):
    w0, w, V, gen = params(n, k, seed)
    x = testing.random_x(n, batch, kind, gen, nnz=nnz)
    naive = fmedu.predict_naive(x, w0, w, V)
    fast = fmedu.predict(x, w0, w, V)
    idx, val = fmedu.dense_to_sparse(x)
    sparse = fmedu.predict_sparse(idx, w0, w, V, val)
    tol = testing.prediction_roundoff_bound(x, w0, w, V)
    assert naive.shape == fast.shape == sparse.shape == (batch,)
    assert bool(((naive - fast).abs() <= tol).all())
    assert bool(((naive - sparse).abs() <= tol).all())
    assert abs(float(naive[0]) - brute_force(x[0], w0, w, V)) <= float(tol[0])


@given(n=st.integers(2, 20), k=st.integers(3, 6), seed=st.integers(0, 10_000))
def test_single_sample_matches_batch_row(n, k, seed):
    w0, w, V, gen = params(n, k, seed)
    x = torch.randn(3, n, dtype=F64, generator=gen)
    assert fmedu.predict(x[1], w0, w, V).shape == ()
    assert torch.equal(fmedu.predict(x[1], w0, w, V), fmedu.predict(x[1:2], w0, w, V)[0])
    idx, val = fmedu.dense_to_sparse(x[1])
    assert fmedu.predict_sparse(idx, w0, w, V, val).shape == ()


@given(n=st.integers(3, 40), k=st.integers(3, 6), seed=st.integers(0, 10_000))
def test_one_hot_default_values_and_padding(n, k, seed):
    """val=None means ones; -1 padding contributes nothing; sparse_to_dense inverts the layout."""
    w0, w, V, gen = params(n, k, seed)
    idx = torch.stack([torch.randperm(n, generator=gen)[:3] for _ in range(4)])
    idx[0, 2] = -1  # first sample has two non-zeros only
    x = fmedu.sparse_to_dense(idx, n)
    assert x.sum().item() == 11
    assert bool((fmedu.predict_sparse(idx, w0, w, V) - fmedu.predict(x, w0, w, V)).abs().max() < 1e-10)


def test_one_hot_pair_is_inner_product():
    """Two ones at i and j: ŷ = w0 + w_i + w_j + ⟨v_i, v_j⟩, exactly the definition."""
    w0, w, V, _ = params(6, 4, 0)
    y = fmedu.predict_sparse(torch.tensor([1, 4]), w0, w, V)
    assert torch.allclose(y, w0 + w[1] + w[4] + V[1] @ V[4], rtol=0, atol=1e-14)


def test_wrong_pair_term_is_caught():
    """The check is sensitive: dropping the ½ (summing ordered pairs) breaks agreement."""
    w0, w, V, gen = params(5, 3, 1)
    x = torch.randn(2, 5, dtype=F64, generator=gen)
    wrong = w0 + x @ w + 2 * fmedu.pairwise_rendle(x, V)
    assert not torch.allclose(wrong, fmedu.predict_naive(x, w0, w, V))


def test_module_uses_sparse_form_and_is_seeded():
    a = fmedu.FactorizationMachine(50, 4, generator=torch.Generator().manual_seed(3))
    b = fmedu.FactorizationMachine(50, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.V, b.V) and torch.equal(a.w, b.w) and a.w0.item() == 0.0
    idx = torch.tensor([[0, 7, 9], [3, 4, -1]])
    x = fmedu.sparse_to_dense(idx, 50)
    out = a(idx)
    assert torch.allclose(out, a.forward_dense(x), rtol=0, atol=1e-15)
    out.sum().backward()
    assert a.V.grad is not None and a.V.grad[[1, 2]].abs().sum() == 0  # untouched rows get no gradient
    assert "n=50, k=4" in repr(a)


@pytest.mark.parametrize("n, k", [(0, 3), (5, 0), (2.5, 3)])
def test_module_rejects_bad_sizes(n, k):
    with pytest.raises(ValueError, match="positive int"):
        fmedu.FactorizationMachine(n, k)


def good():
    w0, w, V, gen = params(4, 3, 0)
    return torch.randn(2, 4, dtype=F64, generator=gen), w0, w, V


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda x, w0, w, V: (x[:, :3], w0, w, V), "x has 3 features"),
        (lambda x, w0, w, V: (x.float(), w0, w, V), "dtype torch.float32"),
        (lambda x, w0, w, V: (x.long(), w0, w, V), "floating dtype"),
        (lambda x, w0, w, V: (x[None], w0, w, V), r"shape \(n,\) or \(batch, n\)"),
        (lambda x, w0, w, V: (x, w0, w[:3], V), "w has 3 entries but V has 4 rows"),
        (lambda x, w0, w, V: (x, w0.reshape(1), w, V), "w0 must be a scalar"),
        (lambda x, w0, w, V: (x, w0, w, V[:, 0]), r"V must have shape \(n, k\)"),
        (lambda x, w0, w, V: (x, w0, w, V.float()), "share one dtype"),
        (lambda x, w0, w, V: (x.numpy(), w0, w, V), "must be a torch.Tensor"),
        (lambda x, w0, w, V: (torch.where(x > 0, float("nan"), x), w0, w, V), "x contains non-finite"),
        (lambda x, w0, w, V: (x, w0, w, V.index_fill(0, torch.tensor([2]), float("inf"))), "V contains non-finite"),
    ],
)
def test_dense_errors(mutate, message):
    args = mutate(*good())
    for fn in (fmedu.predict, fmedu.predict_naive):
        with pytest.raises(FMInputError, match=message):
            fn(*args)


@pytest.mark.parametrize(
    "idx, val, message",
    [
        (torch.tensor([[0, 4]]), None, "index 4 at position"),
        (torch.tensor([[0, -2]]), None, "index -2"),
        (torch.tensor([[1, 1]]), None, "repeats feature index 1"),
        (torch.tensor([[0.0, 1.0]]), None, "integer tensor"),
        (torch.tensor([[0, 1]]), torch.ones(1, 3, dtype=F64), "val has shape"),
        (torch.tensor([[0, 1]]), torch.tensor([[1.0, float("nan")]], dtype=F64), "val contains non-finite"),
        (torch.tensor([[0, 1]]), torch.ones(1, 2, dtype=torch.float32), "val has dtype"),
        (torch.zeros(1, 1, 2, dtype=torch.int64), None, r"shape \(m,\) or \(batch, m\)"),
    ],
)
def test_sparse_errors(idx, val, message):
    _, w0, w, V = good()
    with pytest.raises(FMInputError, match=message):
        fmedu.predict_sparse(idx, w0, w, V, val)


def test_padding_may_repeat():
    _, w0, w, V = good()
    out = fmedu.predict_sparse(torch.tensor([[2, -1, -1]]), w0, w, V)
    assert torch.allclose(out, w0 + w[2], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_small_integer_index_dtypes_index_like_int64(dtype):
    """Defect 10: uint8 indices were all reported "outside [0, n)" (−1 wraps to 255 in uint8) and
    would have been a boolean mask to torch; int8 and int16 gave a raw IndexError."""
    _, w0, w, V = good()
    want = fmedu.predict_sparse(torch.tensor([[0, 2, 3]]), w0, w, V)
    assert torch.equal(fmedu.predict_sparse(torch.tensor([[0, 2, 3]], dtype=dtype), w0, w, V), want)
    grads = fmedu.predict_grad_sparse(torch.tensor([0, 2], dtype=dtype), w0, w, V)
    assert all(torch.equal(a, b) for a, b in zip(grads, fmedu.predict_grad_sparse(torch.tensor([0, 2]), w0, w, V)))
    with pytest.raises(FMInputError, match="index 4 at position"):
        fmedu.predict_sparse(torch.tensor([[0, 4]], dtype=dtype), w0, w, V)


def test_index_hints_name_a_dtype_that_is_accepted():
    """Defect 10: the hint for a list idx suggested torch.as_tensor(idx, dtype=torch.float64),
    which the next call rejected as not an integer tensor."""
    _, w0, w, V = good()
    with pytest.raises(FMInputError, match=r"convert it with torch.as_tensor\(idx, dtype=torch.int64\)") as info:
        fmedu.predict_sparse([0, 2], w0, w, V)
    assert "float64" not in str(info.value)
    # following the hint works
    fmedu.predict_sparse(torch.as_tensor([0, 2], dtype=torch.int64), w0, w, V)
    with pytest.raises(FMInputError, match=r"idx is a boolean mask; pass the integer indices instead"):
        fmedu.predict_sparse(torch.tensor([True, False, True, False]), w0, w, V)
    with pytest.raises(FMInputError, match=r"integer tensor, got dtype torch.float64; use idx.long\(\)"):
        fmedu.predict_sparse(torch.tensor([0.0, 2.0], dtype=F64), w0, w, V)


def test_sparse_to_dense_checks_its_indices():
    with pytest.raises(FMInputError, match="index 5 at position"):
        fmedu.sparse_to_dense(torch.tensor([[0, 5]]), 4)
    with pytest.raises(FMInputError, match="repeats feature index 1"):
        fmedu.sparse_to_dense(torch.tensor([[1, 1]]), 4)
    x = fmedu.sparse_to_dense(torch.tensor([[1, -1]], dtype=torch.int16), 4)
    assert x.tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_overflowing_inputs_are_refused_not_nan():
    """Defect 11: finite inputs whose prediction overflows returned NaN or inf silently."""
    _, w0, w, V = good()
    x = torch.full((2, 4), 1e200, dtype=F64)
    for f in (fmedu.predict, fmedu.predict_naive):
        with pytest.raises(FMInputError, match="the prediction y_hat overflowed to .* although every input is finite"):
            f(x, w0, w, V)
    with pytest.raises(FMInputError, match="the prediction y_hat overflowed"):
        fmedu.predict_sparse(torch.tensor([[0, 1]]), w0, w, V, torch.full((1, 2), 1e200, dtype=F64))
    assert torch.isfinite(fmedu.predict(torch.full((2, 4), 1e100, dtype=F64), w0, w, V)).all()


def test_toy_example_is_exact():
    """Chapter 01's worked example: one-hot pairs, every prediction exact in float64."""
    toy = testing.toy_ratings_fm()
    assert len(toy.features) == 7 and toy.V.shape == (7, 2)
    x = toy.x("Ann", "Alien")
    assert x.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert float(fmedu.predict_naive(x, toy.w0, toy.w, toy.V)) == 4.75 == float(fmedu.predict(x, toy.w0, toy.w, toy.V))
    with pytest.raises(ValueError):
        toy.x("Ann", "Zardoz")
