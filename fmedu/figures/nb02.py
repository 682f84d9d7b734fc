"""Chapter 02 (the O(nk) gradient): the three-way sweep, the cost and training figures.

Figures:

* ``02_gradient_cost`` (a timing; timings vary from machine to machine): seconds per sample
  of the closed-form gradient, of autograd and of the per-sample gradients against n
  (log-log, slope-1 reference), and of the sparse per-sample gradient against nnz at
  n = 10³ and 10⁶ (linear axes, fitted lines a + b·nnz). The chapter reads the committed
  CSV (:func:`committed_cost`) and draws it with the same function as the PNG.
* ``02_touched_rows`` (a conceptual diagram): which entries of V one sample's gradient
  touches (the rows of its non-zero features) and the column sums s_f every row reuses.
* ``02_training_curves``: Adam on the closed-form gradients, on data from a planted FM. It
  is deterministic: the chapter runs the regression loop on the page and checks its losses
  against the committed CSV (:func:`history_matches_committed`); each panel puts every loss
  beside the planted FM's loss on the same set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from torch import Tensor

from .. import cost, grad, testing
from .. import train as training
from ..model import dense_to_sparse
from ..registry import figure, read_csv, save_png, write_csv
from . import nb01

F64 = torch.float64

# --------------------------------------------------------------------------- three-way checks


def three_way_sweep(trials: int = 36, seed: int = 0) -> list[dict]:
    """Three-way checks (closed form, autograd, central differences) on random shapes.

    For each loss and for dense, sparse real-valued and one-hot (multi-hot) batches; n ≠ k,
    k ≥ 3. Hinge trials whose margins sit too close to the kink for a ±h step are redrawn.
    One row per trial: shape, and the largest ratios observed error / tolerance of
    :func:`fmedu.grad.three_way` (tolerances from the rounding model, no safety factor).
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
            kw: dict[str, Any] = {"x": x} if kind == "dense" else dict(zip(("idx", "val"), dense_to_sparse(x)))
            if loss != "hinge" or grad.kink_safe_step(y, w0, w, V, **kw):
                break
        result = grad.three_way(y, w0, w, V, loss, **kw)
        rows.append(
            {
                "loss": loss,
                "kind": kind,
                "n": n,
                "k": k,
                "batch": batch,
                "ratio_autograd": result["ratio_autograd"],
                "ratio_fd": result["ratio_fd"],
            }
        )
    return rows


# --------------------------------------------------------------------------- the conceptual diagram

DIAGRAM_N, DIAGRAM_K, DIAGRAM_NONZEROS = 8, 3, (1, 4, 6)


def touched_cells(n: int = DIAGRAM_N, k: int = DIAGRAM_K, nonzeros=DIAGRAM_NONZEROS) -> list[dict]:
    """The cells of the diagram ``02_touched_rows``: one row per (panel, i, f) with ``touched``
    (1 when sample x's gradient can be non-zero there: x_i ≠ 0) and the text drawn in the cell."""
    rows = []
    for i in range(n):
        on = i in nonzeros
        rows.append({"panel": "x", "i": i + 1, "f": 0, "touched": int(on), "text": f"$x_{i + 1}$" if on else "0"})
        for f in range(k):
            rows.append({"panel": "V", "i": i + 1, "f": f + 1, "touched": int(on), "text": f"$v_{{{i + 1},{f + 1}}}$"})
            grad_text = f"$x_{i + 1}s_{f + 1} - v_{{{i + 1},{f + 1}}}x_{i + 1}^2$" if on else "0"
            rows.append({"panel": "dV", "i": i + 1, "f": f + 1, "touched": int(on), "text": grad_text})
    for f in range(k):
        rows.append({"panel": "s", "i": 0, "f": f + 1, "touched": 1, "text": f"$s_{f + 1}$"})
    return rows


