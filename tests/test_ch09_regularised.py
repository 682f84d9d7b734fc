"""Chapter 09 (regularised proximal point): the regularised step's pieces against dense linear
algebra and a generic optimiser, the bound against eigenvalues, the toy's inequalities, and the
chapter's readers of the committed results against the files' own summaries."""

import math

import numpy as np
import scipy.optimize
import torch

from fmedu.engine import penalised
from fmedu.engine.common import penalised_bound
from fmedu.movielens import penalty
from fmedu.movielens.regularised import fold_interval

F64 = torch.float64


def _s_lambda(d, beta, eta, lam_v):
    return (1 + eta * lam_v + beta) * np.eye(d) - beta * np.ones((d, d))


def test_engine_latent_map_is_the_inverse_of_s_lambda():
    # the engine's v_i <- (v_i + c Σ v) f at its own β must equal S_λ⁻¹ V_t from a dense solve (k = 3, d = 5)
    rng = np.random.default_rng(3)
    d, k = 5, 3
    V_t = rng.normal(scale=0.5, size=(d, k))
    s = V_t.sum(0)
    A, C = float((V_t**2).sum()), float(s @ s)
    for y, eta, lam_w, lam_v in [(1, 0.1, 0.4, 0.7), (-1, 0.5, 0.0, 1.5), (1, 0.2, 1.0, 0.0)]:
        beta, c, f, rho = penalised.coefficients(0.3, -0.2, A, C, d, eta, y, lam_w, lam_v, False, 100)
        assert 0 < beta / (eta * y) < 1 and rho == 1 / (1 + eta * lam_w)
        S = _s_lambda(d, beta, eta, lam_v)
        dense = np.linalg.solve(S, V_t)
        mapped = (V_t + c * s) * f
        assert np.abs(mapped - dense).max() <= 64 * np.finfo(float).eps * np.abs(dense).max() * np.linalg.cond(S)


def test_engine_step_is_the_generic_minimiser_of_the_penalised_prox_objective():
    rng = np.random.default_rng(7)
    d, k, eta, lam_w, lam_v = 4, 3, 0.15, 0.6, 1.1
    for y in (1, -1):
        w0, w, V = float(rng.normal()), rng.normal(size=d), rng.normal(scale=0.4, size=(d, k))
        s = V.sum(0)
        A, C = float((V**2).sum()), float(s @ s)
        beta, c, f, rho = penalised.coefficients(w0, float(w.sum()), A, C, d, eta, y, lam_w, lam_v, False, 100)
        closed = np.concatenate([[w0 + beta], rho * (w + beta), ((V + c * s) * f).ravel()])

        def objective(x, w0=w0, w=w, V=V, y=y):
            xt = torch.tensor(x, dtype=F64, requires_grad=True)
            b0, bw, bV = xt[0], xt[1 : d + 1], xt[d + 1 :].reshape(d, k)
            sv = bV.sum(0)
            y_hat = b0 + bw.sum() + 0.5 * (sv @ sv - (bV**2).sum())
            start = torch.tensor(np.concatenate([[w0], w, V.ravel()]), dtype=F64)
            total = (
                torch.nn.functional.softplus(-y * y_hat)
                + 0.5 * (lam_w * (bw**2).sum() + lam_v * (bV**2).sum())
                + ((xt - start) ** 2).sum() / (2 * eta)
            )
            (g,) = torch.autograd.grad(total, xt)
            return float(total.detach()), g.numpy()

        start = np.concatenate([[w0], w, V.ravel()])
        found = scipy.optimize.minimize(
            objective, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 0, "maxiter": 1000}
        )
        assert np.abs(found.x - closed).max() <= 1e-8


def test_bound_is_where_the_smallest_eigenvalue_changes_sign():
    for d, lam_v in [(11, 0.3), (4, 0.5), (6, 2.0)]:
        bound = penalised_bound(d, lam_v)
        plus = 1 / (d - 1 - lam_v) if d - 1 > lam_v else math.inf  # (9.7), y = +1
        minus = 1 / (1 - lam_v) if lam_v < 1 else math.inf  # (9.7), y = -1
        assert math.isclose(bound, min(plus, minus), rel_tol=1e-15)
        for y in (1, -1):
            inside = np.linalg.eigvalsh(_s_lambda(d, y * 0.999 * bound, 0.999 * bound, lam_v)).min()
            assert inside > 0
        binding = 1 if plus < minus else -1
        outside = np.linalg.eigvalsh(_s_lambda(d, binding * 1.001 * bound, 1.001 * bound, lam_v)).min()
        assert outside < 0


def test_opposite_touches_inflate_implicitly_and_deflate_explicitly():
    for x in np.linspace(0.01, 0.9, 90):
        assert 1 / ((1 - x) * (1 + x)) > 1 > (1 + x) * (1 - x)
        # at the threshold (9.11) the penalised pair neither grows nor shrinks
        eta = 0.05
        lam_star = (math.sqrt(1 + x * x) - 1) / eta
        a = 1 + eta * lam_star
        assert abs((a - x) * (a + x) - 1) <= 8 * np.finfo(float).eps


def test_toy_grows_without_penalty_and_not_with_twice_the_threshold():
    rows = penalty.toy_rows(touches=400)
    final = {r["rule"]: r["rms"] for r in rows if r["touch"] == 400}
    first = {r["rule"]: r["rms"] for r in rows if r["touch"] == 0}
    implicit, explicit, third, twice = list(final)
    assert final[implicit] > 10 * first[implicit]
    assert final[explicit] < first[explicit]
    assert final[twice] < first[twice]
    assert final[third] > first[third]


def test_fold_reader_reproduces_the_committed_across_fold_summary():
    summary = penalty.read_rows(penalty.SUMMARY)
    for r in penalty.read_rows(penalty.FOLDS):
        if r["method"] == "logistic regression":
            continue
        mean, lo, hi = penalty.across(summary, r["method"], r["penalised"])
        assert math.isclose(mean, r["mean_diff_vs_lr"], rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(lo, r["diff_lo"], rel_tol=1e-9) and math.isclose(hi, r["diff_hi"], rel_tol=1e-9)


def test_versus_is_the_fold_interval_of_the_loss_differences():
    summary = penalty.read_rows(penalty.SUMMARY)
    a = {r["fold"]: r["test_log_loss"] for r in summary if (r["method"], r["penalised"]) == ("prox", 1)}
    b = {r["fold"]: r["test_log_loss"] for r in summary if (r["method"], r["penalised"]) == ("sgd", 1)}
    assert penalty.versus(summary, ("prox", 1), ("sgd", 1)) == fold_interval([a[f] - b[f] for f in range(1, 6)])


def test_mechanism_reader_finds_one_value_per_setting():
    rows = penalty.mechanism_rows()
    exact = penalty.mechanism_at(rows, "prox", 0.01, 0.0, "gender", 10)
    sgd = penalty.mechanism_at(rows, "sgd", 0.01, 0.0, "gender", 10)
    assert exact > 10 * sgd  # the README's gender row: the exact step inflates, SGD does not


def test_grid_edges_lie_inside_the_tried_ranges():
    for method in ("prox", "sgd"):
        rows = penalty.grid_edges(method, 1)
        assert [r["fold"] for r in rows] == [1, 2, 3, 4, 5]
        for r in rows:
            assert r["eta_tried"][0] <= r["eta"] <= r["eta_tried"][1]
            assert r["lam_v_tried"][0] <= r["lam_v"] <= r["lam_v_tried"][1]
