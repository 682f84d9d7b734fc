"""Chapter 05's lecture helpers: the V-Hessian entries, the saddle of the worked example, and the
story the chapter tells about the bound (no 'well defined' claim, one phrasing of the published bound)."""

import math
import re
from pathlib import Path

import pytest
import torch

from fmedu import prox, testing
from fmedu.prox import lecture

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("d", "k", "y"), [(2, 1, 1), (3, 3, -1), (4, 2, 1)])
def test_hessian_entries_match(d, k, y):
    assert lecture.hessian_entries_match(d, k, y) == (True, True)


def test_saddle_is_the_step():
    rows = lecture.saddle_rows(points=21)
    z_star = rows[0]["z_star"]
    idx, y, w0, w, V, eta = lecture.worked_example()
    step = prox.prox_step(idx, y, w0, w, V, eta)
    assert z_star == step.z
    # the min player's answer at z* is s = 1, and the max player's answer at s = 1 is z*
    s_best_at_z_star = lecture.line_phi([1.0], [z_star])
    phi_s = lecture.line_phi([0.99, 1.0, 1.01], [z_star])[0][0]
    assert phi_s[1] < phi_s[0] and phi_s[1] < phi_s[2]
    phi_z = lecture.line_phi([1.0], [z_star - 1e-3, z_star, z_star + 1e-3])[0][:, 0]
    assert phi_z[1] > phi_z[0] and phi_z[1] > phi_z[2]
    assert s_best_at_z_star[1].z == step.z


def test_saddle_rows_best_answers_cross_at_the_saddle():
    rows = lecture.saddle_rows(points=31)
    z_star = rows[0]["z_star"]
    # at every z the min player's s is where φ(θ_s, z) is smallest along the s grid (to grid spacing)
    for z in sorted({r["z"] for r in rows})[::5]:
        sel = [r for r in rows if r["z"] == z]
        grid_best = min(sel, key=lambda r: r["phi"])["s"]
        if -0.5 < sel[0]["s_best"] < 2.5:
            assert abs(grid_best - sel[0]["s_best"]) <= 0.1 + 1e-12
    # at s = 1 the max player's z is z* (σ(−y ŷ(θ_{t+1})))
    at_one = [r for r in rows if abs(r["s"] - 1.0) < 1e-12]
    assert at_one and abs(at_one[0]["z_best"] - z_star) <= 1e-12


def test_prox_objective_is_coercive_past_the_bound():
    """(5.8): F ≥ ‖θ − θ_t‖²/(2η) for every η, so a minimiser exists even past the bound."""
    idx, w0, w, V = testing.random_prox_case(15, 4, 11, 0.3, 6)  # chapter 05's beyond-the-bound sample
    eta = 0.3
    for scale in (1.0, 10.0, 100.0):
        direction = torch.ones_like(V) * scale
        F = float(prox.prox_objective(idx, 1, w0, w, V + direction, eta, w0, w, V))
        assert F >= float(direction.square().sum()) / (2 * eta)
    assert math.isfinite(prox.prox_step(idx, 1, w0, w, V, eta, allow_beyond_bound=True).z)


@pytest.mark.parametrize("name", ["05_step_size_bound.py", "06_prox_solve.py"])
def test_no_well_defined_claim_and_one_published_bound(name):
    text = (ROOT / "notebooks" / name).read_text()
    assert "well defined" not in text, f"{name}: the step exists for every η; say what the bound is for"
    assert 'too small" as advice' not in text
    # the published bound is written 1/(2d+1); 1/(2d) only as what the post derives
    for match in re.finditer(r"1/\(2d\)", text):
        context = text[max(0, match.start() - 60) : match.end() + 10]
        assert "derive" in context or "\\le" in context, context
