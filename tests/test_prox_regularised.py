"""The prox step with per-touch L2 penalties (fmedu.prox.prox_step's lam_w, lam_v), its bounds and
its robustness: sympy, a generic optimiser (damped Newton) and autograd, each against the library."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

from fmedu import prox
from fmedu.errors import FMInputError
from fmedu.prox import scalar, symbolic

N, K = 9, 4  # n != k, k >= 3


def params(seed: int, scale: float = 0.6):
    g = torch.Generator().manual_seed(seed)
    w0 = torch.randn((), generator=g, dtype=torch.float64)
    w = torch.randn(N, generator=g, dtype=torch.float64)
    V = scale * torch.randn(N, K, generator=g, dtype=torch.float64)
    return w0, w, V


def objective(theta, idx, y, eta, lam_w, lam_v, w0, w, V):
    """The full prox objective on the sample's coordinates: loss + penalty + ‖θ − θ_t‖²/(2η)."""
    d = idx.numel()
    a0, a, A = theta[0], theta[1 : 1 + d], theta[1 + d :].reshape(d, K)
    y_hat = a0 + a.sum() + 0.5 * (A.sum(0).square().sum() - A.square().sum())
    penalty = 0.5 * (lam_w * a.square()).sum() + 0.5 * (lam_v[:, None] * A.square()).sum()
    move = (a0 - w0).square() + (a - w[idx]).square().sum() + (A - V[idx]).square().sum()
    return torch.nn.functional.softplus(-y * y_hat) + penalty + move / (2 * eta)


def rows(lam, idx):
    return lam[idx] if isinstance(lam, torch.Tensor) else torch.full((idx.numel(),), float(lam), dtype=torch.float64)


def damped_newton(idx, y, eta, lam_w, lam_v, w0, w, V):
    """argmin of :func:`objective` by Newton's method with backtracking, from θ_t (generic)."""
    lw, lv = rows(lam_w, idx), rows(lam_v, idx)
    theta = torch.cat([w0.reshape(1), w[idx], V[idx].reshape(-1)]).clone()

    def F(t):
        return objective(t, idx, y, eta, lw, lv, w0, w, V)

    for _ in range(100):
        t = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F(t), t)
        if float(grad.abs().max()) < 1e-15:
            break
        H = torch.autograd.functional.hessian(F, theta)
        step = torch.linalg.solve(H, grad)
        f0, s = float(F(theta)), 1.0
        while float(F(theta - s * step)) > f0 and s > 1e-12:
            s /= 2
        theta = theta - s * step
    return theta


def flat(r, idx):
    return torch.cat([r.w0.reshape(1), r.w[idx], r.V[idx].reshape(-1)])


def gradient_at(r, idx, y, eta, lam_w, lam_v, w0, w, V) -> float:
    t = flat(r, idx).clone().requires_grad_(True)
    (g,) = torch.autograd.grad(objective(t, idx, y, eta, rows(lam_w, idx), rows(lam_v, idx), w0, w, V), t)
    return float(g.abs().max())


CASES = [  # (idx, lam_w, lam_v): one number each, and one per feature
    ([0, 2, 5], 0.3, 0.5),
    ([1, 3, 4, 6, 8], 1.2, 0.1),
    ([2, 7], 0.0, 2.5),
    ([0, 1, 2, 3], "per", "per"),
    ([4, 5, 6], 0.4, "per"),
]


def penalties(spec, seed):
    if spec == "per":
        g = torch.Generator().manual_seed(seed)
        return 2.0 * torch.rand(N, generator=g, dtype=torch.float64)
    return spec


def test_no_penalty_is_bit_identical_to_the_plain_step():
    w0, w, V = params(1)
    for idx in ([0, 3, 5], [2], [1, 2, 4, 6, 8]):
        i = torch.tensor(idx)
        for y in (1, -1):
            eta = 0.9 * prox.step_size_bound(len(idx), "exact", y) if len(idx) > 1 else 2.0
            plain = prox.prox_step(i, y, w0, w, V, eta)
            for lam in (0.0, torch.zeros(N)):
                r = prox.prox_step(i, y, w0, w, V, eta, lam_w=lam, lam_v=lam)
                assert all(torch.equal(a, b) for a, b in zip(r[:3], plain[:3]))
                assert r.z == plain.z


