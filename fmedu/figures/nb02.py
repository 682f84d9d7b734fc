"""Notebook 02 (the O(nk) gradient): sympy derivation, errata E1 and E6, cost and training figures.

Figures: ``02_gradient_cost`` (closed-form gradient against n and against autograd; the
sparse form against nnz) and ``02_training_curves`` (Adam on data from a planted FM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from .. import cost, grad, testing
from .. import train as training
from ..registry import figure, save_png, write_csv

F64 = torch.float64

# --------------------------------------------------------------------------- three-way checks


def three_way_sweep(trials: int = 24, seed: int = 0) -> list[dict]:
    """Three-way checks (closed form, autograd, central differences) on random shapes.

    For each loss and for dense, sparse real-valued and one-hot (multi-hot) batches; n ≠ k,
    k ≥ 3. Hinge trials whose margins sit too close to the kink for a ±h step are redrawn.
    One row per trial with the errors and the booleans of :func:`fmedu.grad.three_way_check`.
    """
    gen = torch.Generator().manual_seed(seed)
    rows = []
    kinds = ("dense", "sparse", "one-hot")
    for trial in range(trials):
        loss = ("squared", "logistic", "hinge")[trial % 3]
        kind = kinds[(trial // 3) % 3]
        while True:
            n = int(torch.randint(4, 25, (), generator=gen))
            k = int(torch.randint(3, 7, (), generator=gen))
            if n == k:
                continue
            batch = int(torch.randint(1, 9, (), generator=gen))
            density = 1.0 if kind == "dense" else 0.3
            x, y, w0, w, V = testing.random_problem(n, k, batch, loss, gen, density=density, one_hot=kind == "one-hot")
            kw = {"x": x} if kind == "dense" else dict(zip(("idx", "val"), _to_sparse(x)))
            if loss != "hinge" or grad.kink_safe_step(y, w0, w, V, **kw):
                break
        result = grad.three_way_check(y, w0, w, V, loss, **kw)
        rows.append({"loss": loss, "kind": kind, "n": n, "k": k, "batch": batch, **result})
    return rows


def _to_sparse(x):
    from ..model import dense_to_sparse

    return dense_to_sparse(x)


# --------------------------------------------------------------------------- cost

DENSE_NS = (256, 512, 1024, 2048, 4096, 8192)
SPARSE_NNZ = (4, 8, 16, 32, 64, 128)
SPARSE_NS = (1_000, 1_000_000)
SPARSE_FIT_MIN = 16  # below it the fixed cost per call dominates


def measure_gradient_cost(
    ns=DENSE_NS, k: int = 16, batch: int = 64, per_sample_batch: int = 8, seed: int = 0
) -> list[dict]:
    """Seconds per sample on dense data for three computations.

    The closed-form batch-loss gradient (``batch_loss_grad``) and autograd of the same batch
    loss, each on a batch of ``batch``; and the per-sample gradients ``predict_grad`` on a
    batch of ``per_sample_batch`` (they write n·k numbers per sample; a small batch keeps that
    output from measuring the memory system rather than the arithmetic).
    """
    rows = []
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        x, y, w0, w, V = testing.random_problem(n, k, batch, "squared", gen)
        xs = x[:per_sample_batch]
        forms = {
            "closed form, batch loss": (batch, lambda: grad.batch_loss_grad(x, y, w0, w, V, "squared", check=False)),
            "autograd, batch loss": (batch, lambda: grad.autograd_batch_grad(y, w0, w, V, "squared", x=x)),
            "closed form, per-sample ∂ŷ/∂θ": (per_sample_batch, lambda: grad.predict_grad(xs, w0, w, V, check=False)),
        }
        for form, (size, fn) in forms.items():
            rows.append({"panel": "dense", "n": n, "nnz": n, "form": form, "seconds": cost.best_time(fn) / size})
    return rows


def measure_sparse_gradient_cost(
    nnzs=SPARSE_NNZ, ns=SPARSE_NS, k: int = 16, batch: int = 256, seed: int = 0
) -> list[dict]:
    """Seconds per sample of ``predict_grad_sparse`` (timed on a padded index batch) for each (n, nnz)."""
    rows = []
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        w0, w = torch.zeros((), dtype=F64), torch.randn(n, dtype=F64, generator=gen)
        V = torch.randn(n, k, dtype=F64, generator=gen)
        for m in nnzs:
            start = torch.randint(0, n, (batch, 1), generator=gen)
            idx = (start + torch.arange(m) * (n // m)) % n  # m distinct indices per sample
            t = cost.best_time(lambda: grad.predict_grad_sparse(idx, w0, w, V, check=False)) / batch
            rows.append({"panel": "sparse", "n": n, "nnz": m, "form": f"sparse closed form, n = {n:,}", "seconds": t})
    return rows


def slopes(rows: list[dict], x_key: str = "n", min_x: int = 0) -> dict[str, float]:
    """Log-log slope of seconds against ``x_key`` for each form (points with x ≥ ``min_x``)."""
    out = {}
    for form in dict.fromkeys(r["form"] for r in rows):
        sel = [r for r in rows if r["form"] == form and r[x_key] >= min_x]
        out[form] = cost.fit_loglog_slope([r[x_key] for r in sel], [r["seconds"] for r in sel])
    return out


def autograd_ratios(rows: list[dict]) -> dict[int, float]:
    """Autograd time / closed-form batch-loss time at each n."""
    t = {(r["n"], r["form"]): r["seconds"] for r in rows}
    return {
        n: t[(n, "autograd, batch loss")] / t[(n, "closed form, batch loss")] for n in sorted({r["n"] for r in rows})
    }


def plot_gradient_cost(dense_rows: list[dict], sparse_rows: list[dict]) -> Figure:
    """Left: seconds per sample against n (dense); right: the sparse closed form against nnz."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (form, slope), marker in zip(slopes(dense_rows).items(), "os^"):
        sel = [r for r in dense_rows if r["form"] == form]
        left.loglog(
            [r["n"] for r in sel], [r["seconds"] for r in sel], marker=marker, label=f"{form}: slope {slope:.2f}"
        )
    ns = sorted({r["n"] for r in dense_rows})
    left.xaxis.set_minor_formatter(NullFormatter())
    left.set_xticks(ns, [str(n) for n in ns])
    left.set_xlabel("n (features)")
    left.set_ylabel("seconds per sample (k = 16)")
    left.set_title("Dense gradient cost against n")
    for (form, slope), marker in zip(slopes(sparse_rows, "nnz", SPARSE_FIT_MIN).items(), "o^"):
        sel = [r for r in sparse_rows if r["form"] == form]
        right.loglog(
            [r["nnz"] for r in sel],
            [r["seconds"] for r in sel],
            marker=marker,
            label=f"{form}: slope {slope:.2f} (nnz ≥ {SPARSE_FIT_MIN})",
        )
    right.set_xlabel("nnz (non-zeros per sample)")
    right.set_ylabel("seconds per sample (k = 16)")
    right.set_title("Sparse gradient: cost follows nnz, not n")
    for ax in (left, right):
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("02_gradient_cost")
def gradient_cost(out_dir: Path) -> list[Path]:
    dense_rows, sparse_rows = measure_gradient_cost(), measure_sparse_gradient_cost()
    return [
        write_csv(out_dir / "02_gradient_cost.csv", dense_rows + sparse_rows),
        save_png(plot_gradient_cost(dense_rows, sparse_rows), out_dir / "02_gradient_cost.png"),
    ]


