"""MovieLens 100k's five official folds (u1–u5) as row numbers into :func:`load_movielens`'s ratings.

The archive's ``u{k}.base`` / ``u{k}.test`` (k = 1..5) split the 100,000 ratings 80/20; the five
test sets are disjoint and together cover every rating (the archive's ``mku.sh`` makes them).
Each line is ``user item rating timestamp``; a (user, item) pair occurs once in ``u.data``, so a
line names one row of the encoded data set. :func:`fold_rows` returns the rows of ``u{k}.base``
less a seeded validation part (for every choice: penalty, step size, epoch) and of ``u{k}.test``
(for reporting only). Nothing is written: the data stay where the user keeps them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import DataError, FMInputError
from .data import N_MOVIES, data_root

__all__ = ["FOLDS", "FOLD_SHA256", "VAL_FRACTION", "read_fold_file", "fold_rows"]

FOLDS = (1, 2, 3, 4, 5)
VAL_FRACTION = 0.1  # of each fold's u{k}.base, held out for the choices

# sha256 of the official fold files (as in the archive's SHA256SUMS)
FOLD_SHA256 = {
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
}


def _check_fold(fold) -> int:
    if isinstance(fold, bool) or not isinstance(fold, int | np.integer) or int(fold) not in FOLDS:
        raise FMInputError(f"fold must be one of {FOLDS} (MovieLens' official u1..u5 splits), got {fold!r}")
    return int(fold)


def read_fold_file(folder: Path, name: str) -> np.ndarray:
    """(user, item) pairs (1-based ids) of one fold file, after checking its sha256."""
    path = Path(folder) / name
    if not path.is_file():
        raise DataError(
            f"MovieLens 100k folder {folder} lacks {name}, one of the official folds; use the complete "
            "ml-100k folder (it ships u1.base ... u5.test)"
        )
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != FOLD_SHA256[name]:
        raise DataError(f"{path} is corrupted or a different version (sha256 mismatch); replace it from ml-100k")
    table = np.loadtxt(path, dtype=np.int64, ndmin=2)
    return table[:, :2]


def fold_rows(
    ds, fold: int, *, root=None, val_fraction: float = VAL_FRACTION, val_seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train_rows, val_rows, test_rows) of official fold ``fold`` as row numbers into ``ds``.

    ``ds``: the correct-join data set of :func:`fmedu.movielens.data.load_movielens` (all
    100,000 ratings, in ``u.data`` order). The validation rows are a seeded fraction of
    ``u{fold}.base``: ``default_rng([val_seed, fold])`` permutes its rows and the first
    round(val_fraction · n) are held out. All three are sorted and pairwise disjoint.
    """
    fold = _check_fold(fold)
    if not 0 < val_fraction < 1:
        raise FMInputError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if getattr(ds, "join", "correct") != "correct" or len(ds) != 100_000:
        raise FMInputError(
            "the official folds index the correct join's 100,000 ratings; load_movielens(join='correct')"
        )
    folder = data_root(root) if root is not None or ds.root is None else Path(ds.root)
    key = (ds.user + 1) * (N_MOVIES + 1) + (ds.item + 1)
    order = np.argsort(key)
    sorted_key = key[order]

    def rows_of(name: str) -> np.ndarray:
        pairs = read_fold_file(folder, name)
        wanted = pairs[:, 0] * (N_MOVIES + 1) + pairs[:, 1]
        pos = np.searchsorted(sorted_key, wanted)
        pos = np.minimum(pos, len(sorted_key) - 1)
        if not np.array_equal(sorted_key[pos], wanted):
            raise DataError(f"{folder / name} names ratings that u.data does not hold")
        return order[pos]

    base, test = rows_of(f"u{fold}.base"), rows_of(f"u{fold}.test")
    if np.intersect1d(base, test).size or len(np.unique(base)) != len(base) or len(np.unique(test)) != len(test):
        raise DataError(f"u{fold}.base and u{fold}.test overlap or repeat ratings")
    base = np.sort(base)
    rng = np.random.default_rng([int(val_seed), fold])
    perm = rng.permutation(len(base))
    n_val = int(round(val_fraction * len(base)))
    return np.sort(base[perm[n_val:]]), np.sort(base[perm[:n_val]]), np.sort(test)