def test_penalised_step_matches_a_damped_newton_and_has_zero_gradient():
    worst_opt, worst_grad = 0.0, 0.0
    for c, (idx, lw_spec, lv_spec) in enumerate(CASES):
        i = torch.tensor(idx)
        lam_w, lam_v = penalties(lw_spec, 10 + c), penalties(lv_spec, 20 + c)
        for y in (1.0, -1.0):
            bound = prox.step_size_bound_per_feature(rows(lam_v, i), y)
            for frac in (0.3, 0.999):
                eta = frac * bound if math.isfinite(bound) else 4.0 * frac
                w0, w, V = params(100 + c)
                r = prox.prox_step(i, y, w0, w, V, eta, lam_w=lam_w, lam_v=lam_v)
                ref = damped_newton(i, y, eta, lam_w, lam_v, w0, w, V)
                worst_opt = max(worst_opt, float((flat(r, i) - ref).abs().max()))
                worst_grad = max(worst_grad, gradient_at(r, i, y, eta, lam_w, lam_v, w0, w, V))
                untouched = torch.ones(N, dtype=torch.bool)
                untouched[i] = False
                assert torch.equal(r.w[untouched], w[untouched]) and torch.equal(r.V[untouched], V[untouched])
    assert worst_opt < 1e-10, worst_opt
    assert worst_grad < 1e-10, worst_grad


def test_uniform_per_feature_penalty_equals_the_scalar_formula():
    w0, w, V = params(3)
    i = torch.tensor([0, 4, 7])
    lv = torch.rand(N, dtype=torch.float64)
    lv[i] = 0.8  # same on the touched rows
    s = prox.sample_scalars(i, w0, w, V)
    for z in (0.1, 0.5, 0.9):
        for y in (1.0, -1.0):
            per = prox.prediction_after_per_feature(
                z, float(w0), w[i], V[i], y, 0.3, torch.full((3,), 0.4, dtype=torch.float64), lv[i]
            )
            one = (
                prox.prediction_after(z, s, y, 0.3, lam_w=0.4, lam_v=0.8),
                prox.prediction_slope(z, s, y, 0.3, lam_w=0.4, lam_v=0.8),
            )
            assert abs(per[0] - one[0]) < 1e-13 and abs(per[1] - one[1]) < 1e-13


def test_prediction_after_is_the_prediction_at_theta_z_and_its_slope_a_finite_difference():
    w0, w, V = params(4)
    i = torch.tensor([1, 2, 5, 8])
    lw = torch.tensor([0.1, 0.5, 0.0, 1.0], dtype=torch.float64)
    lv = torch.tensor([0.3, 0.0, 1.5, 0.7], dtype=torch.float64)
    lam_w, lam_v = torch.zeros(N, dtype=torch.float64), torch.zeros(N, dtype=torch.float64)
    lam_w[i], lam_v[i] = lw.double(), lv.double()
    for y in (1.0, -1.0):
        eta = 0.8 * prox.step_size_bound_per_feature(lv, y)
        for z in (0.2, 0.7):
            r = prox.update_from_z(i, y, w0, w, V, eta, z, lam_w=lam_w, lam_v=lam_v)
            y_hat = float(r.w0 + r.w[i].sum() + 0.5 * (r.V[i].sum(0).square().sum() - r.V[i].square().sum()))
            f, df = prox.prediction_after_per_feature(z, float(w0), w[i], V[i], y, eta, lw, lv)
            assert abs(f - y_hat) < 1e-13
            h = 1e-6
            fd = (
                prox.prediction_after_per_feature(z + h, float(w0), w[i], V[i], y, eta, lw, lv)[0]
                - prox.prediction_after_per_feature(z - h, float(w0), w[i], V[i], y, eta, lw, lv)[0]
            ) / (2 * h)
            assert abs(fd - df) < 1e-7 * (1 + abs(df))
            # q'' < 0 below the bound: −y dŷ/dz − 1/(z(1 − z))
            assert -y * df - 1 / (z * (1 - z)) < 0


