"""Chapter 01: the reader's check for Rendle's form (Exercise 1.2) accepts the form and names each slip."""

import pytest

from fmedu import testing


def rendle(x, V):
    return 0.5 * ((x @ V) ** 2 - (x * x) @ (V * V)).sum(-1)


def test_check_accepts_rendles_form(capsys):
    assert testing.check_rendle_form(rendle) is True
    assert capsys.readouterr().out.startswith("Correct")


@pytest.mark.parametrize(
    ("slip", "words"),
    [
        (lambda x, V: ((x @ V) ** 2 - (x * x) @ (V * V)).sum(-1), "the ½ is missing"),
        (lambda x, V: 0.5 * ((x @ V) ** 2).sum(-1), "not subtracted"),
        (lambda x, V: 0.5 * ((x @ V) ** 2 - x @ (V * V)).sum(-1), "x_i instead of x_i²"),
        (lambda x, V: 0.5 * ((x @ V) ** 2 + (x * x) @ (V * V)).sum(-1), "added instead of subtracted"),
        (lambda x, V: None, "returns None"),
        (lambda x, V: rendle(x, V).sum(), "one number per sample"),
        (lambda x, V: rendle(x, V) + 1e-9, "differs from the pair sum"),
    ],
)
def test_check_names_the_slip(capsys, slip, words):
    assert testing.check_rendle_form(slip) is False
    assert words in capsys.readouterr().out
