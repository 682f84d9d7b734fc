"""The named MovieLens experiments: step-size grids, variants and presets (chapter 07).

``python -m fmedu experiment NAME`` runs ``PRESETS[NAME]`` (:mod:`fmedu.movielens.experiments`);
``python -m fmedu experiment --list`` prints them. A preset is a list of variants (a data
set-up: join, subset, held-out split) and, for each, the methods with their step sizes and the
number of attempts (seeds 0, 1, ...).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "PUBLISHED_ETA",
    "ADAM_DEFAULT_LR",
    "SPLIT",
    "SPLIT_SEED",
    "ALL_METHODS",
    "step_sizes",
    "Variant",
    "Preset",
    "PRESETS",
]

PUBLISHED_ETA = 1.0 / 23.0  # 1/(2·max nnz + 1), the published prox step size
ADAM_DEFAULT_LR = 1e-3
SPLIT = (0.8, 0.1, 0.1)  # train / validation / test fractions of a held-out variant's ratings
SPLIT_SEED = 0


def step_sizes(method: str, count: int = 10) -> list[float]:
    """The sweep's geometric step sizes: 1e-5 … 1/23 for prox, 1e-5 … 1e-1 otherwise.

    The i-th is the double nearest to 1e-5·(top/1e-5)^(i/(count − 1)), computed in 40-digit
    decimal arithmetic, so the grid is the same on every machine: ``np.geomspace`` rounds the
    last bit differently where numpy's power function is vectorised for the CPU (AVX-512), and a
    step size one ulp off changes a run's results in their last digits.
    """
    if count < 2:
        raise ValueError(f"step_sizes needs count >= 2 (both ends of the grid), got {count}")
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        lo = decimal.Decimal("1e-5")
        top = decimal.Decimal(1) / 23 if method.startswith("prox") else decimal.Decimal("0.1")
        return [float(lo * (top / lo) ** (decimal.Decimal(i) / (count - 1))) for i in range(count)]


@dataclass(frozen=True)
class Variant:
    """One data set-up and the runs trained on it.

    ``join``: "correct" or "published" (erratum E4); ``subset``: use the first ``subset``
    ratings (None: all); ``held_out``: split them 80/10/10 into fixed train, validation and test
    rows (``SPLIT``), else train on all of them; ``etas``: method → step sizes; ``attempts``:
    seeds 0 … attempts−1.
    """

    name: str
    join: str
    etas: dict
    attempts: int
    subset: int | None = None
    held_out: bool = True


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    epochs: int
    variants: tuple
    k: int = 20

    def runs(self) -> Iterator[tuple[Variant, str, int, float, int]]:
        """(variant, method, eta_index, eta, attempt) of every run, chunk-major order."""
        for v in self.variants:
            for method, etas in v.etas.items():
                for j, eta in enumerate(etas):
                    for a in range(v.attempts):
                        yield v, method, j, eta, a


def _sweep(methods, attempts):
    return {m: step_sizes(m) for m in methods}


ALL_METHODS = ("prox", "prox-published", "sgd", "adagrad", "adam")

PRESETS = {
    "smoke": Preset(
        "smoke",
        "CI smoke test: first 2,000 ratings, every method, 2 step sizes, 2 attempts, 2 epochs",
        epochs=2,
        variants=(
            Variant("smoke", "correct", {m: step_sizes(m, 10)[-3:-1] for m in ALL_METHODS}, attempts=2, subset=2000),
        ),
    ),
    "published-10epoch": Preset(
        "published-10epoch",
        "prox at eta=1/23 and Adam at default settings, 10 epochs, all ratings: as published "
        "(published join E4, latent vectors frozen E3, no held-out data) and corrected "
        "(correct join, exact prox step, 10% validation and 10% test held out)",
        epochs=10,
        variants=(
            Variant(
                "published",
                "published",
                {"prox-published": [PUBLISHED_ETA], "adam": [ADAM_DEFAULT_LR]},
                attempts=3,
                held_out=False,
            ),
            Variant(
                "corrected",
                "correct",
                {"prox": [PUBLISHED_ETA], "adam": [ADAM_DEFAULT_LR]},
                attempts=3,
                held_out=True,
            ),
        ),
    ),
    "stability-published": Preset(
        "stability-published",
        "the published sweep: first 1,000 ratings (published join), 10 step sizes, 10 attempts, "
        "10 epochs, training loss; every method",
        epochs=10,
        variants=(
            Variant("published-subset", "published", _sweep(ALL_METHODS, 10), attempts=10, subset=1000, held_out=False),
        ),
    ),
    "stability-full": Preset(
        "stability-full",
        "all 100,000 ratings (correct join, 80/10/10 train/validation/test), 10 step sizes, 10 attempts, "
        "20 epochs, training, validation and test loss; every method",
        epochs=20,
        variants=(Variant("full", "correct", _sweep(ALL_METHODS, 10), attempts=10),),
    ),
    "long": Preset(
        "long",
        "exact prox for 50 epochs on all ratings (correct join, 80/10/10 train/validation/test), "
        "10 step sizes, 10 attempts",
        epochs=50,
        variants=(Variant("full", "correct", {"prox": step_sizes("prox")}, attempts=10),),
    ),
}