def test_sympy_symbolic_d_eigenpairs_and_sherman_morrison():
    S0 = symbolic.sym_s_symbolic_d()
    a = sp.Symbol("a", positive=True)
    beta, d, I, J, ones = S0.beta, S0.d, S0.I, S0.J, S0.ones
    S = (a + beta) * I - beta * J
    (along,) = symbolic.split_terms(S * ones, [ones])
    assert sp.simplify(along - (a - (d - 1) * beta)) == 0
    u = sp.MatrixSymbol("u", d, 1)  # a vector orthogonal to 1: J u = 0
    on_u, on_Ju = symbolic.split_terms(S * u, [u, J * u])
    assert sp.simplify(on_u - (a + beta)) == 0 and sp.simplify(on_Ju + beta) == 0
    D, E = a - (d - 1) * beta, a + beta
    S_inv = (I + (beta / D) * J) / E
    c_I, c_J = symbolic.split_terms(S_inv * S, [I, J])
    assert sp.simplify(c_I - 1) == 0 and sp.simplify(c_J) == 0


def test_sympy_explicit_matrices_and_the_prediction_at_d_2_3_4():
    a, beta = sp.symbols("a beta", positive=True)
    for d in (2, 3, 4):
        S = (a + beta) * sp.eye(d) - beta * sp.ones(d, d)
        D, E = a - (d - 1) * beta, a + beta
        assert sp.simplify(S.inv() - (sp.eye(d) + beta / D * sp.ones(d, d)) / E) == sp.zeros(d, d)
        assert sp.simplify(S.det() - D * E ** (d - 1)) == 0
    # ŷ(θ(z)) with symbolic η, z, λ_w, λ_v at d = 3, k = 2 against an explicit solve
    eta, z, lw, lv = sp.symbols("eta z lambda_w lambda_v", positive=True)
    d, k, y = 3, 2, -1
    w0 = sp.Symbol("w0")
    wt = sp.Matrix(sp.symbols("w1:4"))
    Vt = sp.Matrix(d, k, lambda i, f: sp.Symbol(f"v{i}{f}"))
    b = eta * y * z
    S = (1 + eta * lv + b) * sp.eye(d) - b * sp.ones(d, d)
    Vn = S.LUsolve(Vt)
    wn = (wt + b * sp.ones(d, 1)) / (1 + eta * lw)
    y_hat = w0 + b + sum(wn) + sum(Vn[i, f] * Vn[j, f] for i in range(d) for j in range(i + 1, d) for f in range(k))
    s = prox.SampleScalars(
        w0 + sum(wt),
        sum(Vt[i, f] ** 2 for i in range(d) for f in range(k)),
        sum(sum(Vt[:, f]) ** 2 for f in range(k)),
        d,
        sum(wt),
    )
    mine = prox.prediction_after(z, s, y, eta, lam_w=lw, lam_v=lv)
    point = {eta: sp.Rational(3, 7), z: sp.Rational(2, 5), lw: sp.Rational(1, 3), lv: sp.Rational(5, 4)}
    values = {sym: sp.Rational(j + 2, 9 - j) for j, sym in enumerate(sorted(y_hat.free_symbols - set(point), key=str))}
    assert abs(float((mine - y_hat).subs(point).subs(values))) < 1e-12
    assert sp.cancel((sp.nsimplify(mine) - y_hat).subs(point)) == 0  # exact: symbolic w, V


def test_step_size_bound_with_penalty():
    assert prox.step_size_bound(4, "exact", 1, lam_v=1.0) == 1 / 2
    assert prox.step_size_bound(4, "exact", 1, lam_v=3.0) == math.inf
    assert prox.step_size_bound(4, "exact", -1, lam_v=0.5) == 2.0
    assert prox.step_size_bound(4, "exact", -1, lam_v=1.0) == math.inf
    assert prox.step_size_bound(4, "exact", None, lam_v=0.5) == min(1 / 2.5, 2.0)
    assert prox.step_size_bound(1, "exact", 1, lam_v=0.5) == math.inf
    assert prox.step_size_bound(np.int64(3)) == 0.5
    # the penalised bound is where S_λ(1) loses positive definiteness
    for lam in (0.0, 0.4, 1.7):
        for y in (1, -1):
            bound = prox.step_size_bound(5, "exact", y, lam_v=lam)
            if y == -1 and lam >= 1:
                assert bound == math.inf
                continue
            S = prox.s_matrix(5, bound, y, 1.0) + bound * lam * torch.eye(5, dtype=torch.float64)
            assert abs(float(np.linalg.eigvalsh(S.numpy())[0])) < 1e-12


