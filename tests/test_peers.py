"""Held-out metrics and the peer comparison of chapter 07 (logistic regression, Bayesian FM)."""

import importlib.util
import json
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fmedu import logistic_loss
from fmedu.errors import FMInputError, ResultsError
from fmedu.movielens import metrics, peers

ROOT = Path(__file__).resolve().parents[1]
HAVE_PEERS = all(importlib.util.find_spec(m) is not None for m in ("sklearn", "myfm"))
needs_peers = pytest.mark.skipif(
    not HAVE_PEERS, reason="the optional 'peers' extra (scikit-learn, myfm) is not installed: pip install -e '.[peers]'"
)


def _data_folder() -> Path:
    folder = os.environ.get("FMEDU_DATA")
    if folder and (Path(folder) / "u.data").is_file():
        return Path(folder)
    if os.environ.get("CI"):
        pytest.fail("FMEDU_DATA must point at ml-100k in CI (.ci/run exports ../shared/data/ml-100k)")
    pytest.skip("MovieLens 100k not available: set FMEDU_DATA")


# --------------------------------------------------------------------------- metrics


def test_log_loss_is_the_mean_logistic_loss_of_the_score():
    rng = np.random.default_rng(0)
    score = rng.normal(0, 3, 200)
    y = np.where(rng.random(200) < 0.3, 1.0, -1.0)
    p = 1 / (1 + np.exp(-score))
    import torch

    engine_loss = float(logistic_loss(torch.from_numpy(score), torch.from_numpy(y)).mean())
    assert metrics.log_loss(y, p) == pytest.approx(engine_loss, rel=1e-12)
    assert metrics.log_loss((y > 0).astype(int), p) == metrics.log_loss(y, p)  # {0,1} and {-1,+1} labels


def test_log_loss_clips_certain_mistakes_and_checks_input():
    assert metrics.log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(metrics.PROBABILITY_CLIP), rel=1e-4)
    assert metrics.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    with pytest.raises(FMInputError, match="probabilities"):
        metrics.log_loss([1, 0], [2.0, 0.5])
    with pytest.raises(FMInputError, match="labels"):
        metrics.log_loss([2, 0], [0.5, 0.5])
    with pytest.raises(FMInputError, match="same length"):
        metrics.log_loss([1, 0, 1], [0.5, 0.5])


def test_auc_exact_small_cases():
    # 2 positives, 3 negatives: pairs ranked correctly / 6, ties count 1/2
    y = [1, 0, 1, 0, 0]
    assert Fraction(metrics.roc_auc(y, [0.9, 0.1, 0.8, 0.2, 0.3])).limit_denominator(100) == 1
    assert Fraction(metrics.roc_auc(y, [0.1, 0.9, 0.2, 0.8, 0.7])).limit_denominator(100) == 0
    assert Fraction(metrics.roc_auc(y, [0.5] * 5)).limit_denominator(100) == Fraction(1, 2)
    # positive scores 0.4 and 0.8 against negatives 0.1, 0.4, 0.9: (1 + 1/2 + 0) + (1 + 1 + 0) = 3.5 of 6
    assert Fraction(metrics.roc_auc(y, [0.4, 0.1, 0.8, 0.4, 0.9])).limit_denominator(100) == Fraction(7, 12)
    with pytest.raises(FMInputError, match="at least one positive"):
        metrics.roc_auc([1, 1], [0.2, 0.3])


def test_auc_equals_the_pair_count():
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.25
    score = np.round(rng.normal(size=300) + y, 1)  # rounded: many ties
    pos, neg = score[y], score[~y]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert metrics.roc_auc(y.astype(int), score) == pytest.approx(pairs / (len(pos) * len(neg)), abs=1e-15)


@needs_peers
def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(2)
    y = (rng.random(500) < 0.2).astype(int)
    p = np.clip(rng.random(500) * 0.5 + 0.3 * y, 0, 1)
    assert metrics.log_loss(y, p) == pytest.approx(log_loss(y, p), rel=1e-12)
    assert metrics.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), rel=1e-12)


# --------------------------------------------------------------------------- features and split


def test_one_hot_matrix_has_the_engine_features():
    idx = np.array([[0, 3, -1], [1, 2, 4]])
    X = peers.one_hot_matrix(idx, np.array([2, 3]), 5).toarray()
    assert X.tolist() == [[1, 0, 0, 1, 0], [0, 1, 1, 0, 1]]
    assert peers.one_hot_matrix(idx, np.array([2, 3]), 5, rows=[1]).toarray().tolist() == [[0, 1, 1, 0, 1]]
    with pytest.raises(FMInputError, match="nnz"):
        peers.one_hot_matrix(idx, np.array([3, 3]), 5)


