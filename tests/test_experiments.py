"""fmedu.experiments: the smoke preset end to end on the real data, interruption and resume,
provenance, configuration checks and the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fmedu.errors import FMInputError, ResultsError
from fmedu.movielens import analysis, experiments


@pytest.fixture(scope="module")
def movielens():
    """The real data; a missing copy fails under CI (it must be there) and skips elsewhere."""
    from fmedu.movielens import data

    try:
        return data.load_movielens()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the MovieLens data is missing or broken: {exc}")
        pytest.skip(f"MovieLens data not available: {exc}")


def _table(path):
    rows = experiments.load_results(path)
    key = lambda r: (r["variant"], r["method"], r["eta_index"], r["attempt"], r["epoch"])
    nan_free = lambda v: None if v != v else v
    return {key(r): (r["train_loss"], nan_free(r["val_loss"]), nan_free(r["test_loss"]), r["v_rms"]) for r in rows}


def test_smoke_preset_end_to_end(movielens, tmp_path):
    prov = experiments.run_experiment("smoke", tmp_path, progress=False)
    preset = experiments.PRESETS["smoke"]
    runs = len(list(preset.runs()))
    table = _table(tmp_path / "smoke.csv")
    assert prov["runs_complete"] == prov["runs_total"] == runs == 20
    assert len(table) == runs * preset.epochs
    header = (tmp_path / "smoke.csv").read_text().splitlines()[0].split(",")
    assert header == experiments.COLUMNS
    assert {"method", "eta", "attempt", "epoch", "train_loss", "val_loss", "test_loss", "n_test"} <= set(header)
    values = np.array(list(table.values()))
    assert np.all(np.isfinite(values)) and np.all(values[:, :3] > 0)
    # the fixed 80/10/10 split of the first 2,000 ratings
    row = experiments.load_results(tmp_path / "smoke.csv")[0]
    assert (row["n_train"], row["n_val"], row["n_test"]) == (1600, 200, 200)
    stored = json.loads((tmp_path / "smoke.json").read_text())
    session = stored["sessions"][-1]
    for key in ("git", "versions", "device", "wall_s", "started", "finished"):
        assert key in session
    assert session["versions"]["numba"] and session["device"]["backend"] == "cpu"
    assert stored["config"]["epochs"] == 2 and "seed" in stored["seeds"]
    # every run is exactly reproducible: a second folder gives the same numbers
    experiments.run_experiment("smoke", tmp_path / "again", progress=False)
    assert _table(tmp_path / "again" / "smoke.csv") == table


def test_interrupted_sweep_resumes_without_redoing_or_losing_runs(movielens, tmp_path):
    full = tmp_path / "full"
    experiments.run_experiment("smoke", full, progress=False)

    part = tmp_path / "part"

    def interrupt(done):
        if done >= 4:  # two chunks of two attempts are on disk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        experiments.run_experiment("smoke", part, progress=False, on_chunk=interrupt)
    before = (part / "smoke.csv").read_text()
    assert len(_table(part / "smoke.csv")) == 4 * 2
    # a kill in the middle of the next write leaves a cut-off line behind
    with open(part / "smoke.csv", "a") as fh:
        fh.write("smoke,smoke,correct,sgd,0.01,0,0,0,1,0.5")
    with pytest.warns(experiments.ResultsWarning, match="cut off by an interrupted write"):
        prov = experiments.run_experiment("smoke", part, progress=False)
    after = (part / "smoke.csv").read_text()
    assert after.startswith(before)  # finished runs kept, byte for byte, in place
    assert prov["sessions"][-1]["runs_added"] == 20 - 4  # and not redone
    assert _table(part / "smoke.csv") == _table(full / "smoke.csv")
    again = experiments.run_experiment("smoke", part, progress=False)
    assert again["sessions"][-1]["runs_added"] == 0


def test_other_configuration_is_refused(movielens, tmp_path):
    experiments.run_experiment("smoke", tmp_path, progress=False, methods=["sgd"])
    with pytest.raises(experiments.ResultsError, match="different configuration"):
        experiments.run_experiment("smoke", tmp_path, progress=False, methods=["sgd"], epochs=1)
    # adding methods to the same configuration is allowed
    prov = experiments.run_experiment("smoke", tmp_path, progress=False, methods=["sgd", "adagrad"])
    assert prov["sessions"][-1]["runs_added"] == 4


def test_bad_requests_raise_clear_errors(tmp_path):
    with pytest.raises(FMInputError, match="unknown experiment"):
        experiments.run_experiment("nope", tmp_path)
    with pytest.raises(FMInputError, match=r"method\(s\) adam not in preset 'long', so no runs are left"):
        experiments.run_experiment("long", tmp_path, methods=["adam"])
    with pytest.raises(FMInputError, match="device must be"):
        experiments.run_experiment("smoke", tmp_path, device="tpu")


def test_presets_follow_the_design():
    p = experiments.PRESETS
    full = p["stability-full"]
    assert full.epochs == 20 and full.variants[0].attempts == 10 and full.variants[0].subset is None
    assert set(full.variants[0].etas) == {"prox", "prox-published", "sgd", "adagrad", "adam"}
    assert all(len(e) == 10 for e in full.variants[0].etas.values())
    assert np.isclose(full.variants[0].etas["prox"][-1], 1 / 23) and full.variants[0].etas["sgd"][-1] == 1e-1
    assert full.variants[0].held_out and experiments.SPLIT == (0.8, 0.1, 0.1)
    pub = p["stability-published"].variants[0]
    assert pub.subset == 1000 and pub.join == "published" and p["stability-published"].epochs == 10
    assert not pub.held_out
    assert p["long"].epochs == 50
    joins = {v.name: v.join for v in p["published-10epoch"].variants}
    assert joins == {"published": "published", "corrected": "correct"}


def test_step_sizes_are_the_nearest_doubles_to_the_geometric_grid():
    # mpmath at 60 digits is an independent computation of 1e-5·(top/1e-5)^(i/9); np.geomspace
    # misses it in the last bit at 8 of 10 points on some CPUs, so the grid would follow the machine.
    from mpmath import mp, mpf

    from fmedu.movielens import presets

    with mp.workdps(60):
        for method, top in (("prox", mpf(1) / 23), ("sgd", mpf("0.1")), ("adam", mpf("0.1"))):
            lo = mpf("1e-5")
            assert presets.step_sizes(method) == [float(lo * (top / lo) ** (mpf(i) / 9)) for i in range(10)]
    assert presets.step_sizes("prox")[-1] == presets.PUBLISHED_ETA and presets.step_sizes("sgd")[0] == 1e-5
    with pytest.raises(ValueError, match="count >= 2"):
        presets.step_sizes("sgd", 1)


def test_cli_help_and_list():
    for args in (["experiment", "--help"], ["bench", "--help"], ["figures", "--help"]):
        out = subprocess.run([sys.executable, "-m", "fmedu", *args], capture_output=True, text=True, check=True)
        assert "usage" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "fmedu", "experiment", "--list"], capture_output=True, text=True, check=True
    )
    assert {"smoke", "published-10epoch", "stability-published", "stability-full", "long"} <= {
        line.split(":")[0] for line in out.stdout.splitlines()
    }


def test_figure_summaries_read_results_files(movielens, tmp_path):
    experiments.run_experiment("smoke", tmp_path, progress=False)
    rows = analysis.results("smoke", tmp_path)
    summary = analysis.stability_summary(rows, "val_loss")
    assert len(summary) == 5 * 2 and {s["attempts"] for s in summary} == {2}
    assert all(s["lo"] <= s["mean"] <= s["hi"] for s in summary)
    best = analysis.best_per_run(rows, "train_loss")
    for (_variant, method, eta), vals in best.items():
        per_run = [
            min(r["train_loss"] for r in rows if (r["method"], r["eta"], r["attempt"]) == (method, eta, a))
            for a in range(2)
        ]
        assert list(vals) == per_run
    with pytest.raises(ResultsError, match="python -m fmedu experiment long"):
        analysis.results("long", tmp_path)


def test_method_subsets_of_a_multi_variant_preset_resume(movielens, tmp_path, monkeypatch):
    two = experiments.Preset(
        "two",
        "two variants",
        epochs=1,
        variants=(
            experiments.Variant(
                "a", "published", {"sgd": [0.01], "adagrad": [0.01]}, attempts=2, subset=300, held_out=False
            ),
            experiments.Variant("b", "correct", {"sgd": [0.01]}, attempts=2, subset=300),
        ),
    )
    monkeypatch.setitem(experiments.PRESETS, "two", two)
    experiments.run_experiment("two", tmp_path, progress=False)
    table = _table(tmp_path / "two.csv")
    # redo only adagrad (variant a only): drop its rows, resume with a method subset
    lines = (tmp_path / "two.csv").read_text().splitlines(keepends=True)
    (tmp_path / "two.csv").write_text("".join(line for line in lines if ",adagrad," not in line))
    prov = experiments.run_experiment("two", tmp_path, progress=False, methods=["adagrad"])
    assert prov["sessions"][-1]["runs_added"] == 2
    assert prov["sessions"][-1]["selection"]["methods"] == ["adagrad"]
    assert _table(tmp_path / "two.csv") == table


def test_a_gpu_sweep_trains_a_variant_in_one_chunk_and_resumes(movielens, tmp_path, monkeypatch):
    """``--device cuda`` in numba-cuda's simulator: every run of a variant in one launch per epoch;
    the rows equal the CPU engine's; an interrupted GPU sweep resumes."""
    cuda = pytest.importorskip("fmedu.engine.cuda")
    if not cuda.simulator():
        pytest.skip("the simulator test; make test-gpu runs the smoke preset on the GPU")
    tiny = experiments.Preset(
        "tiny",
        "two variants, every method",
        epochs=2,
        variants=(
            experiments.Variant("a", "correct", {m: [0.002] for m in experiments.ALL_METHODS}, attempts=1, subset=60),
            experiments.Variant(
                "b", "published", {"sgd": [0.01], "adam": [0.01]}, attempts=2, subset=40, held_out=False
            ),
        ),
    )
    monkeypatch.setitem(experiments.PRESETS, "tiny", tiny)
    chunks = experiments._chunks(tiny, set(), "cuda")
    assert [len(c) for c in chunks] == [5, 4]  # one chunk per variant
    assert [len(c) for c in experiments._chunks(tiny, set(), "cpu")] == [1, 1, 1, 1, 1, 2, 2]

    def interrupt(done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        experiments.run_experiment("tiny", tmp_path / "gpu", device="cuda", progress=False, on_chunk=interrupt)
    assert len(_table(tmp_path / "gpu" / "tiny.csv")) == 5 * 2  # the first variant is on disk
    prov = experiments.run_experiment("tiny", tmp_path / "gpu", device="cuda", progress=False)
    assert prov["sessions"][-1]["runs_added"] == 4
    assert "simulator" in prov["sessions"][-1]["device"]["gpu"]
    experiments.run_experiment("tiny", tmp_path / "cpu", progress=False)
    gpu, cpu = _table(tmp_path / "gpu" / "tiny.csv"), _table(tmp_path / "cpu" / "tiny.csv")
    assert gpu.keys() == cpu.keys()
    as_array = lambda values: np.array([np.nan if v is None else v for v in values])
    for key in cpu:
        assert np.allclose(as_array(gpu[key]), as_array(cpu[key]), rtol=1e-12, atol=0, equal_nan=True), key


def test_the_choice_on_validation_never_looks_at_the_test_split(movielens, tmp_path):
    experiments.run_experiment("smoke", tmp_path, progress=False)
    rows = analysis.results("smoke", tmp_path)
    table = analysis.selection_table(rows)
    assert {c["method"] for c in table} == set(experiments.ALL_METHODS)
    summary = analysis.selection_summary(rows)
    # changing every test loss changes no choice
    shuffled = [dict(r, test_loss=1.0 - r["test_loss"]) for r in rows]
    again = {c["method"]: c["eta"] for c in analysis.selection_table(shuffled)}
    for c in table:
        assert again[c["method"]] == c["eta"]
        assert c["choose_mean"] == min(s["choose_mean"] for s in summary if s["method"] == c["method"])
        assert c["report"] == "test_loss" and c["choose"] == "val_loss"


def test_committed_results_reproduce_the_published_curve_and_hold_the_test_split():
    """The committed results: the published 10-epoch prox curve within 0.0006 per epoch, and every
    preset on the correct join with validation and test losses of 10,000 ratings each."""
    table = analysis.reproduction_table(analysis.results("published-10epoch"))
    assert max(abs(t["diff_prox"]) for t in table) <= 0.0006
    for preset in ("stability-full", "long"):
        rows = analysis.results(preset)
        assert {(r["n_train"], r["n_val"], r["n_test"]) for r in rows} == {(80_000, 10_000, 10_000)}
        test = np.array([r["test_loss"] for r in rows])
        assert np.isfinite(test).mean() > 0.5 and np.all(test[np.isfinite(test)] > 0)  # diverged runs: inf or nan
    full = analysis.results("stability-full")
    assert len(full) == 500 * 20 and {r["method"] for r in full} == set(experiments.ALL_METHODS)
