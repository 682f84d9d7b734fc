"""Chapter 06's lecture helpers: the optimiser grid (label and fraction independent), the derived
gap bound, the latent split, and the one quoted speed-up read from the committed run."""

import math
import re
from pathlib import Path

import pytest
import torch

import fmedu
from fmedu import prox, testing
from fmedu.prox import lecture

ROOT = Path(__file__).resolve().parent.parent


def test_optimiser_grid_is_full():
    cases = lecture.optimiser_cases()
    pairs = {(c["y"], c["fraction"]) for c in cases}
    assert pairs == {(y, f) for y in (1, -1) for f in lecture.OPTIMISER_FRACTIONS}
    for y, f in pairs:
        sel = [c for c in cases if c["y"] == y and c["fraction"] == f]
        assert sorted(c["nnz"] for c in sel) == list(range(1, 12))
        assert {c["k"] for c in sel} == {3, 20} and {c["scale"] for c in sel} == {0.01, 1.0, 3.0}
    assert (1, 0.999) in pairs


def test_closed_form_within_derived_gap_at_0999_for_both_labels():
    cases = [c for c in lecture.optimiser_cases() if c["fraction"] == 0.999 and c["nnz"] in (2, 7, 11)]
    for r in lecture.compare_with_optimiser(cases):
        bound = lecture.optimiser_gap_bound(
            r["nnz"], r["k"], r["eta"], r["y"], r["kkt_closed_form"], r["kkt_optimiser"]
        )
        assert r["max_abs_diff"] <= bound
        assert r["kkt_closed_form"] <= 1e-12 * r["kkt_scale"]


def test_strong_convexity_matches_hessian():
    """μ of lecture.strong_convexity is the smallest eigenvalue of ∇²φ at z = 1 (autograd)."""
    for d, y, fraction in ((3, 1, 0.5), (6, -1, 0.9), (11, 1, 0.99)):
        eta = testing.eta_below(d, y, fraction)
        local, k = torch.arange(d), 3

        def phi(theta, d=d, y=y, eta=eta, local=local, k=k):
            y_hat = fmedu.predict_sparse(local, theta[0], theta[1 : 1 + d], theta[1 + d :].reshape(d, k), check=False)
            return -y * y_hat + theta.square().sum() / (2 * eta)  # z = 1, θ_t = 0

        theta = torch.randn(1 + d + d * k, dtype=torch.float64, generator=torch.Generator().manual_seed(d))
        lam = float(torch.linalg.eigvalsh(torch.autograd.functional.hessian(phi, theta))[0])
        assert math.isclose(lam, lecture.strong_convexity(d, eta, y), rel_tol=1e-9)


def test_gap_bound_catches_a_wrong_step():
    """A point moved by more than the bound allows is caught: the bound is not vacuous."""
    idx, w0, w, V = testing.random_prox_case(20, 3, 5, 1.0, 7)
    eta = testing.eta_below(5, 1, 0.5)
    ours = prox.prox_step(idx, 1, w0, w, V, eta)
    theirs = prox.minimise_numerically(idx, 1, w0, w, V, eta)
    bound = lecture.optimiser_gap_bound(
        5, 3, eta, 1, prox.kkt_residual(ours, idx, 1, w0, w, V, eta), prox.kkt_residual(theirs, idx, 1, w0, w, V, eta)
    )
    assert bound < 1e-3  # a shifted answer (by 1e-3) would fail the check


def test_latent_split():
    idx, w0, w, V = testing.random_prox_case(20, 4, 6, 1.0, 3)
    s = prox.sample_scalars(idx, w0, w, V)
    M, P, m, p = lecture.latent_split(V[idx])
    assert torch.allclose(M + P, V[idx]) and float(P.sum(dim=0).abs().max()) <= 1e-14
    assert math.isclose(m, s.C / 6, rel_tol=1e-12) and math.isclose(p, s.A - s.C / 6, rel_tol=1e-12)
    for eta, y, z in ((0.1, 1, 0.7), (0.5, -1, 0.3)):
        V_star = prox.solve_vectors(V[idx], eta, y, z)
        lam_mean, lam_perp = prox.s_eigenvalues(6, eta, y, z)
        assert torch.allclose(V_star, M / lam_mean + P / lam_perp, atol=1e-13)


def test_one_quoted_speedup_everywhere():
    rows = lecture.read_step_cost(ROOT / "figures" / "06_step_cost.csv")
    quoted = lecture.quoted_speedup(rows)
    assert set(lecture.cost_ratios(rows)) == set(lecture.COST_NNZ)
    assert all(ratio > 1 for ratio in lecture.cost_ratios(rows).values())
    text = (ROOT / "notebooks" / "06_prox_solve.py").read_text()
    quoted_in_prose = {int(n) for n in re.findall(r"(\d+)× faster", text)}
    assert quoted_in_prose == {quoted}, f"the prose quotes {quoted_in_prose}, the committed run gives {quoted}"
    assert "for the cost of a gradient step" not in text


@pytest.mark.parametrize("name", ["05_step_size_bound.py", "06_prox_solve.py"])
def test_no_package_names_in_prose(name):
    text = (ROOT / "notebooks" / name).read_text()
    markdown = "\n".join(
        line for cell in text.split("# %%") if cell.startswith(" [markdown]") for line in cell.splitlines()
    )
    for pattern in (
        r"`prox\.",
        r"`testing\.",
        "SampleScalars",
        "fix_write",
        "GOLDEN_PARAM_ATOL",
        "PublishedProxTrainer",
    ):
        assert not re.search(pattern, markdown), f"{name}: {pattern} in the prose"
