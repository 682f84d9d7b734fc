"""The command line refuses bad values with one clear line and exit status 2: never a default in
their place, never a traceback (``python -m fmedu ...`` is ``fmedu.__main__.main``)."""

import pytest
import sweep_driver

from fmedu import engine, notebook
from fmedu.__main__ import main
from fmedu.errors import FMInputError


def _refused(capsys, argv) -> str:
    """Run the command line; it must exit with status 2. Returns its stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--attempts", "0"], "argument --attempts: 0 is not a positive integer"),
        (["--attempts", "-1"], "argument --attempts: -1 is not a positive integer"),
        (["--attempts", "two"], "argument --attempts: 'two' is not an integer"),
        (["--epochs", "0"], "argument --epochs: 0 is not a positive integer"),
        (["--threads", "0"], "argument --threads: 0 is not a positive integer"),
        (["--methods", "prox", "bogus"], "error: unknown method(s) bogus; choose from prox, prox-published"),
        (["--methods"], "argument --methods: expected at least one argument"),
    ],
)
def test_command_line_values_are_refused_not_replaced(monkeypatch, tmp_path, capsys, args, message):
    """Defect 7: --attempts 0 / --epochs 0 used to fall back to the defaults, --attempts -1 reported
    "0/0 runs" and exited 0, and --methods prox bogus dropped bogus. Nothing is written either."""
    sweep_driver.install(monkeypatch)
    err = _refused(capsys, ["experiment", "tiny", "--out", str(tmp_path / "out"), "--no-progress", *args])
    assert message in err
    assert not (tmp_path / "out").exists()


def test_command_line_without_a_preset_name(capsys):
    err = _refused(capsys, ["experiment"])
    assert "error: name a preset: smoke," in err


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "2 threads"])
def test_bad_fmedu_threads_is_one_clear_error(monkeypatch, capsys, value):
    """Defect 8: FMEDU_THREADS=0, -1 or abc ended in a raw traceback."""
    monkeypatch.setenv("FMEDU_THREADS", value)
    err = _refused(capsys, ["experiment", "--list"])
    assert err == f"error: $FMEDU_THREADS must be a positive integer number of threads, got {value!r}\n"
    with pytest.raises(FMInputError, match=r"\$FMEDU_THREADS must be a positive integer"):
        engine.set_threads()
    with pytest.raises(FMInputError, match=r"\$FMEDU_THREADS must be a positive integer"):
        notebook.setup()


def test_thread_counts_are_checked_not_clamped(monkeypatch):
    """--threads 0 used to be clamped to 1 silently; too many threads are refused with the maximum."""
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    for bad in (0, -3, most + 1, 1.5, True, "many"):
        with pytest.raises(FMInputError, match="threads"):
            engine.set_threads(bad)
    monkeypatch.setenv("FMEDU_THREADS", str(most + 1))
    with pytest.raises(FMInputError, match=rf"\$FMEDU_THREADS = {most + 1} exceeds the {most} threads available"):
        engine.set_threads()
    monkeypatch.setenv("FMEDU_THREADS", " 1 ")
    assert engine.set_threads() == 1
    monkeypatch.delenv("FMEDU_THREADS")
    assert engine.set_threads() == most
    assert engine.set_threads(1) == 1


def test_library_errors_are_one_line_on_the_command_line(monkeypatch, tmp_path, capsys):
    """A library refusal (here: a results file of another preset) is printed, not raised."""
    sweep_driver.install(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny.csv").write_text("not,a,results,file\n")
    err = _refused(capsys, ["experiment", "tiny", "--out", str(out), "--no-progress"])
    assert err.startswith(f"error: {out / 'tiny.csv'}, line 1: 'not,a,results,file' is not the results header")
    assert (out / "tiny.csv").read_text() == "not,a,results,file\n"


def test_system_errors_are_one_line_on_the_command_line(monkeypatch, tmp_path, capsys):
    """A results folder that cannot be written (here: --out names a folder below a file) is refused
    before any work, in one line that names the path and the fix."""
    sweep_driver.install(monkeypatch)
    (tmp_path / "plain").write_text("a file")
    code = main(["experiment", "tiny", "--out", str(tmp_path / "plain" / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err == (
        f"error: --out {tmp_path / 'plain' / 'out'}: {tmp_path / 'plain'} is a file, so no folder can be made "
        "under it; name another folder\n"
    )
