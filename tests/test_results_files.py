"""Results files of ``fmedu.movielens.experiments`` under hostile conditions, on a tiny generated sweep.

Nothing finished is lost or silently redone: concurrent sessions, damaged or foreign files,
rows cut off by a kill, a full disk, failed data loads; SIGKILL at random points of a sweep
always resumes to the bytes of an uninterrupted run, whatever the thread count.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numba
import pytest
import sweep_driver

from fmedu.errors import DataError, FMInputError, ResultsError
from fmedu.movielens import experiments, results_file

DRIVER = Path(__file__).with_name("sweep_driver.py")
RUNS, EPOCHS = 14, 3


@pytest.fixture
def tiny(monkeypatch):
    sweep_driver.install(monkeypatch)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sweep's CSV bytes (one thread)."""
    with pytest.MonkeyPatch.context() as mp:
        sweep_driver.install(mp)
        out = tmp_path_factory.mktemp("reference")
        experiments.run_experiment("tiny", out, progress=False, threads=1)
    return (out / "tiny.csv").read_bytes()


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _child(out: Path, *args, env=None, timeout=300):
    """``python -m fmedu experiment tiny`` in a process of its own (the tiny preset installed)."""
    cmd = [sys.executable, str(DRIVER), "experiment", "tiny", "--out", str(out), "--no-progress", *args]
    full_env = {**os.environ, "FMEDU_THREADS": "1", **(env or {})}
    return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_tiny_sweep_is_complete(tiny, tmp_path, reference):
    prov = experiments.run_experiment("tiny", tmp_path, progress=False, threads=1)
    assert prov["runs_complete"] == prov["runs_total"] == RUNS
    assert len(experiments.load_results(tmp_path / "tiny.csv")) == RUNS * EPOCHS
    assert (tmp_path / "tiny.csv").read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.csv", "tiny.json"]  # no lock, no temporaries


# --------------------------------------------------------------------------- defect 3: one writer


def test_concurrent_runs_into_one_out_refuse_instead_of_duplicating(tmp_path, reference):
    """Defect 3: a second session on the same results refuses, naming the holder of the lock, and
    writes nothing; the first one finishes alone (before the fix: 80 rows instead of 40, one
    session in the provenance, and now and then a crash on a missing .json.tmp)."""
    out, flag, release = tmp_path / "out", tmp_path / "held", tmp_path / "release"
    first = _child(out, env={"SWEEP_HOLD": str(flag), "SWEEP_RELEASE": str(release)})
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        lock = json.loads((out / "tiny.lock").read_text())
        assert lock["pid"] == first.pid and lock["host"] and "experiment tiny" in lock["command"]
        during = _files(out)
        second = _child(out)
        _, err = second.communicate(timeout=240)
        assert second.returncode == 2
        assert "is being written by another run" in err and f"pid {first.pid}" in err
        assert "Traceback" not in err
        assert _files(out) == during
    finally:
        release.write_text("go")
    _, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    assert (out / "tiny.csv").read_bytes() == reference  # 14 runs, each once
    sessions = json.loads((out / "tiny.json").read_text())["sessions"]
    assert [s["runs_added"] for s in sessions] == [RUNS]
    assert sorted(p.name for p in out.iterdir()) == ["tiny.csv", "tiny.json"]


def test_lock_names_its_holder_in_process(tiny, tmp_path):
    with results_file.exclusive(tmp_path, "tiny"):
        with pytest.raises(ResultsError, match=rf"being written by another run: pid {os.getpid()} on "):
            experiments.run_experiment("tiny", tmp_path, progress=False, threads=1)
    assert list(tmp_path.iterdir()) == []  # the refused session wrote nothing
    experiments.run_experiment("tiny", tmp_path, progress=False, threads=1)


# --------------------------------------------------------------------------- defects 4 and 5: damage


def _cell(lines: list, i: int, column: str, value: bytes) -> list:
    """``lines`` with the cell ``column`` of line index ``i`` replaced by ``value``."""
    fields = lines[i].rstrip(b"\n").split(b",")
    fields[experiments.COLUMNS.index(column)] = value
    return [*lines[:i], b",".join(fields) + b"\n", *lines[i + 1 :]]


