"""Exact sympy proofs of Rendle's identity, and that the proofs can fail."""

import pytest
import sympy as sp

from fmedu import symbolic


@pytest.mark.parametrize("n, k", [(1, 3), (2, 3), (3, 1), (4, 3), (5, 3), (6, 4)])
def test_identity_concrete(n, k):
    assert symbolic.rendle_identity_difference(n, k) == 0


def test_chain_steps_are_exact():
    x, _, _, V = symbolic.fm_symbols(4, 3)
    chain = symbolic.reformulation_chain(x, V)
    assert len(chain) == 4
    for (_, a), (_, b) in zip(chain, chain[1:]):
        assert sp.expand(a - b) == 0


def test_reference_page_lines_differ_from_pair_sum():
    """Erratum R1: both displayed intermediate lines of the SystemDS reference page are wrong."""
    x, _, _, V = symbolic.fm_symbols(3, 3)
    pair_sum = symbolic.pairwise_double_sum(x, V)
    for _, line in symbolic.reference_page_steps(x, V):
        assert sp.expand(line - pair_sum) != 0


def test_fm_prediction_is_the_definition():
    x, w0, w, V = symbolic.fm_symbols(4, 3)
    y_hat = symbolic.fm_prediction(x, w0, w, V)
    assert sp.expand(y_hat - w0 - sum(w[i] * x[i] for i in range(4)) - symbolic.pairwise_rendle(x, V)) == 0


def test_induction_for_symbolic_n():
    assert symbolic.rendle_induction() == {"base": 0, "pair_increment": 0, "step": 0}


def test_induction_check_detects_a_wrong_step():
    """The same simplification leaves a non-zero remainder when the increment is wrong."""
    i, f, n = sp.symbols("i f n", integer=True, positive=True)
    x, v = sp.IndexedBase("x"), sp.IndexedBase("v")
    a = sp.Sum(v[i, f] * x[i], (i, 1, n))
    step = sp.expand(sp.Rational(1, 2) * ((a + v[n + 1, f] * x[n + 1]) ** 2 - a**2 - (v[n + 1, f] * x[n + 1]) ** 2))
    wrong = 2 * sp.Sum(v[i, f] * v[n + 1, f] * x[i] * x[n + 1], (i, 1, n))
    assert sp.simplify(step - wrong) != 0


def test_symbols_shapes():
    x, w0, w, V = symbolic.fm_symbols(5, 3)
    assert x.shape == (5, 1) and w.shape == (5, 1) and V.shape == (5, 3)
    assert str(V[4, 2]) == "v_5_3" and str(w0) == "w_0"
