"""fmedu.movielens.regularised and folds: the official five folds, the choices on validation, the
paired intervals against logistic regression, and the smoke presets end to end."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmedu.errors import FMInputError
from fmedu.movielens import regularised as reg

HAVE_DATA = (Path(os.environ.get("FMEDU_DATA", "")) / "u1.base").is_file()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="needs MovieLens 100k in $FMEDU_DATA")


@pytest.fixture(scope="module")
def ds():
    from fmedu.movielens.data import load_movielens

    return load_movielens(join="correct")


@needs_data
def test_the_five_official_folds_split_every_rating_once_into_test(ds):
    from fmedu.movielens.folds import fold_rows

    tests = []
    for fold in (1, 2, 3, 4, 5):
        train, val, test = fold_rows(ds, fold)
        assert (len(train), len(val), len(test)) == (72_000, 8_000, 20_000)
        assert not np.intersect1d(train, test).size and not np.intersect1d(val, test).size
        assert not np.intersect1d(train, val).size
        tests.append(test)
        again = fold_rows(ds, fold)  # the validation part is seeded: the same rows every time
        assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test)))
        other = fold_rows(ds, fold, val_seed=1)
        assert np.array_equal(np.sort(np.concatenate(other[:2])), np.sort(np.concatenate([train, val])))
        assert not np.array_equal(other[1], val)
    everything = np.concatenate(tests)
    assert len(np.unique(everything)) == 100_000  # disjoint test sets covering every rating
    with pytest.raises(FMInputError, match="fold must be one of"):
        fold_rows(ds, 6)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=60),
    st.integers(0, 2**31),
)
def test_the_paired_interval_contains_the_point_estimate(values, seed):
    a = np.asarray(values)
    b = np.roll(a, 1) * 0.5
    diff, lo, hi = reg.paired_bootstrap(a, b, 400, seed)
    assert diff == pytest.approx(float(np.mean(a - b)), abs=1e-12)
    assert lo <= diff + 1e-12 and diff - 1e-12 <= hi


def test_the_paired_interval_of_a_tiny_case_matches_its_exact_distribution():
    """Differences (0, 0, 1): a resample's mean is k/3 with k ~ Binomial(3, 1/3), so
    P(mean = 0) = 8/27 > 2.5 % and P(mean = 1) = 1/27 > 2.5 %: the 95 % interval is [0, 1]."""
    a, b = np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0])
    diff, lo, hi = reg.paired_bootstrap(a, b, 20_000, 0)
    assert diff == pytest.approx(1 / 3)
    assert (lo, hi) == (0.0, 1.0)
    # a constant difference has a degenerate interval
    assert reg.paired_bootstrap(a + 0.25, a, 100, 1) == (0.25, 0.25, 0.25)
    # the same seed, the same interval
    assert reg.paired_bootstrap(a, b, 500, 5) == reg.paired_bootstrap(a, b, 500, 5)


def test_the_interval_over_folds_is_students_t():
    mean, lo, hi = reg.fold_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4) · sd / √5
    assert mean == 3.0 and lo == pytest.approx(3 - half) and hi == pytest.approx(3 + half)


def test_choices_use_the_validation_loss_only():
    def row(eta, epoch, val, test, seed=0, stage="coarse"):
        return {"fold": 1, "method": "sgd", "penalised": 1, "eta": eta, "epoch": epoch, "val_loss": val,
                "test_loss": test, "seed": seed, "stage": stage, "lam_w": 0.0, "lam_v": 0.1, "decay": 0.9}  # fmt: skip

    rows = [row(0.1, 1, 0.50, 0.30), row(0.1, 2, 0.40, 0.45), row(0.2, 1, 0.45, 0.20), row(0.2, 2, math.nan, 0.1),
            row(0.3, 3, 0.10, 0.9, seed=1, stage="seeds")]  # fmt: skip
    best = reg.choose(rows)[(1, "sgd", 1)]
    assert (best["eta"], best["epoch"]) == (0.1, 2)


@needs_data
def test_the_smoke_preset_runs_resumes_and_summarises(tmp_path):
    prov = reg.run("regularised-smoke", tmp_path)
    config = reg.PRESETS["regularised-smoke"]
    summary = reg.load_csv(tmp_path / "regularised-smoke-summary.csv", reg.SUMMARY_COLUMNS)
    fm = [r for r in summary if r["method"] in reg.FM_METHODS]
    assert len(fm) == len(config.folds) * len(reg.FM_METHODS) * 2
    assert {(r["method"], r["penalised"], r["fold"]) for r in fm} == {
        (m, p, f) for m in reg.FM_METHODS for p in (0, 1) for f in config.folds
    }
    for label in ("logistic regression", "bayesian fm"):
        assert sorted(r["fold"] for r in summary if r["method"] == label) == list(config.folds)
    for r in summary:
        assert r["diff_lo"] <= r["diff_vs_lr"] + 1e-12 <= r["diff_hi"] + 2e-12
        if r["method"] == "logistic regression":
            assert r["diff_vs_lr"] == 0.0
        if r["method"] in reg.FM_METHODS:
            assert 1 <= r["epoch"] <= config.epochs and (r["lam_v"] > 0) == bool(r["penalised"])
            assert r["seeds"] == 1 + len(config.seeds)
    folds = reg.load_csv(tmp_path / "regularised-smoke-folds.csv", reg.FOLD_COLUMNS)
    assert len(folds) == 2 * len(reg.FM_METHODS) + 2
    session = prov["sessions"][-1]
    assert session["git"]["commit"] and session["versions"]["numpy"] and session["wall_s"] > 0
    # a second call finds everything done: no new runs, the same files
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")}
    again = reg.run("regularised-smoke", tmp_path)
    assert again["sessions"][-1]["runs_added"] == 0 and len(again["sessions"]) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")} == before
    # an interrupted write: the cut-off run is trained again and comes back identical
    runs_csv = tmp_path / "regularised-smoke.csv"
    full = runs_csv.read_bytes()
    runs_csv.write_bytes(full[: len(full) - 40])
    third = reg.run("regularised-smoke", tmp_path)
    assert third["sessions"][-1]["runs_added"] == 1
    assert sorted(runs_csv.read_bytes().splitlines()) == sorted(full.splitlines())


@needs_data
def test_the_mechanism_smoke_preset_records_every_group(tmp_path):
    reg.run("regularised-mechanism-smoke", tmp_path)
    rows = reg.load_csv(tmp_path / "regularised-mechanism-smoke.csv", reg.MECHANISM_COLUMNS)
    config = reg.PRESETS["regularised-mechanism-smoke"]
    assert len(rows) == len(config.methods) * config.epochs * len(reg.GROUPS)
    assert {r["group"] for r in rows} == set(reg.GROUPS)
    assert all(r["v_rms"] > 0 and r["rows"] > 0 for r in rows)


def test_the_command_line_lists_and_guards_the_regularised_presets(capsys, tmp_path):
    from fmedu.__main__ import main

    assert main(["experiment", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "regularised:" in listed and "regularised-mechanism:" in listed
    code = main(["experiment", "regularised-smoke", "--epochs", "3", "--out", str(tmp_path / "x")])
    assert code == 2 and "runs on the CPU with its own grid" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