def _damaged(tmp_path: Path, edit) -> tuple[Path, bytes, bytes]:
    out = tmp_path / "out"
    experiments.run_experiment("tiny", out, progress=False, threads=1)
    path = out / "tiny.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(edit(lines)))
    return out, path.read_bytes(), (out / "tiny.json").read_bytes()


@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda ls: _cell(ls, 4, "epoch", b"1x"), "line 5: column epoch holds '1x'"),
        (lambda ls: _cell(ls, 4, "train_loss", b"0.6garbage"), "line 5: column train_loss holds '0.6garbage'"),
        (lambda ls: _cell(ls, 6, "eta", b"-0.05"), "line 7: column eta holds '-0.05'"),
        (lambda ls: _cell(ls, 6, "seed", b"5"), "line 7: epoch 3, seed 5, attempt 1"),
        (lambda ls: [*ls[:3], b"}}}}not a row at all\n", *ls[3:]], "line 4: 1 fields where a row has 17"),
        (lambda ls: [*ls[:3], b"\n", *ls[3:]], "line 4: 0 fields"),
        (lambda ls: [b"\xef\xbb\xbf" + ls[0], *ls[1:]], "line 1: the file starts with a UTF-8 byte-order mark"),
        (lambda ls: [ls[0].replace(b"train_loss", b"loss"), *ls[1:]], "line 1:"),
        (lambda ls: [*ls[:7], ls[7].replace(b"0", b"\xff", 1), *ls[8:]], "line 8: not UTF-8"),
        (lambda ls: [*ls[:2], *ls[3:]], "line 3: epoch 3 of run"),  # epoch 2 of the first run lost
        (lambda ls: [*ls[:3], *ls[4:]], "lines 2-3: run"),  # epoch 3 of the first run lost
        (
            lambda ls: [*ls, *ls[1:4]],
            f"line {RUNS * EPOCHS + 2}: run (variant syn, method sgd, eta_index 0, attempt 0) is already in the "
            "file (line 2)",
        ),  # a run twice
    ],
)
def test_damaged_results_file_is_refused_naming_file_and_line(tiny, tmp_path, edit, where):
    """Defect 4: a corrupted cell, a garbage or empty line, a byte-order mark, a changed header,
    a lost row or a duplicated run: refused with the file and line; nothing is rewritten."""
    out, csv_before, json_before = _damaged(tmp_path, edit)
    with pytest.raises(ResultsError) as info:
        experiments.run_experiment("tiny", out, progress=False, threads=1)
    assert f"{out / 'tiny.csv'}, {where}" in str(info.value)
    assert (out / "tiny.csv").read_bytes() == csv_before and (out / "tiny.json").read_bytes() == json_before
    assert sorted(p.name for p in out.iterdir()) == ["tiny.csv", "tiny.json"]
    if "line 1" in where or "fields" in where or "column" in where or "UTF-8" in where:
        with pytest.raises(ResultsError, match=f"tiny.csv, {where.split(':')[0]}"):
            experiments.load_results(out / "tiny.csv")  # the reader used by the figures refuses too


def test_resume_keeps_finished_runs_byte_for_byte(tiny, tmp_path, reference):
    """Adding methods to a results file appends to it: the finished runs stay byte for byte."""
    out = tmp_path / "out"
    experiments.run_experiment("tiny", out, progress=False, threads=1, methods=["sgd", "adagrad"])
    before = (out / "tiny.csv").read_bytes()
    prov = experiments.run_experiment("tiny", out, progress=False, threads=1)
    assert (out / "tiny.csv").read_bytes().startswith(before)
    assert prov["sessions"][-1]["runs_added"] == RUNS - 6