# --------------------------------------------------------------------------- training

TRAINING: dict[str, dict[str, Any]] = {
    # task: (strength of the planted FM, training samples, epochs, batch size, lr)
    "regression": dict(strength=1.0, N=4000, epochs=60, batch_size=128, lr=0.005),
    "classification": dict(strength=4.0, N=16000, epochs=40, batch_size=256, lr=0.005),
}
PLANTED_N, PLANTED_K, N_VAL = 20, 3, 2000


def planted_experiment(task: str, *, seed: int = 1) -> dict:
    """Train on data from a planted FM (n = 20, k = 3) and compare with the planted model.

    Returns the planted parameters, the :class:`fmedu.train.TrainResult`, the validation set, the planted model's
    validation loss (and accuracy), the learned model's, and the relative off-diagonal error
    of V Vᵀ (:func:`fmedu.train.offdiagonal_relative_error`).
    """
    cfg = TRAINING[task]
    loss = training.TASK_LOSSES[task][0]
    planted = training.planted_fm(PLANTED_N, PLANTED_K, strength=cfg["strength"], seed=seed)
    X, y = training.planted_data(*planted, cfg["N"], task=task, seed=seed + 1)
    X_val, y_val = training.planted_data(*planted, N_VAL, task=task, seed=seed + 2)
    result = training.train(
        X,
        y,
        X_val,
        y_val,
        task=task,
        k=PLANTED_K,
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        seed=seed,
    )
    out = {
        "task": task,
        "loss": loss,
        "planted": planted,
        "result": result,
        "X_val": X_val,
        "y_val": y_val,
        "planted_val_loss": training.evaluate(X_val, y_val, *planted, loss),
        "learned_val_loss": result.history[-1]["val_loss"],
        "offdiag_error": training.offdiagonal_relative_error(result.V, planted[2]),
    }
    if task == "classification":
        out["planted_val_accuracy"] = float((training.predict_labels(X_val, *planted, task) == y_val).double().mean())
        out["learned_val_accuracy"] = result.history[-1]["val_accuracy"]
    return out


def training_rows(experiments: list[dict]) -> list[dict]:
    """CSV rows: one per (task, epoch) with the losses and the planted model's validation loss."""
    rows = []
    for e in experiments:
        for h in e["result"].history:
            rows.append(
                {
                    "task": e["task"],
                    "loss": e["loss"],
                    "epoch": h["epoch"],
                    "train_loss": h["train_loss"],
                    "val_loss": h["val_loss"],
                    "val_accuracy": h.get("val_accuracy", ""),
                    "planted_val_loss": e["planted_val_loss"],
                }
            )
    return rows


def plot_training_curves(experiments: list[dict]) -> Figure:
    """Training and validation loss per epoch for each task, the planted model's validation loss dashed."""
    fig, axes = plt.subplots(1, len(experiments), figsize=(5 * len(experiments), 4))
    for ax, e in zip(axes, experiments):
        hist = e["result"].history
        epochs = [h["epoch"] for h in hist]
        ax.semilogy(epochs, [h["train_loss"] for h in hist], label="training loss")
        ax.semilogy(epochs, [h["val_loss"] for h in hist], label="validation loss")
        ax.axhline(e["planted_val_loss"], color="k", linestyle="--", label="planted FM, validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"mean {e['loss']} loss")
        ax.set_title(f"{e['task']}: Adam on closed-form gradients")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("02_training_curves")
def training_curves(out_dir: Path) -> list[Path]:
    experiments = [planted_experiment(task) for task in TRAINING]
    return [
        write_csv(out_dir / "02_training_curves.csv", training_rows(experiments)),
        save_png(plot_training_curves(experiments), out_dir / "02_training_curves.png"),
    ]
