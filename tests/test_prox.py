"""Prox step: the bound, S(z)⁻¹, q and its pieces, the maximisers, the step against a generic
optimiser and the KKT conditions, the in-place trainer, and every error path."""

import math

import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

import fmedu
from fmedu import FMInputError, prox, testing
from fmedu.prox import symbolic as prox_symbolic
from fmedu.testing import EPS64 as EPS
from fmedu.testing import eta_below, random_prox_case

F64 = torch.float64

cases = st.fixed_dictionaries(
    {
        "n": st.integers(12, 20),
        "k": st.integers(3, 9),
        "nnz": st.integers(1, 11),
        "scale": st.sampled_from([0.01, 0.3, 1.0, 2.5]),
        "seed": st.integers(0, 100_000),
        "y": st.sampled_from([-1, 1]),
        "fraction": st.floats(0.01, 0.99),
    }
)


# ------------------------------------------------------------------------- the bound


@given(nnz=st.integers(0, 40), y=st.sampled_from([-1, 1, None]))
def test_bound_values(nnz, y):
    exact = prox.step_size_bound(nnz, "exact", y)
    if nnz <= 1:
        assert exact == math.inf
    elif y == -1:
        assert exact == 1.0
    else:
        assert exact == 1.0 / (nnz - 1)
    published = prox.step_size_bound(nnz, "published")
    assert published == 1.0 / (2 * nnz + 1)
    assert published < exact  # the published bound is safe, only too small


@given(nnz=st.integers(2, 30), y=st.sampled_from([-1, 1]), fraction=st.floats(0.0, 0.999), z=st.floats(0.0, 1.0))
def test_s_positive_definite_below_bound(nnz, y, fraction, z):
    eta = fraction * prox.step_size_bound(nnz, "exact", y)
    lam = torch.linalg.eigvalsh(prox.s_matrix(nnz, eta, y, z))
    assert float(lam.min()) > 0
    lam_mean, lam_perp = prox.s_eigenvalues(nnz, eta, y, z)
    expected = sorted([lam_mean] + [lam_perp] * (nnz - 1))
    assert torch.allclose(lam, torch.tensor(expected, dtype=F64), atol=1e-12)


@given(nnz=st.integers(2, 30), y=st.sampled_from([-1, 1]), over=st.floats(1.001, 3.0))
def test_s_indefinite_beyond_bound(nnz, y, over):
    eta = over * prox.step_size_bound(nnz, "exact", y)
    lam = torch.linalg.eigvalsh(prox.s_matrix(nnz, eta, y, 1.0))
    assert float(lam.min()) < 0
    # and singular exactly at z = 1/(eta (d-1)) for y = +1, z = 1/eta for y = -1
    z_pole = 1.0 / (eta * (nnz - 1)) if y > 0 else 1.0 / eta
    lam_pole = torch.linalg.eigvalsh(prox.s_matrix(nnz, eta, y, z_pole))
    assert float(lam_pole.abs().min()) <= 1e-12


def test_bound_symbolic_eigenvalues():
    """charpoly of S for concrete d: (λ − (1+β))^(d−1) (λ − (1 − β(d−1))), exactly."""
    beta, lam = sp.symbols("beta lambda")
    for d in range(1, 7):
        S = (1 + beta) * sp.eye(d) - beta * sp.ones(d, d)
        expected = (lam - (1 + beta)) ** (d - 1) * (lam - (1 - beta * (d - 1)))
        assert sp.expand(S.charpoly(lam).as_expr() - expected) == 0


# ------------------------------------------------------------------------- S(z)⁻¹