def test_row_cut_inside_its_last_field_is_not_complete(tiny, tmp_path, reference):
    """Defect 5: '…,30' cut from '…,30\\n' parses as a whole row; only a line with its newline is."""
    out = tmp_path / "out"
    experiments.run_experiment("tiny", out, progress=False, threads=1)
    path = out / "tiny.csv"
    whole = path.read_bytes()
    path.write_bytes(whole[:-2])  # the last row loses its newline and the last digit of n_test
    with pytest.warns(experiments.ResultsWarning, match=rf"set aside line {RUNS * EPOCHS + 1} \(cut off"):
        prov = experiments.run_experiment("tiny", out, progress=False, threads=1)
    assert prov["sessions"][-1]["runs_added"] == 1  # the cut run is redone, the other 13 kept
    assert "cut off" in prov["sessions"][-1]["set_aside"][0]
    assert path.read_bytes() == whole == reference
    assert len(experiments.load_results(out / "tiny.csv")) == RUNS * EPOCHS


@pytest.mark.parametrize("cut", ["inside the last row", "the last run's last epoch"])
def test_resume_through_linked_results_files_keeps_the_links(tiny, tmp_path, reference, cut):
    """End to end: the results files in --out are links into another folder; a sweep cut off in
    its last run is resumed: the partial run is cut back and redone, both links stay links, their
    targets end as the uninterrupted sweep's bytes, and no temporary or lock file is left."""
    store, out = tmp_path / "store", tmp_path / "out"
    experiments.run_experiment("tiny", store, progress=False, threads=1)
    target = store / "tiny.csv"
    whole = target.read_bytes()
    assert whole == reference
    if cut == "inside the last row":
        target.write_bytes(whole[:-2])
    else:
        target.write_bytes(whole[: whole.rstrip(b"\n").rfind(b"\n") + 1])  # a complete line less
    out.mkdir()
    for name in ("tiny.csv", "tiny.json"):
        (out / name).symlink_to(store / name)
    with pytest.warns(experiments.ResultsWarning, match="set aside"):
        prov = experiments.run_experiment("tiny", out, progress=False, threads=1)
    assert prov["sessions"][-1]["runs_added"] == 1  # the cut run is redone, the other 13 kept
    for name in ("tiny.csv", "tiny.json"):
        assert (out / name).is_symlink() and (out / name).resolve() == store / name
    assert target.read_bytes() == reference
    assert json.loads((store / "tiny.json").read_text())["sessions"][-1]["runs_added"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["tiny.csv", "tiny.json"]
    assert sorted(p.name for p in store.iterdir()) == ["tiny.csv", "tiny.json"]


# --------------------------------------------------------------------------- defect 6: configuration


def test_csv_without_provenance_is_checked_against_the_configuration(tiny, tmp_path, monkeypatch):
    """Defect 6: without NAME.json the rows themselves show the configuration: another --epochs,
    another preset's file or other step sizes are refused, and the file is left as it was."""
    four = tmp_path / "four"  # 4 epochs, resumed as the preset's 3
    experiments.run_experiment("tiny", four, progress=False, threads=1, epochs=4, methods=["sgd"])
    (four / "tiny.json").unlink()
    before = (four / "tiny.csv").read_bytes()
    with pytest.raises(ResultsError, match=r"tiny.csv, line 5: epoch 4, but this configuration trains 3 epochs"):
        experiments.run_experiment("tiny", four, progress=False, threads=1)
    two = tmp_path / "two"  # 2 epochs, resumed as 5
    experiments.run_experiment("tiny", two, progress=False, threads=1, epochs=2, methods=["sgd"])
    (two / "tiny.json").unlink()
    with pytest.raises(ResultsError, match=r"tiny.csv: its runs were trained for 2 epochs .*, not 5: pass --epochs 2"):
        experiments.run_experiment("tiny", two, progress=False, threads=1, epochs=5)
    # another preset's file under this name
    other = experiments.Preset("other", "the same runs, another name", 3, sweep_driver.TINY.variants, k=4)
    monkeypatch.setitem(experiments.PRESETS, "other", other)
    experiments.run_experiment("other", tmp_path / "o", progress=False, threads=1, methods=["adam"])
    foreign = tmp_path / "f"
    foreign.mkdir()
    (foreign / "tiny.csv").write_bytes((tmp_path / "o" / "other.csv").read_bytes())
    with pytest.raises(ResultsError, match="tiny.csv, line 2: the row belongs to preset 'other', not 'tiny'"):
        experiments.run_experiment("tiny", foreign, progress=False, threads=1)
    # the same preset name with other step sizes
    etas = dict(sweep_driver.TINY.variants[0].etas, sgd=[0.02, 0.07])
    changed = experiments.Preset("tiny", "", 3, (experiments.Variant("syn", "correct", etas, attempts=2),), k=4)
    monkeypatch.setitem(experiments.PRESETS, "tiny", changed)
    with pytest.raises(ResultsError, match=r"tiny.csv, line 10: step size 0.05 at eta_index 1 is not this preset's"):
        experiments.run_experiment("tiny", four, progress=False, threads=1, epochs=4)
    assert (four / "tiny.csv").read_bytes() == before
    assert sorted(p.name for p in four.iterdir()) == ["tiny.csv"]


def test_damaged_provenance_is_refused(tiny, tmp_path):
    out = tmp_path / "out"
    experiments.run_experiment("tiny", out, progress=False, threads=1, methods=["sgd"])
    (out / "tiny.json").write_text('{"preset": "tiny", "sessions": [')
    with pytest.raises(ResultsError, match=r"tiny.json is damaged"):
        experiments.run_experiment("tiny", out, progress=False, threads=1)
    assert (out / "tiny.json").read_text() == '{"preset": "tiny", "sessions": ['


# --------------------------------------------------------------------------- defect 7: values


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attempts": 0}, "attempts must be a positive integer, got 0"),
        ({"attempts": -1}, "attempts must be a positive integer, got -1"),
        ({"attempts": True}, "attempts must be a positive integer, got True"),
        ({"attempts": 1.5}, "attempts must be a positive integer, got 1.5"),
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"threads": 0}, "threads must be a positive integer, got 0"),
        ({"methods": ["prox", "bogus"]}, r"unknown method\(s\) bogus"),
        ({"methods": "prox"}, "methods must be a list of method names"),
        ({"methods": []}, "methods is empty"),
    ],
)
def test_experiment_values_are_refused_not_replaced(tiny, tmp_path, kwargs, message):
    """Defect 7 (library side): a zero, negative or unknown value is an error, never a default."""
    with pytest.raises(FMInputError, match=message):
        experiments.run_experiment("tiny", tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_methods_outside_the_preset_are_refused(tmp_path):
    with pytest.raises(FMInputError, match=r"method\(s\) adam not in preset 'long'.*its methods are prox"):
        experiments.run_experiment("long", tmp_path, methods=["prox", "adam"])


# --------------------------------------------------------------------------- defect 13: side effects


def test_failed_data_load_leaves_no_files(tiny, tmp_path, monkeypatch):
    """Defect 13: a failed load used to leave a header-only CSV; now nothing at all (the folder it
    created is removed again), and an existing folder is left as it was."""

    def no_data(variant, root=None):
        raise DataError("MovieLens 100k not found (test)")

    monkeypatch.setattr(experiments, "_load_variant", no_data)
    with pytest.raises(DataError, match="not found"):
        experiments.run_experiment("tiny", tmp_path / "new" / "out", progress=False, threads=1)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="not found"):
        experiments.run_experiment("tiny", tmp_path, progress=False, threads=1)
    assert _files(tmp_path) == {"mine.txt": b"keep"}