def test_per_feature_bound_against_eigvalsh():
    g = torch.Generator().manual_seed(5)
    for trial in range(40):
        d = 2 + trial % 5
        lam = 3.0 * torch.rand(d, generator=g, dtype=torch.float64)
        if trial % 4 == 0:
            lam[:] = lam[0]  # repeated values (the y = −1 branch's repeated minimum)
        for y in (1.0, -1.0):
            K = torch.diag(lam) + y * (torch.eye(d, dtype=torch.float64) - torch.ones(d, d, dtype=torch.float64))
            mu = float(torch.linalg.eigvalsh(K)[0])
            assert abs(prox.smallest_eigenvalue_k(lam, y) - mu) < 1e-12
            bound = prox.step_size_bound_per_feature(lam, y)
            assert bound == (-1 / mu if mu < 0 else math.inf) or abs(bound + 1 / mu) < 1e-10 * abs(1 / mu)
            if trial % 4 == 0:
                same = prox.step_size_bound(d, "exact", y, lam_v=float(lam[0]))
                assert bound == same or abs(bound - same) <= 1e-12 * bound


def test_beyond_the_penalised_bound_is_refused():
    w0, w, V = params(6)
    i = torch.tensor([0, 1, 2])
    with pytest.raises(FMInputError, match="bound"):
        prox.prox_step(i, 1, w0, w, V, 1 / (2 - 0.5), lam_v=0.5)
    prox.prox_step(i, 1, w0, w, V, 0.99 / (2 - 0.5), lam_v=0.5)


@pytest.mark.parametrize(
    "bad",
    [-0.1, math.nan, math.inf, "0.1", True, torch.zeros(N - 1), torch.full((N,), -1.0), torch.zeros(N, 2)],
)
def test_bad_penalties_are_refused(bad):
    w0, w, V = params(7)
    for name in ("lam_w", "lam_v"):
        with pytest.raises(FMInputError, match=name):
            prox.prox_step(torch.tensor([0, 1]), 1, w0, w, V, 0.5, **{name: bad})


def test_overflowing_parameters_raise_instead_of_nan():
    w0, w, V = params(8)
    V = V.clone()
    V[2] = 1e154
    with pytest.raises(FMInputError, match="overflow"):
        prox.prox_step(torch.tensor([2, 3]), 1, w0, w, V, 0.5)


def no_pairs_reference(c: float, kappa: float, eta: float) -> mpmath.mpf:
    """z with t = logit(z) solving t + κησ(t) = c, by bisection at 80 digits."""
    with mpmath.workdps(80):
        lo, hi = mpmath.mpf(-2000), mpmath.mpf(c) + 1
        for _ in range(400):
            m = (lo + hi) / 2
            if m + kappa * mpmath.mpf(eta) / (1 + mpmath.e ** (-m)) - c < 0:
                lo = m
            else:
                hi = m
        return 1 / (1 + mpmath.e ** (-lo))


def test_huge_eta_without_pairs_against_mpmath():
    w0, w, V = params(9)
    worst = 0.0
    for idx in ([], [3]):
        i = torch.tensor(idx, dtype=torch.int64)
        s = prox.sample_scalars(i, w0, w, V)
        for y in (1, -1):
            for eta in (1e10, 1e50, 1e88, 1e100, 1e200, 1e300):
                r = prox.prox_step(i, y, w0, w, V, eta)
                ref = no_pairs_reference(-y * s.B, 1.0 + len(idx), eta)
                worst = max(worst, float(abs(r.z - ref) / ref))
                assert float(r.w0 - w0) == pytest.approx(y * eta * r.z, rel=1e-15)
    assert worst < 1e-12, worst


