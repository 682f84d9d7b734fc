"""Figures of notebook 03 (what V Vᵀ can express): reconstruction error against k, the two
regularisers along the symmetries of a user–item factorisation, and what a fit recovers."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .. import expressiveness as ex
from ..registry import figure, save_png, write_csv

K_SCAN_N = 10
FLOOR = 1e-17  # plotted in place of an exact 0 on the log axis
RECOVERY_SETTINGS = ("user-item", "pairs", "pairs+triples")
RECOVERY_SEEDS = (0, 1, 2)


def plot_k_scan(rows: list[dict]) -> Figure:
    """Best relative off-diagonal error against k (log scale), with the proven lower bounds."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    names = list(dict.fromkeys(r["example"] for r in rows))
    for name, marker in zip(names, "os^D"):
        sel = [r for r in rows if r["example"] == name]
        (line,) = ax.semilogy(
            [r["k"] for r in sel],
            [max(r["rel_error"], FLOOR) for r in sel],
            marker=marker,
            label=f"{name} (proven {sel[0]['proven_lower']} ≤ k* ≤ {sel[0]['proven_upper']})",
        )
        ax.axvline(sel[0]["proven_lower"] - 0.5, color=line.get_color(), ls=":", alpha=0.6)
    ax.axhline(1e-8, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("k (columns of V)")
    ax.set_ylabel("best ‖off(VVᵀ − W)‖ / ‖off(W)‖")
    ax.set_title(f"How many columns does the off-diagonal need? (n = {max(r['k'] for r in rows)})")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_regularisers(rows: list[dict]) -> Figure:
    """‖V‖² and Σ(v_u·v_i)² along a family of factorisations with identical predictions."""
    fig, ax = plt.subplots(figsize=(6, 4))
    t = [r["t"] for r in rows]
    ax.semilogx(t, [r["frobenius_sq"] for r in rows], label="‖V‖² (usual regulariser)")
    ax.semilogx(t, [r["pair_interaction_sq"] for r in rows], label="Σ_{u,i} (v_u·v_i)² = ‖B‖_F²")
    ax.semilogx(t, [r["two_nuclear_norm"] for r in rows], ls="--", color="grey", label="2‖B‖_* (minimum of ‖V‖²)")
    ax.set_xlabel("t in A_t = diag(t, 1/t, 1): V_u A_t, V_i A_t⁻ᵀ")
    ax.set_ylabel("regulariser value")
    ax.set_title("Same predictions, different ‖V‖²")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def recovery_rows(settings=RECOVERY_SETTINGS, seeds=RECOVERY_SEEDS) -> list[dict]:
    """Rows ``{setting, seed, quantity, max_abs_error}`` of :func:`fmedu.expressiveness.planted_recovery`."""
    rows = []
    for setting in settings:
        for seed in seeds:
            for quantity, err in ex.planted_recovery(setting, seed).items():
                rows.append({"setting": setting, "seed": seed, "quantity": quantity, "max_abs_error": err})
    return rows


def plot_recovery(rows: list[dict]) -> Figure:
    """Worst error over seeds of each recovered quantity, per data setting (log scale)."""
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    quantities = list(dict.fromkeys(r["quantity"] for r in rows))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    width = 0.8 / len(settings)
    for s, setting in enumerate(settings):
        worst = []
        for q in quantities:
            errs = [r["max_abs_error"] for r in rows if r["setting"] == setting and r["quantity"] == q]
            worst.append(max(errs) if errs else np.nan)
        ax.bar(
            np.arange(len(quantities)) + (s - (len(settings) - 1) / 2) * width,
            [max(e, FLOOR) for e in worst],
            width,
            label=setting,
            log=True,
        )
    ax.axhline(1e-6, color="grey", lw=0.8, ls="--", label="recovered threshold 1e-6")
    ax.set_xticks(np.arange(len(quantities)), quantities, rotation=20, fontsize=8)
    ax.set_ylabel("max |fitted − planted| (worst of 3 seeds)")
    ax.set_title("What a fit to a planted FM's noiseless predictions recovers")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("03_k_reconstruction")
def k_reconstruction(out_dir: Path) -> list[Path]:
    rows = ex.k_scan_rows()
    return [
        write_csv(out_dir / "03_k_reconstruction.csv", rows),
        save_png(plot_k_scan(rows), out_dir / "03_k_reconstruction.png"),
    ]


@figure("03_regularisers")
def regularisers(out_dir: Path) -> list[Path]:
    rows = ex.gauge_rows()
    return [
        write_csv(out_dir / "03_regularisers.csv", rows),
        save_png(plot_regularisers(rows), out_dir / "03_regularisers.png"),
    ]


@figure("03_recovery")
def recovery(out_dir: Path) -> list[Path]:
    rows = recovery_rows()
    return [write_csv(out_dir / "03_recovery.csv", rows), save_png(plot_recovery(rows), out_dir / "03_recovery.png")]
