"""Chapter 00 (the course index): the one-hot design matrix, a conceptual diagram.

Figure ``00_design_matrix``: six ratings of the worked example of chapter 01 (three users,
four movies) as rows of the design matrix, one column per feature, grouped into users and
movies; each row has exactly one 1 in each group, and the rating's pair of features is the
one pair whose interaction ⟨v_u, v_m⟩ the FM adds. Its CSV holds the plotted cells.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..registry import figure, save_png, write_csv
from ..testing import toy_ratings_fm

# The ratings drawn (user, movie): every user and every movie appears at least once.
RATINGS = (
    ("Ann", "Alien"),
    ("Ann", "Dune"),
    ("Bob", "Brazil"),
    ("Bob", "Casablanca"),
    ("Cat", "Alien"),
    ("Cat", "Casablanca"),
)


def design_rows() -> list[dict]:
    """One row per plotted cell: ``{row, column, rating, feature, group, x}`` (x is 0 or 1)."""
    toy = toy_ratings_fm()
    rows = []
    for r, (user, movie) in enumerate(RATINGS):
        x = toy.x(user, movie)
        for c, name in enumerate(toy.features):
            group = "user" if name in toy.users else "movie"
            rows.append(
                {"row": r, "column": c, "rating": f"{user}–{movie}", "feature": name, "group": group, "x": int(x[c])}
            )
    return rows


def plot_design_matrix(rows: list[dict]) -> Figure:
    """The design matrix as a grid: ones filled, zeros blank, user and movie columns shaded apart."""
    n_rows, n_cols = max(r["row"] for r in rows) + 1, max(r["column"] for r in rows) + 1
    features = [r["feature"] for r in rows if r["row"] == 0]
    ratings = [r["rating"] for r in rows if r["column"] == 0]
    n_users = sum(1 for r in rows if r["row"] == 0 and r["group"] == "user")
    fig, ax = plt.subplots(figsize=(7.6, 4.0))
    colours = {"user": "#1f77b4", "movie": "#ff7f0e"}
    for cell in rows:
        x0, y0 = cell["column"], n_rows - 1 - cell["row"]
        shade = colours[cell["group"]]
        ax.add_patch(
            Rectangle(
                (x0, y0),
                1,
                1,
                facecolor=shade if cell["x"] else "white",
                alpha=0.85 if cell["x"] else 1.0,
                edgecolor="0.6",
                lw=0.8,
            )
        )
        ax.text(
            x0 + 0.5,
            y0 + 0.5,
            str(cell["x"]),
            ha="center",
            va="center",
            color="white" if cell["x"] else "0.65",
            fontsize=11,
            fontweight="bold" if cell["x"] else "normal",
        )
    ax.plot([n_users, n_users], [0, n_rows], color="black", lw=2)  # the user | movie boundary
    ax.set_xlim(-0.1, n_cols + 2.9)
    ax.set_ylim(0, n_rows + 1.0)
    ax.set_xticks([c + 0.5 for c in range(n_cols)], features, rotation=30, ha="right")
    ax.set_yticks([n_rows - 0.5 - r for r in range(n_rows)], [f"rating {r + 1}: {ratings[r]}" for r in range(n_rows)])
    ax.tick_params(length=0)
    ax.text(n_users / 2, n_rows + 0.35, "user features (one-hot)", ha="center", color=colours["user"], fontsize=10)
    ax.text(
        n_users + (n_cols - n_users) / 2,
        n_rows + 0.35,
        "movie features (one-hot)",
        ha="center",
        color=colours["movie"],
        fontsize=10,
    )
    for r, rating in enumerate(ratings):
        user, movie = rating.split("–")
        ax.text(
            n_cols + 0.2,
            n_rows - 0.5 - r,
            rf"adds $\langle v_{{\mathrm{{{user}}}}}, v_{{\mathrm{{{movie}}}}}\rangle$",
            va="center",
            fontsize=9,
        )
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title("Each rating is a row with one 1 among the users and one among the movies")
    fig.tight_layout()
    return fig


@figure("00_design_matrix")
def design_matrix(out_dir: Path) -> list[Path]:
    rows = design_rows()
    return [
        write_csv(out_dir / "00_design_matrix.csv", rows),
        save_png(plot_design_matrix(rows), out_dir / "00_design_matrix.png"),
    ]