def test_no_pairs_solver_agrees_with_the_plain_iteration_at_moderate_eta():
    for c in (-3.0, 0.2, 4.0):
        for eta in (1e-2, 1.0, 1e4, 1e8):
            plain = scalar.newton_z(-c, 0.0, 0.0, 1.0, eta, 1.0, 200)[0]
            assert abs(scalar.newton_z_no_pairs(c, 2.0, eta, 200)[0] - plain) <= 1e-13 * plain


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eta": "0.5"}, "eta"),
        ({"eta": True}, "eta"),
        ({"eta": torch.tensor([0.1, 0.2])}, "eta"),
        ({"y": "1"}, "y"),
        ({"y": True}, "y"),
        ({"y": np.True_}, "y"),
        ({"eta": np.True_}, "eta"),
    ],
)
def test_bad_scalars_are_refused(kwargs, match):
    w0, w, V = params(10)
    args = {"y": 1, "eta": 0.5, **kwargs}
    with pytest.raises(FMInputError, match=match):
        prox.prox_step(torch.tensor([0, 1]), args["y"], w0, w, V, args["eta"])


def test_numpy_scalars_are_accepted():
    w0, w, V = params(11)
    r = prox.prox_step(torch.tensor([0, 1]), np.int64(1), w0, w, V, np.float64(0.5), lam_v=np.float32(0.25))
    plain = prox.prox_step(torch.tensor([0, 1]), 1, w0, w, V, 0.5, lam_v=0.25)
    assert all(torch.equal(a, b) for a, b in zip(r[:3], plain[:3]))
    assert prox.step_size_bound(np.int64(3)) == 0.5
    with pytest.raises(FMInputError, match="nnz"):
        prox.step_size_bound(True)


def test_penalised_pairs_at_huge_eta_converge_or_are_refused():
    w0, w, V = params(12)
    i = torch.tensor([0, 2, 3])  # lam_v = 2 = d - 1: no bound for y = +1
    for eta in (1e2, 1e6, 1e10):
        r = prox.prox_step(i, 1, w0, w, V, eta, lam_w=0.5, lam_v=2.0)
        assert gradient_at(r, i, 1.0, eta, 0.5, 2.0, w0, w, V) < 1e-9
    with pytest.raises(FMInputError, match="did not converge"):
        prox.prox_step(i, 1, w0, w, V, 1e100, lam_w=0.5, lam_v=2.0)


def test_sympy_slope_and_q_second_of_the_penalised_prediction():
    z, eta, lw, lv, A, C, B, ws = sp.symbols("z eta lambda_w lambda_v A C B w_s", positive=True)
    for d in (2, 3, 5):
        s = prox.SampleScalars(B, A, C, d, ws)
        for y in (1, -1):
            f = sp.nsimplify(prox.prediction_after(z, s, y, eta, lam_w=lw, lam_v=lv))
            slope = sp.nsimplify(prox.prediction_slope(z, s, y, eta, lam_w=lw, lam_v=lv))
            q2nd = sp.nsimplify(prox.q_second(z, s, y, eta, lam_w=lw, lam_v=lv))
            q_first = -y * f - sp.log(z / (1 - z))
            # exact in z (the variable of differentiation), at rational values of the rest
            at = {eta: sp.Rational(2, 7), lw: sp.Rational(1, 3), lv: sp.Rational(3, 4), A: 3, C: 2, B: -1, ws: 5}
            assert sp.cancel((sp.diff(f, z) - slope).subs(at)) == 0
            assert sp.cancel((sp.diff(q_first, z) - q2nd).subs(at)) == 0
            # q'' < 0 on a grid below the bound, A >= C/d (Cauchy–Schwarz: C <= d A)
            bound = prox.step_size_bound(d, "exact", y, lam_v=0.5)
            for frac in (0.5, 0.99):
                e = frac * bound if math.isfinite(bound) else 3.0
                for zz in (0.05, 0.5, 0.95):
                    value = q2nd.subs({z: zz, eta: e, lw: 0.3, lv: 0.5, A: 2.0, C: 1.5 * d, B: 0.1, ws: 0.4})
                    assert float(value) < 0