def test_peers_use_the_experiment_split():
    _data_folder()
    from fmedu.movielens import experiments

    data, splits = peers.experiment_split()
    (variant,) = experiments.PRESETS[peers.SPLIT_PRESET].variants
    idx, nnz, y, n_features, *rows = experiments._load_variant(variant)
    assert np.array_equal(data["idx"], idx) and np.array_equal(data["y"], y) and data["n_features"] == n_features
    assert np.array_equal(splits["train"], rows[0]) and np.array_equal(splits["validation"], rows[1])
    parts = list(splits.values())
    assert sum(len(p) for p in parts) == len(y) == 100_000
    assert len(np.unique(np.concatenate(parts))) == len(y)  # disjoint, covering


# --------------------------------------------------------------------------- fits


@needs_peers
def test_run_peers_small(tmp_path):
    _data_folder()
    config = peers.PeerConfig(
        lr_C=(1.0,), fm_ranks=(0, 3), fm_seeds=(0,), fm_iter=12, fm_kept=6, blog_attempts=(), subset=2000
    )
    prov = peers.run_peers(tmp_path, config, progress=False)
    rows = peers.load_peers(tmp_path / "peers.csv")
    splits = sorted({r["split"] for r in rows})
    assert "train" in splits and "validation" in splits
    assert [(f["model"], f["setting"]) for f in prov["fits"]] == [
        ("base rate", prov["fits"][0]["setting"]),
        ("logistic regression", "C=1"),
        ("Bayesian FM (myFM)", "rank=0"),
        ("Bayesian FM (myFM)", "rank=3"),
    ]
    assert len(rows) == 4 * len(splits) and all(r["n"] == 2000 for r in rows)
    base = [r for r in rows if r["model"] == "base rate"]
    assert all(r["auc"] == 0.5 for r in base)  # a constant score ranks nothing
    lr_train = next(r for r in rows if r["model"] == "logistic regression" and r["split"] == "train")
    assert lr_train["log_loss"] < next(r for r in base if r["split"] == "train")["log_loss"]
    saved = json.loads((tmp_path / "peers.json").read_text())
    assert saved["versions"]["myfm"] and saved["versions"]["scikit-learn"] and saved["wall_s"] > 0
    assert saved["split_preset"] == "stability-full" and saved["config"]["subset"] == 2000
    # the same seed gives the same numbers
    again = peers.run_peers(tmp_path / "again", config, progress=False)
    assert again["fits"][-1]["model"] == "Bayesian FM (myFM)"
    rows2 = peers.load_peers(tmp_path / "again" / "peers.csv")
    assert [r["log_loss"] for r in rows2] == [r["log_loss"] for r in rows]


def test_missing_results_file(tmp_path):
    with pytest.raises(ResultsError, match="python -m fmedu peers"):
        peers.load_peers(tmp_path / "peers.csv")


def test_committed_peer_results_cover_the_experiment_split():
    rows = peers.load_peers(ROOT / "results" / "peers.csv")
    prov = json.loads((ROOT / "results" / "peers.json").read_text())
    sizes = prov["split_sizes"]
    assert sum(sizes.values()) == 100_000 and prov["config"]["subset"] is None
    for r in rows:
        assert r["n"] == sizes[r["split"]]
        assert 0 < r["log_loss"] < 1 and 0.5 <= r["auc"] < 1
    models = {(r["model"], r["setting"]) for r in rows}
    assert ("logistic regression", "C=1") in models and ("Bayesian FM (myFM)", "rank=20") in models
    # the refits of the blog's methods are the runs the sweep recorded
    refits = prov["blog_refits"]
    assert {r["method"] for r in refits} == {"prox", "prox-published", "sgd", "adagrad", "adam"}
    assert all(r["matches_results"] and abs(r["refit_val_loss"] - r["choose"]) <= 1e-9 for r in refits)


def test_a_refit_is_the_recorded_run():
    _data_folder()
    from fmedu.movielens import analysis

    data, splits = peers.experiment_split()
    sweep = analysis.results("stability-full")
    choice = next(c for c in peers.blog_method_choices(sweep, (1,)) if c["method"] == "adagrad")
    predict, val_loss = peers.refit_blog_method(data, splits, "adagrad", choice["eta"], 1, choice["epoch"])
    assert val_loss == pytest.approx(choice["choose"], abs=1e-9)
    rows = splits["validation"]
    assert metrics.log_loss(data["y"][rows], predict(rows)) == pytest.approx(val_loss, abs=1e-9)