@given(
    nnz=st.integers(1, 12),
    k=st.integers(3, 6),
    y=st.sampled_from([-1, 1]),
    fraction=st.floats(0.0, 0.99),
    z=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_sherman_morrison_matches_dense(nnz, k, y, fraction, z, seed):
    eta = eta_below(nnz, y, fraction)
    S = prox.s_matrix(nnz, eta, y, z)
    assert torch.allclose(prox.s_inverse(nnz, eta, y, z), torch.linalg.inv(S), rtol=1e-10, atol=1e-10)
    V_idx = torch.randn(nnz, k, dtype=F64, generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(prox.solve_vectors(V_idx, eta, y, z), torch.linalg.solve(S, V_idx), rtol=1e-10, atol=1e-10)


def test_sherman_morrison_sympy():
    beta = sp.Symbol("beta")
    for d in range(1, 7):
        S = (1 + beta) * sp.eye(d) - beta * sp.ones(d, d)
        S_inv = (sp.eye(d) + beta / (1 - beta * (d - 1)) * sp.ones(d, d)) / (1 + beta)
        assert sp.simplify(S * S_inv - sp.eye(d)) == sp.zeros(d, d)
        assert sp.simplify(S.inv() - S_inv) == sp.zeros(d, d)


# ------------------------------------------------------------------------- q and its pieces


@given(case=cases, z=st.floats(0.0, 1.0))
def test_q_pieces_agree(case, z):
    idx, w0, w, V = random_prox_case(case["n"], case["k"], case["nnz"], case["scale"], case["seed"])
    y, eta = case["y"], eta_below(case["nnz"], case["y"], case["fraction"])
    s = prox.sample_scalars(idx, w0, w, V)
    tol = testing.dual_tolerance(s, eta, y, z)
    assert abs(prox.q2(z, V[idx], y, eta) - prox.q2_reduced(z, s, y, eta)) <= tol
    # q2 is the minimum of the quadratic: compare with a dense solve
    S = prox.s_matrix(case["nnz"], eta, y, z)
    V_star = torch.linalg.solve(S, V[idx])
    pairs = 0.5 * (V_star.sum(0).square().sum() - V_star.square().sum())
    value = float(-z * y * pairs + (V_star - V[idx]).square().sum() / (2 * eta))
    assert abs(value - prox.q2_reduced(z, s, y, eta)) <= tol
    # ŷ at θ(z) from the scalars equals ŷ of the updated parameters
    after = prox.update_from_z(idx, y, w0, w, V, eta, z)
    y_hat = float(fmedu.predict_sparse(idx, after.w0, after.w, after.V))
    assert abs(y_hat - prox.prediction_after(z, s, y, eta)) <= tol
    assert abs(s.y_hat - float(fmedu.predict_sparse(idx, w0, w, V))) <= tol


def test_solve_and_inverse_tolerances_hold_on_random_cases():
    for c in testing.random_prox_cases(60, seed=11):
        d = c.idx.numel()
        S = prox.s_matrix(d, c.eta, c.y, c.z)
        dense = torch.linalg.solve(S, c.V[c.idx])
        closed = prox.solve_vectors(c.V[c.idx], c.eta, c.y, c.z)
        size = float(dense.abs().max())
        assert float((dense - closed).abs().max()) <= testing.solve_tolerance(d, c.eta, c.y, c.z, size)
        inverse_gap = float((torch.linalg.inv(S) - prox.s_inverse(d, c.eta, c.y, c.z)).abs().max())
        assert inverse_gap <= testing.inverse_tolerance(d, c.eta, c.y, c.z)


def test_random_prox_cases_cover_the_settings():
    cases = testing.random_prox_cases(44, seed=3)
    assert {c.idx.numel() for c in cases} == set(range(1, 12)) and {c.y for c in cases} == {1, -1}
    assert all(0 < c.eta < prox.step_size_bound(c.idx.numel(), "exact", c.y) and 0 <= c.z <= 1 for c in cases)
    assert [c.eta for c in cases] == [c.eta for c in testing.random_prox_cases(44, seed=3)]  # seeded


@given(case=cases, z=st.floats(0.02, 0.98))
def test_q_derivatives_and_concavity(case, z):
    idx, w0, w, V = random_prox_case(case["n"], case["k"], case["nnz"], case["scale"], case["seed"])
    y, eta = case["y"], eta_below(case["nnz"], case["y"], case["fraction"])
    s = prox.sample_scalars(idx, w0, w, V)
    h = 1e-6
    fd1 = (prox.q_reduced(z + h, s, y, eta) - prox.q_reduced(z - h, s, y, eta)) / (2 * h)
    fd2 = (prox.q_prime(z + h, s, y, eta) - prox.q_prime(z - h, s, y, eta)) / (2 * h)
    d1, d2 = prox.q_prime(z, s, y, eta), prox.q_second(z, s, y, eta)
    assert abs(fd1 - d1) <= 1e-5 * (1 + abs(d1) + abs(d2))
    assert abs(fd2 - d2) <= 1e-4 * (1 + abs(d2))
    assert d2 < 0


def test_conjugate_is_the_conjugate_of_softplus():
    # h*(z) = sup_u u z − log(1 + e^u), attained at u = logit(z)
    for z in (0.1, 0.3, 0.5, 0.9):
        u = math.log(z / (1 - z))
        assert abs(prox.conjugate(z) - (u * z - math.log1p(math.exp(u)))) <= 1e-14
    assert prox.conjugate(0.0) == 0.0 == prox.conjugate(1.0)
    # outside [0, 1] the supremum is +∞ (erratum E9), not 0
    assert prox.conjugate(2.0) == math.inf == prox.conjugate(-1.0) == prox.conjugate(1.0 + 1e-12)
    t = sp.Symbol("t", real=True)
    assert sp.limit(2 * t - sp.log(1 + sp.exp(t)), t, sp.oo) == sp.oo
    assert sp.limit(-t - sp.log(1 + sp.exp(t)), t, -sp.oo) == sp.oo
    with pytest.raises(FMInputError, match="must be a real number"):
        prox.conjugate(float("nan"))


def test_golden_section_on_a_parabola():
    lo, hi, evaluations = prox.golden_section_max(lambda z: -((z - 0.3) ** 2), 0.0, 1.0, 1e-8)
    assert hi - lo <= 1e-8 and lo <= 0.3 <= hi
    assert evaluations == 40  # ceil(log(1e-8)/log(0.618...)) = 39 shrinkings, 2 + 38 evaluations


@given(case=cases)
def test_maximisers_agree(case):
    idx, w0, w, V = random_prox_case(case["n"], case["k"], case["nnz"], case["scale"], case["seed"])
    y, eta = case["y"], eta_below(case["nnz"], case["y"], case["fraction"])
    s = prox.sample_scalars(idx, w0, w, V)
    z_newton = prox.maximise_q_newton(s, y, eta)
    z_golden = prox.maximise_q_golden(s, y, eta)
    assert 0 <= z_newton <= 1  # σ(t*) rounds to 1.0 once t* > 37
    assert abs(z_newton - z_golden) <= testing.golden_tolerance(s, y, eta, z_golden)
    # optimality in t = logit(z): g'(t) ≤ −1, so |t − t*| ≤ |g(t)| and |z − z*| ≲ z(1−z)|g(t)|
    if 0 < z_newton < 1:
        g = -y * prox.prediction_after(z_newton, s, y, eta) - math.log(z_newton / (1 - z_newton))
        lam_mean, lam_perp = prox.s_eigenvalues(s.d, eta, y, z_newton)
        terms = 1 + abs(s.B) + eta * (s.d + 1) + s.d * s.mean_energy / lam_mean**2 + s.perp_energy / lam_perp**2
        logit_rounding = 4 * EPS / (z_newton * (1 - z_newton))  # log(z/(1−z)) recomputed from a rounded z
        assert abs(g) <= 64 * EPS * (terms + abs(math.log(z_newton / (1 - z_newton)))) + logit_rounding


# ------------------------------------------------------------------------- the step


@given(case=cases)
def test_step_is_the_prox_minimiser(case):
    idx, w0, w, V = random_prox_case(case["n"], case["k"], case["nnz"], case["scale"], case["seed"])
    y, eta = case["y"], eta_below(case["nnz"], case["y"], case["fraction"])
    copies = (w0.clone(), w.clone(), V.clone())
    r = prox.prox_step(idx, y, w0, w, V, eta)
    # inputs untouched; coordinates outside the sample unchanged
    assert all(torch.equal(a, b) for a, b in zip((w0, w, V), copies))
    others = torch.ones(w.shape[0], dtype=torch.bool)
    others[idx] = False
    assert torch.equal(r.w[others], w[others]) and torch.equal(r.V[others], V[others])
    # KKT: ∇F = 0 at the returned point (autograd)
    assert prox.kkt_residual(r, idx, y, w0, w, V, eta) <= testing.kkt_tolerance(V[idx], eta)
    # primal-dual link: z* = σ(−y ŷ(θ_{t+1}))
    y_hat_new = float(fmedu.predict_sparse(idx, r.w0, r.w, r.V))
    assert abs(r.z - 1 / (1 + math.exp(y * y_hat_new))) <= testing.Z_LINK_ATOL


@given(case=cases)
def test_step_matches_generic_optimiser(case):
    case["nnz"] = min(case["nnz"], 8)
    case["k"] = min(case["k"], 5)
    idx, w0, w, V = random_prox_case(case["n"], case["k"], case["nnz"], case["scale"], case["seed"])
    y, eta = case["y"], eta_below(case["nnz"], case["y"], case["fraction"])
    r = prox.prox_step(idx, y, w0, w, V, eta)
    theirs = prox.minimise_numerically(idx, y, w0, w, V, eta)
    gap = max(float((a - b).abs().max()) for a, b in zip(r[:3], theirs[:3]))
    size = max(float(t.abs().max()) for t in r[:3])
    assert gap <= testing.OPTIMISER_RTOL * (1 + size)


@given(case=cases)
def test_freeze_V_is_the_published_semantics(case):
    idx, w0, w, V = random_prox_case(case["n"], case["k"], case["nnz"], case["scale"], case["seed"])
    y, eta = case["y"], eta_below(case["nnz"], case["y"], case["fraction"])
    full = prox.prox_step(idx, y, w0, w, V, eta)
    frozen = prox.prox_step(idx, y, w0, w, V, eta, freeze_V=True)
    assert frozen.z == full.z  # z* from the full q
    assert torch.equal(frozen.V, V) and torch.equal(frozen.w, full.w) and torch.equal(frozen.w0, full.w0)
    assert frozen.V is not V


@given(case=cases)
def test_trainer_matches_prox_step(case):
    idx, w0, w, V = random_prox_case(case["n"], case["k"], case["nnz"], case["scale"], case["seed"])
    y, eta = case["y"], eta_below(case["nnz"], case["y"], case["fraction"])
    for freeze in (False, True):
        trainer = prox.ProxTrainer(w0, w, V, eta, freeze_V=freeze)
        z = trainer.step(idx, y)
        r = prox.prox_step(idx, y, w0, w, V, eta, freeze_V=freeze)
        assert z == r.z
        for a, b in zip(trainer.params(), r[:3]):
            assert torch.allclose(a, b, rtol=1e-13, atol=1e-13)


def test_empty_and_single_index_samples():
    _, w0, w, V = random_prox_case(6, 3, 1, 1.0, 0)
    r0 = prox.prox_step(torch.tensor([], dtype=torch.int64), 1, w0, w, V, 5.0)
    assert torch.equal(r0.V, V) and torch.equal(r0.w, w) and float(r0.w0) > float(w0)
    r1 = prox.prox_step(torch.tensor([2]), -1, w0, w, V, 5.0)  # nnz = 1: any eta is fine
    assert torch.equal(r1.V, V)  # no pairs: the latent vector has nothing to interact with
    assert prox.kkt_residual(r1, torch.tensor([2]), -1, w0, w, V, 5.0) <= 1e-13


def test_no_feature_sample_is_the_one_dimensional_prox_step():
    """d = 0: only w0 moves, w0' = w0 + ηyσ(−yw0'); η ≥ 2 with y = −1 once divided by zero."""
    _, w0, w, V = random_prox_case(6, 3, 1, 1.0, 0)
    empty = torch.tensor([], dtype=torch.int64)
    for y, eta in ((-1, 2.0), (1, 50.0), (-1, 500.0)):
        r = prox.prox_step(empty, y, w0, w, V, eta)
        assert abs(float(r.w0 - w0) - eta * y * r.z) <= 1e-12 * (1 + eta)
        assert abs(r.z - 1 / (1 + math.exp(y * float(r.w0)))) <= testing.Z_LINK_ATOL


def test_beyond_bound_dual_below_pole_is_stationary_and_golden_chases_pole():
    idx, w0, w, V = random_prox_case(15, 4, 11, 0.5, 3)
    eta = 0.3  # three times the exact bound 1/10 for y = +1
    exact = prox.prox_step(idx, 1, w0, w, V, eta, allow_beyond_bound=True)
    assert 0 < exact.z < 1 / (eta * 10)
    assert prox.kkt_residual(exact, idx, 1, w0, w, V, eta) <= testing.kkt_tolerance(V[idx], eta)
    golden = prox.prox_step(idx, 1, w0, w, V, eta, solver="golden", allow_beyond_bound=True)
    assert abs(golden.z - 1 / (eta * 10)) <= 1e-7  # the pole of S(z)⁻¹
    F = lambda r: float(prox.prox_objective(idx, 1, r.w0, r.w, r.V, eta, w0, w, V))
    assert F(golden) > 1e6 * F(exact)


# ------------------------------------------------------------------------- errors


def test_errors():
    idx, w0, w, V = random_prox_case(10, 3, 4, 1.0, 0)
    with pytest.raises(FMInputError, match="repeats feature index 7"):
        prox.prox_step(torch.tensor([7, 1, 7]), 1, w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="map \\{0, 1\\} labels"):
        prox.prox_step(idx, 0, w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="y must be \\+1 or -1"):
        prox.prox_step(idx, 2.0, w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="y must be one label"):
        prox.prox_step(idx, torch.tensor([1.0, -1.0]), w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="exact convexity bound 0.333333 .*nnz = 4 and y = \\+1"):
        prox.prox_step(idx, 1, w0, w, V, 1 / 3)
    with pytest.raises(FMInputError, match="exact convexity bound 1 "):
        prox.prox_step(idx, -1, w0, w, V, 1.5)
    with pytest.raises(FMInputError, match="positive finite"):
        prox.prox_step(idx, 1, w0, w, V, -0.1)
    with pytest.raises(FMInputError, match="positive finite"):
        prox.prox_step(idx, 1, w0, w, V, float("nan"))
    bad_V = V.clone()
    bad_V[2, 1] = float("inf")
    with pytest.raises(FMInputError, match="V contains non-finite"):
        prox.prox_step(idx, 1, w0, w, bad_V, 0.1)
    with pytest.raises(FMInputError, match="w0 contains non-finite"):
        prox.prox_step(idx, 1, torch.tensor(float("nan"), dtype=F64), w, V, 0.1)
    with pytest.raises(FMInputError, match="idx must be 1-D"):
        prox.prox_step(idx.reshape(2, 2), 1, w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="outside \\[0, n\\)"):
        prox.prox_step(torch.tensor([0, 10]), 1, w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="integer tensor"):
        prox.prox_step(idx.double(), 1, w0, w, V, 0.1)
    with pytest.raises(FMInputError, match="solver must be"):
        prox.prox_step(idx, 1, w0, w, V, 0.1, solver="brent")
    with pytest.raises(FMInputError, match="kind must be"):
        prox.step_size_bound(3, "loose")
    with pytest.raises(FMInputError, match="nnz must be"):
        prox.step_size_bound(-1)
    trainer = prox.ProxTrainer(w0, w, V, 0.5)
    with pytest.raises(FMInputError, match="exact convexity bound 0.333333"):
        trainer.step(idx, 1)


# ------------------------------------------------------------------------- sympy builders and helpers


def test_symbolic_d_eigenpairs_and_inverse():
    G = prox_symbolic.sym_s_symbolic_d()
    (mean,) = prox_symbolic.split_terms(G.S * G.ones, [G.ones])
    assert sp.simplify(mean - (1 - G.beta * (G.d - 1))) == 0
    u = sp.MatrixSymbol("u", G.d, 1)
    assert prox_symbolic.split_terms(G.S * u, [u, G.J * u]) == (1 + G.beta, -G.beta)
    S_inv = (G.I + G.beta / (1 - G.beta * (G.d - 1)) * G.J) / (1 + G.beta)
    assert prox_symbolic.split_terms(G.S * S_inv, [G.I, G.J]) == (1, 0)
    assert prox_symbolic.split_terms(S_inv * G.S, [G.I, G.J]) == (1, 0)
    # a wrong inverse is caught, and a term outside the basis raises
    wrong = (G.I + G.beta / (1 - G.beta * G.d) * G.J) / (1 + G.beta)
    assert prox_symbolic.split_terms(G.S * wrong, [G.I, G.J]) != (1, 0)
    with pytest.raises(FMInputError, match="not a multiple of"):
        prox_symbolic.split_terms(G.S * G.ones, [G.I])


def test_blog_decomposition_slip():
    for d in (2, 3, 4):
        for y in (1, -1):
            assert prox_symbolic.sym_blog_decomposition(d, 3, y, "corrected") == 0
            _, V, _, z, _ = prox_symbolic.sym_latent_part(d, 3, y)
            offset = sp.Rational(1, 2) * z * (d - 1) * sum(e**2 for e in V)
            assert sp.expand(prox_symbolic.sym_blog_decomposition(d, 3, y, "published") - offset) == 0
    with pytest.raises(FMInputError, match="coefficient must be"):
        prox_symbolic.sym_blog_decomposition(2, 3, 1, "half")


def test_latent_hessian_is_kron_s():
    assert prox_symbolic.hessian_is_kron_s(3, 4, -1) and prox_symbolic.hessian_is_kron_s(2, 3, 1)
    part, V, _, z, eta = prox_symbolic.sym_latent_part(3, 2, 1)
    H = sp.hessian(part, list(V))
    wrong = sp.kronecker_product(prox_symbolic.sym_s_matrix(3, -eta * z) / eta, sp.eye(2))  # wrong label
    assert not sp.simplify(H - wrong).is_zero_matrix


@pytest.mark.parametrize("y", [1, -1])
def test_closed_forms_equal_the_symbolic_minimiser(y):
    """q1, q2, ŷ(θ(z)) and q'' of the library, evaluated on sympy symbols, against sympy's minimiser."""
    m = prox_symbolic.sym_minimiser(2, 2, y)
    s = prox.SampleScalars(m.B, m.A, m.C, 2)
    assert sp.cancel(m.q2 - prox.q2_reduced(m.z, s, y, m.eta)) == 0
    assert sp.cancel(m.y_hat_after - prox.prediction_after(m.z, s, y, m.eta)) == 0
    q1 = prox.q1(m.z, m.B, 2, y, m.eta)
    assert sp.cancel(sp.diff(q1 + m.q2, m.z) + y * m.y_hat_after) == 0  # envelope theorem
    A, C = sp.symbols("A C", nonnegative=True)
    s_sym = prox.SampleScalars(m.B, A, C, 2)
    h_star = m.z * sp.log(m.z) + (1 - m.z) * sp.log(1 - m.z)
    q = prox.q1(m.z, m.B, 2, y, m.eta) + prox.q2_reduced(m.z, s_sym, y, m.eta) - h_star
    assert sp.simplify(sp.diff(q, m.z, 2) - prox.q_second(m.z, s_sym, y, m.eta)) == 0


def test_library_optimiser_and_kkt_helpers():
    idx, w0, w, V = random_prox_case(14, 4, 6, 1.0, 5)
    eta = 0.15
    r = prox.prox_step(idx, 1, w0, w, V, eta)
    numerical = prox.minimise_numerically(idx, 1, w0, w, V, eta)
    assert float((numerical.V - r.V).abs().max()) <= 1e-7
    assert abs(numerical.z - r.z) <= 1e-7
    assert prox.kkt_residual(r, idx, 1, w0, w, V, eta) <= 1e-13
    assert prox.kkt_residual(prox.ProxResult(w0, w, V, 0.0), idx, 1, w0, w, V, eta) > 1e-3  # θ_t is not optimal
