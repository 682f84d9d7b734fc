"""Reading results (chapter 07): choose on validation, report test; peer summaries."""

import math

import pytest

from fmedu.errors import ResultsError
from fmedu.movielens import analysis


def _rows(method, eta, attempt, val, test, train=None):
    return [
        {
            "variant": "full",
            "method": method,
            "eta": eta,
            "attempt": attempt,
            "epoch": e + 1,
            "train_loss": (train or val)[e],
            "val_loss": v,
            "test_loss": t,
        }
        for e, (v, t) in enumerate(zip(val, test))
    ]


def test_each_run_stops_at_its_best_validation_epoch_and_reports_test_there():
    rows = _rows("sgd", 0.1, 0, [0.5, 0.4, 0.45], [0.3, 0.41, 0.2]) + _rows(
        "sgd", 0.1, 1, [0.6, 0.7, 0.5], [1, 2, 0.52]
    )
    picks = analysis.run_choices(rows, "val_loss", "test_loss")[("full", "sgd", 0.1)]
    assert [(p["epoch"], p["choose"], p["report"]) for p in picks] == [(2, 0.4, 0.41), (3, 0.5, 0.52)]
    # the smallest test value (0.2, 0.3) is never what is reported: test plays no part in the choice


def test_step_size_chosen_by_validation_not_by_test():
    rows = _rows("sgd", 0.1, 0, [0.40], [0.50]) + _rows("sgd", 0.01, 0, [0.45], [0.30])
    summary = analysis.selection_summary(rows, "val_loss", "test_loss")
    best = analysis.choose_step_size(summary, "sgd")
    assert best["eta"] == 0.1 and best["mean"] == 0.50 and best["choose_mean"] == 0.40
    assert analysis.spread_over_eta(summary, "sgd") == pytest.approx(0.2)
    assert [s["method"] for s in analysis.selection_table(rows, "val_loss", "test_loss")] == ["sgd"]
    with pytest.raises(ResultsError, match="adam"):
        analysis.choose_step_size(summary, "adam")


def test_diverged_runs_are_never_chosen():
    rows = _rows("prox", 0.04, 0, [math.nan, math.inf], [1.0, 1.0]) + _rows("prox", 0.001, 0, [0.5, 0.45], [0.5, 0.46])
    summary = analysis.selection_summary(rows, "val_loss", "test_loss")
    diverged = next(s for s in summary if s["eta"] == 0.04)
    assert diverged["mean"] == math.inf and diverged["choose_mean"] == math.inf
    assert analysis.choose_step_size(summary, "prox")["eta"] == 0.001


def test_mean_and_band_over_attempts():
    rows = [r for a, t in enumerate([0.40, 0.42, 0.44]) for r in _rows("adagrad", 0.1, a, [0.5], [t])]
    (s,) = analysis.selection_summary(rows, "val_loss", "test_loss")
    assert s["attempts"] == 3 and s["mean"] == pytest.approx(0.42) and s["sd"] == pytest.approx(0.02)
    assert s["hi"] - s["mean"] == pytest.approx(2 * 0.02 / math.sqrt(3))


def test_held_out_columns():
    rows = _rows("sgd", 0.1, 0, [0.5], [0.4])
    assert analysis.held_out(rows) == ("val_loss", "test_loss")
    old = [{k: v for k, v in r.items() if k != "test_loss"} for r in rows]
    assert analysis.held_out(old) == ("val_loss", "val_loss")


def test_peer_summary_over_seeds():
    rows = [
        {
            "model": "m",
            "setting": "rank=2",
            "seed": s,
            "split": split,
            "n": 10,
            "log_loss": ll,
            "auc": 0.8,
            "fit_s": 1.0,
        }
        for s, ll in enumerate([0.40, 0.42])
        for split in ("train", "test")
    ]
    (p,) = analysis.peer_summary(rows, "test")
    assert p["seeds"] == 2 and p["log_loss"] == pytest.approx(0.41) and p["split"] == "test"
    assert analysis.peer_split(rows) == "test"
    assert analysis.peer_split([r for r in rows if r["split"] == "train"]) == "validation"
    with pytest.raises(ResultsError, match="validation"):
        analysis.peer_summary(rows, "validation")


def test_stable_width_counts_decades_of_near_optimal_step_sizes():
    from fmedu.movielens.analysis import stable_width

    etas = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    losses = [0.50, 0.431, 0.430, 0.434, float("inf")]
    width, at_edge = stable_width(etas, losses, tol=0.005)
    assert abs(width - 2.0) <= 1e-12 and at_edge is False
    # a diverged step size beyond the grid changes nothing; the order of the grid does not matter
    assert stable_width([*etas[::-1], 10.0], [*losses[::-1], float("nan")], tol=0.005) == (width, False)
    # only the best qualifies: width 0; a window that touches an end of the grid is flagged
    assert stable_width(etas, losses, tol=0.0005) == (0.0, False)
    assert stable_width([1e-5, 1e-4], [0.44, 0.441], tol=0.005) == (1.0, True)


def test_stable_width_refuses_bad_input():
    from fmedu.errors import FMInputError
    from fmedu.movielens.analysis import stable_width

    for etas, losses in (([1e-3, 0.0], [0.4, 0.5]), ([1e-3], [0.4, 0.5]), ([1e-3, 1e-2], [float("inf"), float("nan")])):
        with pytest.raises(FMInputError):
            stable_width(etas, losses)
