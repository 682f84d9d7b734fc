"""Numbers the README states about committed results are the numbers the results files hold."""

import csv
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _published_exact_runs():
    rows = [
        r
        for r in csv.DictReader(open(ROOT / "results" / "published-10epoch.csv"))
        if r["method"] == "prox" and r["variant"] == "corrected"
    ]
    by_attempt: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for r in rows:
        by_attempt[r["attempt"]][int(r["epoch"])] = (float(r["train_loss"]), float(r["v_rms"]))
    return by_attempt


def test_e3_row_matches_the_committed_divergence():
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| E3 |"))
    m = re.search(
        r"training loss ([\d.]+) in the first epoch, ([\d.]+) in the tenth; RMS latent norm ([\d.]+) at "
        r"initialisation, ([\d.]+) after ten epochs",
        row,
    )
    assert m, "the E3 row states the divergence of the exact step in the checked form"
    first, tenth, init, final = (float(g) for g in m.groups())
    runs = _published_exact_runs()
    assert len(runs) == 3
    mean = lambda values: sum(values) / len(values)
    assert round(mean([r[1][0] for r in runs.values()]), 2) == first
    assert round(mean([r[10][0] for r in runs.values()]), 1) == tenth
    assert round(mean([r[10][1] for r in runs.values()]), 2) == final
    assert round(0.01 * 20**0.5, 3) == init  # N(0, 0.01²) entries, k = 20: RMS row norm 0.01·√20