def test_real_loader_failure_leaves_no_files(tmp_path):
    """The same with the MovieLens loader itself (a folder that holds no data)."""
    with pytest.raises(DataError, match="MovieLens 100k not found"):
        experiments.run_experiment("smoke", tmp_path / "out", progress=False, data_root=tmp_path / "nowhere")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_leaves_files_as_they_were(tiny, tmp_path, monkeypatch):
    """Defect 13: a full disk used to leave an empty NAME.json.tmp; now a failed write removes its
    temporary file, and a failed append is cut back to the last complete row."""
    out = tmp_path / "out"
    experiments.run_experiment("tiny", out, progress=False, threads=1, attempts=1)
    before = _files(out)

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results_file.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        experiments.run_experiment("tiny", out, progress=False, threads=1, attempts=2)
    assert _files(out) == before  # the appended rows were cut back, the JSON never replaced
    with pytest.raises(OSError, match="No space left"):
        results_file.atomic_write(out / "tiny.json", "{}")
    assert _files(out) == before


# --------------------------------------------------------------------------- faults and threads


@pytest.mark.filterwarnings("ignore::fmedu.movielens.results_file.ResultsWarning")
def test_simulated_crashes_at_random_write_points_resume_byte_identical(tiny, tmp_path, reference, monkeypatch):
    """A crash inside any write (part of the bytes on disk, then nothing) resumes to the reference
    bytes, at least 20 times in one process (the SIGKILL test below does the same with real processes)."""

    class Crash(BaseException):
        pass

    rng = random.Random(2024)
    append, atomic = results_file.append_rows, results_file.atomic_write
    state = {"count": 0, "at": 0}

    def crashing_append(path, rows):
        state["count"] += 1
        if state["count"] == state["at"] and path.exists() and path.stat().st_size:
            text = results_file.format_rows(rows)
            with open(path, "a") as fh:
                fh.write(text[: rng.randrange(len(text) + 1)])
            raise Crash
        return append(path, rows)

    def crashing_atomic(path, payload):
        state["count"] += 1
        if state["count"] == state["at"]:
            path.with_name(f".{path.name}.fmedu-999999-crash.tmp").write_text(
                str(payload)[: rng.randrange(len(payload) + 1)]
            )
            raise Crash
        return atomic(path, payload)

    monkeypatch.setattr(results_file, "append_rows", crashing_append)
    monkeypatch.setattr(results_file, "atomic_write", crashing_atomic)
    crashes = 0
    for trial in range(12):  # until at least 20 crashes have been resumed from
        if crashes >= 20:
            break
        out = tmp_path / f"t{trial}"
        while True:
            state["count"], state["at"] = 0, rng.randint(1, 6)
            try:
                experiments.run_experiment("tiny", out, progress=False, threads=1)
                break
            except Crash:
                crashes += 1
        assert (out / "tiny.csv").read_bytes() == reference
        assert sorted(p.name for p in out.iterdir()) == ["tiny.csv", "tiny.json"]
    assert crashes >= 20


