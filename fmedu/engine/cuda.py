"""Vectorised torch backend of :mod:`fmedu.engine` (all runs advance one sample per step).

Used by ``fmedu.engine.train_runs(..., device="cuda")`` and the experiments' ``--device cuda``.
Each step processes the t-th sample of every run at once: a gather of the touched rows
``(R, m, k+1)``, the four sample scalars per run, the update of each method, a scatter back.
Prox runs solve q'(z) = 0 by the same safeguarded Newton iteration in t = logit z as the CPU
kernel, vectorised over runs. Adam is applied densely (every parameter, every step: the
torch.optim semantics, and on a GPU the dense update is cheap); SGD and Adagrad touch only the
gathered rows. Padding indices point at an extra all-zero dummy row ``n`` that absorbs writes.

The module imports without a GPU (torch only); :class:`Trainer` also runs on ``device="cpu"``,
which is how its exactness is tested on machines without CUDA .
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import FMInputError
from . import common as engine
from .common import check_data, check_rows, check_runs, check_settings, epoch_permutation, init_params

__all__ = ["CudaTrainer"]


def _softplus_neg(m):
    return torch.nn.functional.softplus(-m)


class CudaTrainer:
    """Same contract as :class:`fmedu.engine.Trainer`; ``device`` is a torch device string."""

    def __init__(
        self,
        runs,
        idx,
        nnz,
        y,
        *,
        n_features: int,
        train_rows=None,
        val_rows=None,
        k: int = 20,
        init_std: float = 0.01,
        allow_beyond_bound: bool = False,
        device: str = "cuda",
    ):
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise FMInputError("device='cuda' but torch sees no CUDA device; use device='cpu'")
        idx, nnz, y = check_data(idx, nnz, y, n_features)
        k, init_std = check_settings(k, init_std)
        N = idx.shape[0]
        self.train_rows = (
            np.arange(N, dtype=np.int64)
            if train_rows is None
            else check_rows(train_rows, N, "train_rows", allow_empty=False)
        )
        self.val_rows = np.zeros(0, np.int64) if val_rows is None else check_rows(val_rows, N, "val_rows")
        self.runs = check_runs(runs, int(nnz[self.train_rows].max()), allow_beyond_bound)
        self.n, self.k = int(n_features), int(k)
        init = [init_params(run.seed, self.n, self.k, init_std) for run in self.runs]
        self.dev = torch.device(device)
        R, n, K1 = len(self.runs), self.n, self.k + 1
        f64: dict[str, Any] = dict(dtype=torch.float64, device=self.dev)
        pad = np.where(idx >= 0, idx, n)  # padding → dummy row n
        self.idx = torch.as_tensor(pad, device=self.dev)
        self.mask = torch.as_tensor(idx >= 0, **f64)
        self.nnz = torch.as_tensor(nnz, **f64)
        self.y = torch.as_tensor(y, **f64)
        self.methods = torch.as_tensor([engine.CODES[r.method] for r in self.runs], device=self.dev)
        self.eta = torch.as_tensor([r.eta for r in self.runs], **f64)
        self.w0 = torch.as_tensor([p[0] for p in init], **f64)
        self.P = torch.zeros((R, n + 1, K1), **f64)
        self.P[:, :n, 0] = torch.as_tensor(np.stack([p[1] for p in init]), **f64)
        self.P[:, :n, 1:] = torch.as_tensor(np.stack([p[2] for p in init]), **f64)
        self.sel = {code: torch.nonzero(self.methods == code).flatten() for code in range(len(engine.METHODS))}
        self.sel = {c: s for c, s in self.sel.items() if s.numel()}
        if engine.ADAGRAD in self.sel:
            self.G = torch.zeros((len(self.sel[engine.ADAGRAD]), n + 1, K1), **f64)
            self.G0 = torch.zeros(len(self.sel[engine.ADAGRAD]), **f64)
        if engine.ADAM in self.sel:
            a = len(self.sel[engine.ADAM])
            self.M, self.S = torch.zeros((a, n + 1, K1), **f64), torch.zeros((a, n + 1, K1), **f64)
            self.M0, self.S0 = torch.zeros(a, **f64), torch.zeros(a, **f64)
        self.t = 0
        self.epochs_done = 0

    def params(self, r: int) -> tuple[float, np.ndarray, np.ndarray]:
        return (
            float(self.w0[r]),
            self.P[r, : self.n, 0].cpu().numpy().copy(),
            self.P[r, : self.n, 1:].cpu().numpy().copy(),
        )

    # ------------------------------------------------------------------ pieces

    def _prox_z(self, B, Psq, Qsq, d, eta, y, y_hat):
        """Vectorised safeguarded Newton in t = logit z (see engine._prox_z)."""
        t = -y * y_hat
        lo = torch.full_like(t, -math.inf)
        hi = torch.full_like(t, math.inf)
        for it in range(100):
            z = torch.sigmoid(t)
            beta = eta * y * z
            E = 1 + beta
            D = 1 - (d - 1) * beta
            num = 1 + (d - 1) * beta * beta
            A = num / (D * D * E * E)
            f = B + (d + 1) * beta + 0.5 * (Qsq * A - Psq / (E * E))
            dA = A * (2 * (d - 1) * beta / num + 2 * (d - 1) / D - 2 / E)
            df = eta * y * ((d + 1) + 0.5 * (Qsq * dA + 2 * Psq / (E * E * E)))
            G = -y * f - t
            small = G.abs() <= 1e-15 * (1 + t.abs() + f.abs() + B.abs())
            pos = G > 0
            lo = torch.where(pos, t, torch.maximum(lo, t + G))
            hi = torch.where(pos, torch.minimum(hi, t + G), t)
            dG = -y * df * z * (1 - z) - 1
            tn = t - G / dG
            inside = (tn > lo) & (tn < hi)
            tn = torch.where(inside, tn, 0.5 * (lo + hi))
            done = small | ((tn - t).abs() <= 1e-15 * (1 + t.abs()))
            tn = torch.where(small, t, tn)
            t = tn
            if it % 8 == 7 and bool(done.all()):
                break
        return torch.sigmoid(t)

    def _step(self, rows):
        R = len(self.runs)
        ar = torch.arange(R, device=self.dev)[:, None]
        I = self.idx[rows]  # (R, m)
        msk = self.mask[rows]  # (R, m)
        y = self.y[rows]
        d = self.nnz[rows]
        G = self.P[ar, I]  # (R, m, K1) gathered rows (dummy row is zero)
        w_part = G[..., 0]
        Vg = G[..., 1:]
        B = self.w0 + w_part.sum(1)
        s = Vg.sum(1)  # (R, k)
        Psq = (Vg * Vg).sum((1, 2))
        Qsq = (s * s).sum(1)
        y_hat = B + 0.5 * (Qsq - Psq)
        loss = _softplus_neg(y * y_hat)
        self.t += 1
        t = self.t
        dl = -y * torch.sigmoid(-y * y_hat)
        for code, sel in self.sel.items():
            r_ = sel[:, None]
            Is, ms = I[sel], msk[sel]
            eta = self.eta[sel]
            if code in (engine.PROX, engine.PROX_PUB):
                z = self._prox_z(B[sel], Psq[sel], Qsq[sel], d[sel], eta, y[sel], y_hat[sel])
                beta = eta * y[sel] * z
                self.w0[sel] += beta
                new = G[sel].clone()
                new[..., 0] += beta[:, None] * ms
                if code == engine.PROX:
                    E = 1 + beta
                    c = beta / (1 - (d[sel] - 1) * beta)
                    newV = (new[..., 1:] + (c[:, None] * s[sel])[:, None, :]) / E[:, None, None]
                    new[..., 1:] = newV * ms[..., None]
                self.P[r_, Is] = new
                continue
            g = torch.empty_like(G[sel])
            g[..., 0] = dl[sel][:, None] * ms
            g[..., 1:] = dl[sel][:, None, None] * (s[sel][:, None, :] - Vg[sel]) * ms[..., None]
            if code == engine.SGD:
                self.w0[sel] -= eta * dl[sel]
                self.P[r_, Is] = G[sel] - eta[:, None, None] * g
            elif code == engine.ADAGRAD:
                self.G0 += dl[sel] ** 2
                self.w0[sel] -= eta * (dl[sel] / (self.G0.sqrt() + engine.ADAGRAD_EPS))
                j = torch.arange(len(sel), device=self.dev)[:, None]
                acc = self.G[j, Is] + g * g
                self.G[j, Is] = acc
                self.P[r_, Is] = G[sel] - eta[:, None, None] * (g / (acc.sqrt() + engine.ADAGRAD_EPS))
            else:  # dense Adam, step t
                b1, b2, eps = engine.ADAM_BETA1, engine.ADAM_BETA2, engine.ADAM_EPS
                bc1, bc2_sqrt = 1 - b1**t, math.sqrt(1 - b2**t)
                self.M0 += (1 - b1) * (dl[sel] - self.M0)
                self.S0.mul_(b2).add_((1 - b2) * dl[sel] ** 2)
                self.w0[sel] -= (eta / bc1) * (self.M0 / (self.S0.sqrt() / bc2_sqrt + eps))
                j = torch.arange(len(sel), device=self.dev)[:, None]
                grad = torch.zeros_like(self.M)
                grad.index_put_((j.expand_as(Is), Is), g, accumulate=True)
                self.M.lerp_(grad, 1 - b1)
                self.S.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                self.P[sel] -= (eta / bc1)[:, None, None] * (self.M / (self.S.sqrt() / bc2_sqrt + eps))
                self.P[sel, self.n] = 0.0  # the dummy row stays zero
        return loss

    def _eval(self, rows, chunk=2048):
        R = len(self.runs)
        total = torch.zeros(R, dtype=torch.float64, device=self.dev)
        ar = torch.arange(R, device=self.dev)[:, None, None]
        for start in range(0, len(rows), chunk):
            rr = torch.as_tensor(rows[start : start + chunk], device=self.dev)
            G = self.P[ar, self.idx[rr][None]]  # (R, c, m, K1)
            B = self.w0[:, None] + G[..., 0].sum(-1)
            s = G[..., 1:].sum(-2)
            y_hat = B + 0.5 * ((s * s).sum(-1) - (G[..., 1:] ** 2).sum((-1, -2)))
            total += _softplus_neg(self.y[rr][None] * y_hat).sum(1)
        return total / max(len(rows), 1)

    def epoch(self) -> dict:
        perm = torch.as_tensor(
            np.stack([epoch_permutation(r.seed, self.epochs_done, self.train_rows) for r in self.runs]), device=self.dev
        )
        acc = torch.zeros(len(self.runs), dtype=torch.float64, device=self.dev)
        for pos in range(perm.shape[1]):
            acc += self._step(perm[:, pos])
        train_loss = (acc / perm.shape[1]).cpu().numpy()
        val = self._eval(self.val_rows).cpu().numpy() if len(self.val_rows) else np.full(len(self.runs), np.nan)
        v_rms = (self.P[:, : self.n, 1:] ** 2).sum((1, 2)).div(self.n).sqrt().cpu().numpy()
        self.epochs_done += 1
        return {"train_loss": train_loss, "val_loss": val, "v_rms": v_rms, "w0": self.w0.cpu().numpy().copy()}
