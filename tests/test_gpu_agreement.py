"""The agreement table of ``make gpu-run`` (tests/gpu_agreement.py), checked on the committed CPU
rows: a file agrees with itself, and a perturbed step size is found and located."""

import csv
import math
from pathlib import Path

import gpu_agreement
import pytest

CPU = Path(__file__).resolve().parent.parent / "results" / "stability-full.csv"


def test_the_committed_rows_agree_with_themselves():
    rows = gpu_agreement.load(str(CPU))
    table = gpu_agreement.agreement(rows, rows)
    assert len(table) == 50 and all(row["agree"] and row["attempts"] == 10 for row in table)


def test_a_difference_and_a_one_sided_nan_are_reported(tmp_path, capsys):
    with open(CPU, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["method"] == "sgd" and row["eta_index"] == "3" and row["epoch"] == "7":
            row["val_loss"] = repr(float(row["val_loss"]) * (1 + 1e-6))
        if row["method"] == "prox" and row["eta_index"] == "0" and row["attempt"] == "2":
            row["test_loss"] = "nan"
    gpu = tmp_path / "gpu.csv"
    with open(gpu, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert gpu_agreement.main([str(gpu), str(CPU), str(tmp_path / "table.csv")]) == 0
    table = {(r["method"], round(float(r["eta"]), 12)): r for r in csv.DictReader(open(tmp_path / "table.csv"))}
    off = [key for key, r in table.items() if r["agree"] == "False"]
    assert len(off) == 2 and {m for m, _ in off} == {"sgd", "prox"}
    sgd = next(r for (m, _), r in table.items() if m == "sgd" and r["agree"] == "False")
    assert float(sgd["max_rel_diff"]) == pytest.approx(1e-6, rel=1e-3)
    assert math.isinf(
        float(next(r for (m, _), r in table.items() if m == "prox" and r["agree"] == "False")["max_rel_diff"])
    )
    assert "48 of 50" in capsys.readouterr().out