def test_sigkill_at_random_points_resumes_byte_identical(tmp_path, reference):
    """SIGKILL inside random writes and at random moments of a small sweep, many times (real
    processes: the lock of a killed session is taken over); every resume ends with a CSV
    byte-identical to an uninterrupted run."""
    rng = random.Random(11)
    out = tmp_path / "out"
    kills = 0
    for attempt in range(7):
        external = attempt % 3 == 2
        env = {"SWEEP_SEED": str(attempt)}
        if not external:
            env["SWEEP_KILL_AT"] = str(rng.randint(1, 5))  # inside a write
        child = _child(out, env=env)
        if external:  # from outside, at a random moment (importing, training or writing); the
            # whole tiny sweep trains in about a second once imported, so within the first 3 s
            time.sleep(rng.uniform(0.5, 3.0))
            child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=300)
        assert child.returncode in (0, -signal.SIGKILL), err
        kills += child.returncode == -signal.SIGKILL
    last = _child(out)
    _, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    assert kills >= 4
    assert (out / "tiny.csv").read_bytes() == reference
    assert sorted(p.name for p in out.iterdir()) == ["tiny.csv", "tiny.json"]
    assert json.loads((out / "tiny.json").read_text())["runs_complete"] == RUNS


def test_same_seed_same_bytes_for_any_thread_count(tiny, tmp_path, reference):
    most = numba.config.NUMBA_NUM_THREADS
    if most < 2:
        pytest.skip("numba has one thread here: nothing to compare")
    experiments.run_experiment("tiny", tmp_path, progress=False, threads=most)
    assert (tmp_path / "tiny.csv").read_bytes() == reference
