"""Held-out metrics of a probabilistic classifier: mean log-loss and ROC AUC (chapter 07).

Both take labels in {0, 1} or {−1, +1} and work with plain numpy, so chapter 07 can use them
without the optional ``peers`` extra. The peer comparison (:mod:`fmedu.movielens.peers`)
scores every model with these two functions, so all its numbers are computed the same way.
"""

from __future__ import annotations

import numpy as np

from ..errors import FMInputError

__all__ = ["PROBABILITY_CLIP", "log_loss", "roc_auc"]

# Probabilities are clipped to [c, 1 − c] before the logarithm (as common libraries do), so a
# single overconfident wrong prediction costs at most −log(c) ≈ 34.5 instead of infinity.
PROBABILITY_CLIP = 1e-15


def _labels01(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    values = set(np.unique(y).tolist())
    if values <= {0.0, 1.0}:
        return y
    if values <= {-1.0, 1.0}:
        return (y > 0).astype(np.float64)
    raise FMInputError(f"labels must be in {{0, 1}} or {{-1, +1}}, got values {sorted(values)[:5]}")


def log_loss(y, p) -> float:
    """Mean logistic loss −[y log p + (1 − y) log(1 − p)] of probabilities ``p`` of the positive class.

    For a model with score ŷ and p = 1/(1 + e^(−ŷ)) this equals the mean of log(1 + e^(−y ŷ)) with
    y ∈ {−1, +1}, the loss the engine records (up to the clipping of p)."""
    y = _labels01(y)
    p = np.asarray(p, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise FMInputError(f"y and p must have the same length, got {len(y)} and {len(p)}")
    if not np.all((p >= 0) & (p <= 1)):
        raise FMInputError("p must hold probabilities in [0, 1]; apply the sigmoid to scores first")
    p = np.clip(p, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def roc_auc(y, score) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting one half (Mann–Whitney U / (P·N), from average ranks)."""
    from scipy.stats import rankdata

    y = _labels01(y)
    score = np.asarray(score, dtype=np.float64).ravel()
    if score.shape != y.shape:
        raise FMInputError(f"y and score must have the same length, got {len(y)} and {len(score)}")
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        raise FMInputError("AUC needs at least one positive and one negative label")
    ranks = rankdata(score)  # average ranks for ties
    u = ranks[y == 1].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))
