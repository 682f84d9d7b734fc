"""The published prox-point trainer, reproduced faithfully, and its corrected twin.

Used by chapters 06 (erratum E3, cost per step) and 07 (MovieLens) and by the benchmarks.

:class:`PublishedProxTrainer` follows the proximal-point blog post's algorithm operation for operation: per
step it caches the bias sum, the block V[idx] and its column sums; the dual function
q(z) = q1(z) + q2(z) − h*(z) is evaluated with torch operations on that block at every call
(q2 solves S(z) V = V_t by formula (C) and evaluates the objective there); z* is the
midpoint of a golden-section search on [0, 1] with tolerance 1e-8 (40 evaluations of q);
then the biases move by η y z* and the latent vectors are written back.

The write-back is where the two variants differ (erratum E3):

* ``fix_write=False`` (as published): ``V[idx, :].sub_(direction)``. Indexing with an index
  tensor returns a *copy*, so the in-place subtraction changes the copy and the model's V
  never moves; only w0 and w[idx] train. The effective step is
  ``prox_step(..., freeze_V=True, solver="golden")``.
* ``fix_write=True``: ``V[idx, :] = V[idx, :] - direction`` (an indexed assignment, which
  writes through). The step then equals ``prox_step(..., solver="golden")``.
"""

from __future__ import annotations

from torch import Tensor

from ..errors import FMInputError
from ..validation import check_eta, check_label, check_one_sample, check_params
from .dual import GOLDEN_TOL, conjugate, golden_section_max
from .step import check_step_size

__all__ = ["PublishedProxTrainer"]


class PublishedProxTrainer:
    """The published stochastic prox-point trainer for the logistic FM (torch ops per q call).

    Holds its own copies of the parameters (``self.w0`` scalar, ``self.w`` ``(n,)``,
    ``self.V`` ``(n, k)``, any float dtype) and updates them in place with :meth:`step`.
    ``fix_write`` selects the published (lost) or the corrected latent-vector write.
    :meth:`step` validates the sample like :class:`fmedu.prox.ProxTrainer` and refuses a step
    size at or beyond the exact convexity bound (:func:`fmedu.prox.check_step_size`: z* is
    picked from the same q, which is concave only below it) unless ``allow_beyond_bound=True``.
    """

    def __init__(
        self,
        w0: Tensor,
        w: Tensor,
        V: Tensor,
        eta: float,
        *,
        fix_write: bool = False,
        tol: float = GOLDEN_TOL,
        allow_beyond_bound: bool = False,
    ):
        check_params(w0, w, V)
        self.w0 = w0.detach().clone()
        self.w = w.detach().clone()
        self.V = V.detach().clone()
        self.eta = check_eta(eta)
        self.fix_write = bool(fix_write)
        if not (isinstance(tol, int | float) and 0 < tol < 1):
            raise FMInputError(f"tol (golden-section tolerance on z) must be a number in (0, 1), got {tol!r}")
        self.tol = float(tol)
        self.allow_beyond_bound = bool(allow_beyond_bound)

    def params(self) -> tuple[Tensor, Tensor, Tensor]:
        """The current (w0, w, V) — the trainer's own tensors, not copies."""
        return self.w0, self.w, self.V

    # ---- the pieces, as published: cached per step, q evaluated with torch ops -------------

    def _cache(self, idx: Tensor) -> None:
        self.nnz = idx.numel()  # |nz(x)|
        self.bias_sum = self.w[idx].sum().item()  # Σ_idx w_i
        self.V_idx = self.V[idx, :]  # (nnz, k): V_t, a copy
        self.V_idx_sum = self.V_idx.sum(dim=0, keepdim=True)  # (1, k): row sums, broadcast as 11ᵀ V_t

    def q_one(self, y: float, z: float) -> float:
        return -0.5 * self.eta * (1 + self.nnz) * z**2 - y * (self.bias_sum + self.w0.item()) * z

    def direction(self, y: float, z: float) -> Tensor:
        """The bracket (*) of formula (C) times β/(1+β): V_t − S(z)⁻¹ V_t."""
        beta = self.eta * y * z
        return beta / (1 + beta) * (self.V_idx - self.V_idx_sum / (1 + beta * (1 - self.nnz)))

    def q_two(self, y: float, z: float) -> float:
        if z == 0:
            return 0.0
        V_opt = self.V_idx - self.direction(y, z)  # S(z)⁻¹ V_t
        pairs = (V_opt.sum(dim=0).square().sum() - V_opt.square().sum()) / 2
        move = (V_opt - self.V_idx).square().sum()
        return (-z * y * pairs + move / (2 * self.eta)).item()

    def q(self, y: float, z: float) -> float:
        return self.q_one(y, z) + self.q_two(y, z) - conjugate(z)

    # ---- the step ------------------------------------------------------------------------

    def step(self, idx: Tensor, y) -> float:
        """One step on the sample with ones at ``idx`` (distinct) and label ``y`` (±1); returns z*."""
        idx = check_one_sample(idx, self.V.shape[0])
        y = check_label(y)
        check_step_size(self.eta, int(idx.numel()), y, allow_beyond_bound=self.allow_beyond_bound)
        self._cache(idx)
        lo, hi, _ = golden_section_max(lambda z: self.q(y, z), 0.0, 1.0, self.tol)
        z = (lo + hi) / 2
        # biases: an indexed assignment (writes through) and an in-place add, as published
        self.w[idx] = self.w[idx] + self.eta * z * y
        self.w0.add_(self.eta * z * y)
        # latent vectors
        if z != 0:
            if self.fix_write:
                self.V[idx, :] = self.V[idx, :] - self.direction(y, z)  # index_put_: writes through
            else:
                self.V[idx, :].sub_(self.direction(y, z))  # as published: updates a copy, lost
        return z
