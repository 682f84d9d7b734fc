"""Chapter 02's rounding-model tolerances (fmedu.grad.rounding_model_bounds, fmedu.grad.three_way)."""

import pytest
import torch

from fmedu import grad, testing
from fmedu.model import dense_to_sparse


def test_gamma_matches_its_definition_and_refuses_large_m():
    u = 2.0**-53
    assert grad.gamma(10) == 10 * u / (1 - 10 * u)
    with pytest.raises(grad.FMInputError, match="m·u must be below 1"):
        grad.gamma(2**53)


@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge"])
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_three_way_agrees_within_the_rounding_model(loss, kind):
    gen = torch.Generator().manual_seed(21)
    checked = 0
    while checked < 4:
        x, y, w0, w, V = testing.random_problem(9, 4, 5, loss, gen, density=1.0 if kind == "dense" else 0.4)
        kw = {"x": x} if kind == "dense" else dict(zip(("idx", "val"), dense_to_sparse(x)))
        if loss == "hinge" and not grad.kink_safe_step(y, w0, w, V, **kw):
            continue
        result = grad.three_way(y, w0, w, V, loss, **kw)
        assert result["ratio_autograd"] <= 1, result["ratio_autograd"]
        assert result["ratio_fd"] <= 1, result["ratio_fd"]
        checked += 1


def test_the_tolerance_catches_a_small_relative_error():
    """A gradient off by one part in a million in one entry fails the closed-form-vs-autograd tolerance."""
    x, y, w0, w, V = testing.random_problem(8, 3, 6, "logistic", torch.Generator().manual_seed(3))
    _, *closed = grad.batch_loss_grad(x, y, w0, w, V, "logistic")
    auto = grad.autograd_batch_grad(y, w0, w, V, "logistic", x=x)[1:]
    bound = grad.rounding_model_bounds(y, w0, w, V, "logistic", x=x)["autograd"]
    assert grad._largest_ratio(closed, auto, bound) <= 1
    wrong = [t.clone() for t in closed]
    wrong[2][0, 1] *= 1 + 1e-6
    assert grad._largest_ratio(wrong, auto, bound) > 1


def test_the_gradient_notes_formula_fails_the_tolerance():
    x, y, w0, w, V = testing.random_problem(7, 3, 6, "logistic", torch.Generator().manual_seed(7))
    auto = grad.autograd_batch_grad(y, w0, w, V, "logistic", x=x)[3]
    bound = grad.rounding_model_bounds(y, w0, w, V, "logistic", x=x)["autograd"][2]
    assert float(((grad.note_batch_grad_V(x, y, w0, w, V) - auto).abs() / bound).max()) > 1e6
