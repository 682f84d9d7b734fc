"""The published trainer: its latent-vector write is lost (erratum E3); the corrected write
reproduces the exact prox step; both agree with fmedu.prox's semantics."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fmedu import prox, testing
from fmedu.errors import FMInputError
from fmedu.prox.published import PublishedProxTrainer

F64 = torch.float64


def setup_model(n, k, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.zeros((), dtype=F64)
    w = scale * torch.randn(n, dtype=F64, generator=gen)
    V = scale * torch.randn(n, k, dtype=F64, generator=gen)
    return w0, w, V, gen


def samples(n, count, max_nnz, gen):
    out = []
    for s in range(count):
        nnz = int(torch.randint(1, max_nnz + 1, (), generator=gen))
        out.append((torch.randperm(n, generator=gen)[:nnz], 1 if s % 3 == 0 else -1))
    return out


def test_advanced_indexing_returns_a_copy():
    """The mechanism of E3: V[idx, :] is a new tensor, so an in-place op on it is lost."""
    V = torch.arange(12, dtype=F64).reshape(4, 3)
    before = V.clone()
    idx = torch.tensor([0, 2])
    V[idx, :].sub_(100.0)
    assert torch.equal(V, before)
    V[idx, :] = V[idx, :] - 100.0  # indexed assignment: writes through
    assert torch.equal(V[idx], before[idx] - 100.0)
    V[1:3, :].sub_(1.0)  # a slice is a view: in-place works there
    assert torch.equal(V[1], before[1] - 1.0)


@given(seed=st.integers(0, 10_000), scale=st.sampled_from([0.01, 0.5]), k=st.integers(3, 8))
def test_published_write_is_lost(seed, scale, k):
    n = 30
    w0, w, V, gen = setup_model(n, k, scale, seed)
    eta = prox.step_size_bound(11, "published")
    trainer = PublishedProxTrainer(w0, w, V, eta, fix_write=False)
    ref = (w0, w, V)
    for idx, y in samples(n, 15, 11, gen):
        trainer.step(idx, y)
        ref = prox.prox_step(idx, y, *ref, eta, freeze_V=True, solver="golden")[:3]
    w0_t, w_t, V_t = trainer.params()
    assert torch.equal(V_t, V)  # not one bit of V moved
    assert not torch.equal(w_t, w) and float(w0_t) != 0.0  # the biases did train
    atol = testing.GOLDEN_PARAM_ATOL
    assert torch.allclose(w_t, ref[1], atol=atol) and torch.allclose(w0_t, ref[0], atol=atol)


@given(seed=st.integers(0, 10_000), scale=st.sampled_from([0.01, 0.5]), k=st.integers(3, 8))
def test_corrected_write_is_the_exact_step(seed, scale, k):
    n = 30
    w0, w, V, gen = setup_model(n, k, scale, seed)
    eta = prox.step_size_bound(11, "published")
    trainer = PublishedProxTrainer(w0, w, V, eta, fix_write=True)
    exact = prox.ProxTrainer(w0, w, V, eta)
    for idx, y in samples(n, 15, 11, gen):
        z_pub = trainer.step(idx, y)
        z_exact = exact.step(idx, y)
        assert abs(z_pub - z_exact) <= testing.GOLDEN_PARAM_ATOL
    for a, b in zip(trainer.params(), exact.params()):
        assert torch.allclose(a, b, atol=testing.GOLDEN_PARAM_ATOL)
    assert not torch.equal(trainer.V, V)


def test_published_q_equals_readable_q():
    w0, w, V, gen = setup_model(20, 5, 0.7, 1)
    idx = torch.tensor([3, 7, 11, 2])
    trainer = PublishedProxTrainer(w0, w, V, 0.1)
    trainer._cache(idx)
    s = prox.sample_scalars(idx, w0, w, V)
    for z in (0.0, 0.1, 0.5, 0.93, 1.0):
        for y in (-1.0, 1.0):
            assert abs(trainer.q(y, z) - prox.q(z, float(w0 + w[idx].sum()), V[idx], y, 0.1)) <= 1e-12
            assert abs(trainer.q(y, z) - prox.q_reduced(z, s, y, 0.1)) <= 1e-12


def test_prox_trainers_refuse_index_minus_one():
    """Defect 12: ProxTrainer.step updated V's last row for index -1 (negative indices wrap in
    torch); both trainers now check the sample like prox_step and change nothing."""
    w0, w, V, _ = setup_model(6, 3, 0.5, 0)
    for trainer in (prox.ProxTrainer(w0, w, V, 0.1), PublishedProxTrainer(w0, w, V, 0.1, fix_write=True)):
        before = [t.clone() for t in trainer.params()]
        for idx, message in (
            (torch.tensor([0, -1]), r"idx has index -1 at position \(1,\), outside \[0, n\) with n = 6"),
            (torch.tensor([2, 6]), "index 6"),
            (torch.tensor([2, 2]), "repeats feature index 2"),
            (torch.tensor([[0, 1]]), "idx must be 1-D"),
            ([0, 1], r"torch.as_tensor\(idx, dtype=torch.int64\)"),
        ):
            with pytest.raises(FMInputError, match=message):
                trainer.step(idx, 1)
        assert all(torch.equal(a, b) for a, b in zip(trainer.params(), before))


def test_published_trainer_refuses_steps_beyond_the_bound():
    """Defect 12: PublishedProxTrainer took eta = 5 at d = 3; it now refuses it as prox_step and
    the engine's prox-published do (fmedu.prox.check_step_size), unless allowed explicitly."""
    w0, w, V, _ = setup_model(6, 3, 0.5, 0)
    idx = torch.tensor([0, 1, 2])
    trainer = PublishedProxTrainer(w0, w, V, 5.0)
    with pytest.raises(FMInputError, match=r"eta = 5 is at or beyond the exact convexity bound 0.5 .*nnz = 3"):
        trainer.step(idx, 1)
    with pytest.raises(FMInputError, match=r"eta = 5 is at or beyond the exact convexity bound 0.5"):
        prox.prox_step(idx, 1, w0, w, V, 5.0, freeze_V=True)
    with pytest.raises(FMInputError, match=r"exact convexity bound 1 "):
        trainer.step(idx, -1)  # y = -1: the bound is 1
    assert 0 < PublishedProxTrainer(w0, w, V, 5.0, allow_beyond_bound=True).step(idx, 1) < 1
    with pytest.raises(FMInputError, match="tol"):
        PublishedProxTrainer(w0, w, V, 0.1, tol=0)


def test_sample_scalars_and_references_check_the_sample():
    """Siblings: the scalars and the reference objective took index -1 (wrapping) as well."""
    from fmedu.prox.reference import kkt_residual, prox_objective

    w0, w, V, _ = setup_model(6, 3, 0.5, 0)
    bad = torch.tensor([0, -1])
    with pytest.raises(FMInputError, match="index -1"):
        prox.sample_scalars(bad, w0, w, V)
    with pytest.raises(FMInputError, match="index -1"):
        prox_objective(bad, 1, w0, w, V, 0.1, w0, w, V)
    result = prox.prox_step(torch.tensor([0, 5]), 1, w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="index -1"):
        kkt_residual(result, bad, 1, w0, w, V, 0.1)
    assert kkt_residual(result, torch.tensor([0, 5], dtype=torch.int8), 1, w0, w, V, 0.1) < 1e-12