def plot_touched_rows(cells: list[dict]) -> Figure:
    """x, V (with s = xV below it) and ∂ŷ/∂V side by side: the rows of the non-zero features are coloured."""
    n = max(c["i"] for c in cells)
    k = max(c["f"] for c in cells)
    fig, ax = plt.subplots(figsize=(11, 5.4))
    hot, cold, shared = "#f4a261", "#f1f1f1", "#90c2e7"
    x0, v0, g0 = 0.0, 2.2, 2.2 + k + 2.2  # left edges of the three panels
    width_g = 2.6  # the gradient cells hold a formula

    def box(left, top, w, text, colour, size=9):
        ax.add_patch(plt.Rectangle((left, -top - 1), w, 1, facecolor=colour, edgecolor="0.4", lw=0.8))
        ax.text(left + w / 2, -top - 0.5, text, ha="center", va="center", fontsize=size)

    for c in cells:
        colour = hot if c["touched"] else cold
        if c["panel"] == "x":
            box(x0, c["i"] - 1, 1, c["text"], colour)
        elif c["panel"] == "V":
            box(v0 + c["f"] - 1, c["i"] - 1, 1, c["text"], colour, 8)
        elif c["panel"] == "dV":
            box(g0 + (c["f"] - 1) * width_g, c["i"] - 1, width_g, c["text"], colour, 8.5)
        else:
            box(v0 + c["f"] - 1, n + 0.6, 1, c["text"], shared)
    ax.text(x0 + 0.5, 0.35, "x", ha="center", fontsize=11)
    ax.text(v0 + k / 2, 0.35, "V  (n × k)", ha="center", fontsize=11)
    ax.text(g0 + k * width_g / 2, 0.35, r"$\partial\hat y/\partial V$  (n × k)", ha="center", fontsize=11)
    ax.text(v0 - 0.15, -n - 1.1, "s = xV:", ha="right", va="center", fontsize=10)
    ax.text(
        v0 + k / 2,
        -n - 2.35,
        "one sum per column, $s_f = \\sum_j v_{jf}x_j$,\ncomputed once, shared by every row",
        ha="center",
        va="top",
        fontsize=9,
    )
    for f in range(k):  # s_f feeds column f of the gradient
        ax.annotate(
            "",
            xy=(g0 + (f + 0.5) * width_g, -n - 0.05),
            xytext=(v0 + f + 0.5, -n - 0.55),
            arrowprops=dict(arrowstyle="->", color="#2a6f97", lw=1, connectionstyle="arc3,rad=-0.2"),
        )
    ax.text(
        g0 + k * width_g + 0.2,
        -n / 2,
        "rows of features\nwith $x_i = 0$:\ngradient 0",
        va="center",
        fontsize=9,
    )
    ax.set_xlim(-0.3, g0 + k * width_g + 2.3)
    ax.set_ylim(-n - 3.6, 1.0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        "One sample's gradient touches only the rows of its non-zero features;\n"
        "every row reuses the same k column sums $s_f$",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


@figure("02_touched_rows")
def touched_rows(out_dir: Path) -> list[Path]:
    cells = touched_cells()
    return [
        write_csv(out_dir / "02_touched_rows.csv", cells),
        save_png(plot_touched_rows(cells), out_dir / "02_touched_rows.png"),
    ]


# --------------------------------------------------------------------------- cost

DENSE_NS = (256, 512, 1024, 2048, 4096, 8192)
DENSE_K, DENSE_BATCH, PER_SAMPLE_BATCH = 16, 64, 8
# small batches: per-call temporaries stay below ~0.5 MB, so no size pays for fresh memory
SPARSE_NNZ = (4, 8, 16, 32, 64, 128)
SPARSE_NS = (1_000, 1_000_000)
SPARSE_K, SPARSE_BATCH = 16, 32
CLOSED, AUTOGRAD, PER_SAMPLE = "closed form, batch loss", "autograd, batch loss", "closed form, per-sample ∂ŷ/∂θ"


def measure_gradient_cost(
    ns=DENSE_NS, k: int = DENSE_K, batch: int = DENSE_BATCH, per_sample_batch: int = PER_SAMPLE_BATCH, seed: int = 0
) -> list[dict]:
    """CPU seconds per sample on dense data for three computations.

    The closed-form batch-loss gradient (``batch_loss_grad``) and autograd of the same batch
    loss, each on a batch of ``batch``; and the per-sample gradients ``predict_grad`` on a
    batch of ``per_sample_batch`` (they write n·k numbers per sample; a small batch keeps that
    output from measuring the memory system rather than the arithmetic).
    """
    fns: dict[tuple[int, str], Callable[[], object]] = {}
    sizes = {CLOSED: batch, AUTOGRAD: batch, PER_SAMPLE: per_sample_batch}
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        x, y, w0, w, V = testing.random_problem(n, k, batch, "squared", gen)
        xs = x[:per_sample_batch]
        fns[(n, CLOSED)] = partial(grad.batch_loss_grad, x, y, w0, w, V, "squared", check=False)
        fns[(n, AUTOGRAD)] = partial(grad.autograd_batch_grad, y, w0, w, V, "squared", x=x)
        fns[(n, PER_SAMPLE)] = partial(grad.predict_grad, xs, w0, w, V, check=False)
    seconds = cost.best_times(fns, repeat=7, clock=time.process_time)
    return [
        {"panel": "dense", "n": n, "nnz": n, "form": form, "seconds": t / sizes[form]}
        for (n, form), t in seconds.items()
    ]


def measure_sparse_gradient_cost(
    nnzs=SPARSE_NNZ, ns=SPARSE_NS, k: int = SPARSE_K, batch: int = SPARSE_BATCH, seed: int = 0
) -> list[dict]:
    """CPU seconds per batch of ``predict_grad_sparse`` on a padded index batch, for each (n, nnz)."""
    fns = {}
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        w0, w, V = testing.random_fm(n, k, gen, zero_bias=True)
        for m in nnzs:
            start = torch.randint(0, n, (batch, 1), generator=gen)
            idx = (start + torch.arange(m) * (n // m)) % n  # m distinct indices per sample
            fns[(n, m)] = partial(grad.predict_grad_sparse, idx, w0, w, V, check=False)
    seconds = cost.best_times(fns, repeat=9, clock=time.process_time)
    return [
        {"panel": "sparse", "n": n, "nnz": m, "form": f"sparse closed form, n = {n:,}", "seconds": t}
        for (n, m), t in seconds.items()
    ]


def committed_cost() -> tuple[list[dict], list[dict]]:
    """The committed rows of ``02_gradient_cost``: (dense rows, sparse rows)."""
    rows = read_csv("02_gradient_cost.csv")
    return [r for r in rows if r["panel"] == "dense"], [r for r in rows if r["panel"] == "sparse"]


def slopes(rows: list[dict]) -> dict[str, float]:
    """Log-log slope of seconds against n for each dense form."""
    out = {}
    for form in dict.fromkeys(r["form"] for r in rows):
        sel = [r for r in rows if r["form"] == form]
        out[form] = cost.fit_loglog_slope([r["n"] for r in sel], [r["seconds"] for r in sel])
    return out


def autograd_ratios(rows: list[dict]) -> dict[int, float]:
    """Autograd time / closed-form batch-loss time at each n."""
    t = {(r["n"], r["form"]): r["seconds"] for r in rows}
    return {n: t[(n, AUTOGRAD)] / t[(n, CLOSED)] for n in sorted({r["n"] for r in rows})}


def plot_gradient_cost(dense_rows: list[dict], sparse_rows: list[dict]) -> Figure:
    """Left: seconds per sample against n (dense, log-log, slope-1 reference); right: the sparse
    per-sample form against nnz (linear axes, fitted lines a + b·nnz)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for (form, slope), marker in zip(slopes(dense_rows).items(), "os^"):
        sel = [r for r in dense_rows if r["form"] == form]
        left.loglog(
            [r["n"] for r in sel], [r["seconds"] for r in sel], marker=marker, label=f"{form}: slope {slope:.2f}"
        )
    ns = sorted({r["n"] for r in dense_rows})
    closed = [r["seconds"] for r in dense_rows if r["form"] == CLOSED]
    middle = len(ns) // 2
    left.loglog(
        [ns[0], ns[-1]],
        [closed[middle] * ns[0] / ns[middle], closed[middle] * ns[-1] / ns[middle]],
        "--",
        color="0.5",
        lw=1,
        label="slope 1 (reference)",
    )
    left.xaxis.set_minor_formatter(NullFormatter())
    left.set_xticks(ns, [f"{n:,}" for n in ns])
    left.set_xlabel("n (features per sample)")
    left.set_ylabel(f"CPU seconds per sample (k = {DENSE_K})")
    left.set_title("Dense gradient: time linear in n, autograd slower")
    left.legend(fontsize=8, loc="upper left")

    nb01.draw_sparse_lines(right, sparse_rows, "Sparse gradient", SPARSE_BATCH, SPARSE_K)
    left.grid(True, which="major", alpha=0.3)
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
    "regression": dict(strength=1.0, N=4000, epochs=40, batch_size=128, lr=0.001),
    "classification": dict(strength=4.0, N=16000, epochs=40, batch_size=256, lr=0.005),
}
PLANTED_N, PLANTED_K, N_VAL = 20, 3, 2000


def planted_dataset(
    task: str, *, seed: int = 1
) -> tuple[tuple[Tensor, Tensor, Tensor], Tensor, Tensor, Tensor, Tensor]:
    """``(planted, X, y, X_val, y_val)``: the planted FM of :func:`planted_experiment` and its data."""
    cfg = TRAINING[task]
    planted = training.planted_fm(PLANTED_N, PLANTED_K, strength=float(cfg["strength"]), seed=seed)
    X, y = training.planted_data(*planted, int(cfg["N"]), task=task, seed=seed + 1)
    X_val, y_val = training.planted_data(*planted, N_VAL, task=task, seed=seed + 2)
    return planted, X, y, X_val, y_val


def history_matches_committed(task: str, history: list[tuple[float, float]], rtol: float = 1e-9) -> bool:
    """True when ``history`` [(training loss, validation loss) per epoch, epoch 0 first] equals the
    committed rows of ``02_training_curves.csv`` for ``task`` within ``rtol``."""
    committed = [r for r in read_csv("02_training_curves.csv") if r["task"] == task]
    if len(committed) != len(history):
        return False
    return all(
        abs(r["train_loss"] - a) <= rtol * max(1.0, abs(a)) and abs(r["val_loss"] - b) <= rtol * max(1.0, abs(b))
        for r, (a, b) in zip(committed, history)
    )


def committed_training() -> list[dict]:
    """The committed rows of ``02_training_curves.csv``."""
    return read_csv("02_training_curves.csv")


def planted_experiment(task: str, *, seed: int = 1) -> dict:
    """Train on data from a planted FM (n = 20, k = 3) and compare with the planted model.

    Returns the planted parameters, the :class:`fmedu.train.TrainResult`, the validation set, the planted model's
    validation loss (and accuracy), the learned model's, and the relative off-diagonal error
    of V Vᵀ (:func:`fmedu.train.offdiagonal_relative_error`).
    """
    cfg = TRAINING[task]
    loss = training.TASK_LOSSES[task][0]
    planted, X, y, X_val, y_val = planted_dataset(task, seed=seed)
    result = training.train(
        X,
        y,
        X_val,
        y_val,
        task=task,
        k=PLANTED_K,
        epochs=int(cfg["epochs"]),
        batch_size=int(cfg["batch_size"]),
        lr=float(cfg["lr"]),
        seed=seed,
    )
    out = {
        "task": task,
        "loss": loss,
        "planted": planted,
        "result": result,
        "X_val": X_val,
        "y_val": y_val,
        "planted_train_loss": training.evaluate(X, y, *planted, loss),
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
                    "planted_train_loss": e["planted_train_loss"],
                    "planted_val_loss": e["planted_val_loss"],
                }
            )
    return rows


def plot_training_curves(rows: list[dict]) -> Figure:
    """Per task: the training loss beside the planted FM's training loss, and the validation loss
    beside the planted FM's validation loss (like with like), from the rows of ``02_training_curves.csv``."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2))
    for ax, task in zip(axes, tasks):
        sel = [r for r in rows if r["task"] == task]
        epochs = [r["epoch"] for r in sel]
        ax.semilogy(epochs, [r["train_loss"] for r in sel], color="C0", lw=2, label="training loss")
        ax.axhline(sel[0]["planted_train_loss"], color="C0", linestyle=":", label="planted FM, training loss")
        ax.semilogy(epochs, [r["val_loss"] for r in sel], "--", color="C3", lw=1.5, label="validation loss")
        ax.axhline(sel[0]["planted_val_loss"], color="C3", linestyle=":", label="planted FM, validation loss")
        ax.set_xlabel("epoch (one pass over the training set)")
        ax.set_ylabel(f"mean {sel[0]['loss']} loss (log scale)")
        gap_train = sel[-1]["train_loss"] / sel[0]["planted_train_loss"] - 1
        gap_val = sel[-1]["val_loss"] / sel[0]["planted_val_loss"] - 1
        ax.set_title(
            f"{task}: ends {100 * gap_train:+.1f}% (training), {100 * gap_val:+.1f}% (validation)\nfrom the planted FM",
            fontsize=10,
        )
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}".strip("0.")[0] in "2345" else ""))
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("02_training_curves")
def training_curves(out_dir: Path) -> list[Path]:
    experiments = [planted_experiment(task) for task in TRAINING]
    return [
        write_csv(out_dir / "02_training_curves.csv", training_rows(experiments)),
        save_png(plot_training_curves(training_rows(experiments)), out_dir / "02_training_curves.png"),
    ]
