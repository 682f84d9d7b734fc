"""Nothing lost, nothing silent: results files are replaced only whole and atomically, only the
package's own temporary files are removed, a bad --out or a missing dependency is reported before
any work, and every refusal says what was wrong and how to fix it."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fmedu.__main__ import main
from fmedu.errors import FMInputError, ResultsError
from fmedu.movielens import peers, results_file
from fmedu.paths import check_output_folder, describe_os_error, output_folder

ROOT = Path(__file__).resolve().parents[1]


def _status(capsys, argv) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return int(code or 0), err


# --------------------------------------------------------------------------- loss: peers


def _no_myfm():
    raise ImportError("No module named 'myfm'")


def test_peers_without_the_extra_write_nothing(monkeypatch, tmp_path, capsys):
    """A missing dependency is found before anything is written: existing results are kept byte
    for byte, and a new --out folder is not even created."""
    monkeypatch.setattr(peers, "_import_myfm", _no_myfm)
    out = tmp_path / "results"
    out.mkdir()
    before = {"peers.csv": b"model,setting\nkept,1\n", "peers.json": b'{"kept": true}\n'}
    for name, data in before.items():
        (out / name).write_bytes(data)
    code, err = _status(capsys, ["peers", "--out", str(out), "--no-progress"])
    assert code == 2
    assert "myfm" in err and "pip install -e '.[peers]'" in err and "nothing was written" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    fresh = tmp_path / "new" / "deeper"
    code, _ = _status(capsys, ["peers", "--out", str(fresh), "--no-progress"])
    assert code == 2
    assert not (tmp_path / "new").exists()


def test_failed_peers_run_leaves_no_partial_files(monkeypatch, tmp_path):
    """A run that fails after its first model leaves neither a partial CSV nor a new folder."""
    monkeypatch.setattr(peers, "check_dependencies", lambda: None)

    def broken(*args, **kwargs):
        raise ResultsError("logistic regression (C=1) did not converge in 1 iterations")

    monkeypatch.setattr(peers, "fit_logistic", broken)
    out = tmp_path / "fresh"
    config = peers.PeerConfig(lr_C=(1.0,), fm_ranks=(), fm_seeds=(), blog_attempts=(), subset=50)
    with pytest.raises(ResultsError, match="did not converge"):
        peers.run_peers(out, config, progress=False)
    assert not out.exists()


# --------------------------------------------------------------------------- loss: temporaries


def test_only_the_packages_own_temporaries_are_removed(tmp_path):
    mine = tmp_path / f".tiny.csv.{results_file.TEMP_TOKEN}-4242-abc_123.tmp"
    theirs = [
        tmp_path / ".tiny.csv.notes.tmp",
        tmp_path / ".tiny.csv.fmedu-x-1.tmp",
        tmp_path / ".tiny.csv.fmedu-12-a.tmp.bak",
        tmp_path / ".other.csv.fmedu-12-a.tmp",
    ]
    for p in [mine, *theirs]:
        p.write_text("x")
    results_file.remove_stale_temporaries(tmp_path, "tiny")
    assert not mine.exists()
    assert all(p.exists() for p in theirs)


@given(name=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,20}", fullmatch=True))
def test_atomic_write_temporaries_carry_the_token(name):
    """Property: every temporary name atomic_write can make is one remove_stale_temporaries knows,
    and a user's ``.NAME.*.tmp`` is never one."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        fd, tmp = tempfile.mkstemp(prefix=results_file._temp_prefix(name), suffix=".tmp", dir=folder)
        os.close(fd)
        pattern = results_file._temp_pattern(name)
        assert pattern.fullmatch(Path(tmp).name)
        assert not pattern.fullmatch(f".{name}.backup.tmp")


def test_atomic_write_follows_links(tmp_path):
    """A results file that is a link stays a link; its target gets the new content."""
    target_dir = tmp_path / "store"
    target_dir.mkdir()
    target = target_dir / "tiny.csv"
    target.write_text("old\n")
    link = tmp_path / "tiny.csv"
    link.symlink_to(target)
    results_file.atomic_write(link, "new\n")
    assert link.is_symlink()
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in target_dir.iterdir()) == ["tiny.csv"]


# --------------------------------------------------------------------------- line endings


def test_crlf_results_are_refused_with_the_fix(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_bytes(results_file.HEADER.replace("\n", "\r\n").encode())
    with pytest.raises(ResultsError, match=r"line 1: Windows \(CRLF\) line endings.*dos2unix"):
        results_file.load_results(path)


def test_gitattributes_keep_results_byte_exact():
    out = subprocess.run(
        ["git", "check-attr", "text", "results/peers.csv", "results/anything/x.csv", "figures/01_cost_vs_n.csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [
        "results/peers.csv: text: unset",
        "results/anything/x.csv: text: unset",
        "figures/01_cost_vs_n.csv: text: unset",
    ]


# --------------------------------------------------------------------------- --out


def test_empty_out_is_refused(capsys):
    for command in (["figures"], ["peers"], ["experiment", "tiny"]):
        code, err = _status(capsys, [*command, "--out", ""])
        assert code == 2
        assert "--out is empty; name a folder" in err


def test_out_that_is_a_file_is_refused_before_computing(monkeypatch, tmp_path, capsys):
    from fmedu import registry

    monkeypatch.setattr(registry, "generate", lambda *a, **k: pytest.fail("computed before checking --out"))
    blocker = tmp_path / "plain"
    blocker.write_text("x")
    code, err = _status(capsys, ["figures", "--out", str(blocker)])
    assert code == 2
    assert f"--out {blocker} is a file, not a folder" in err
    code, err = _status(capsys, ["figures", "--out", str(blocker / "sub")])
    assert code == 2
    assert f"{blocker} is a file, so no folder can be made under it" in err


def test_self_referencing_link_is_refused(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(FMInputError, match="symbolic link"):
        check_output_folder(loop)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_out_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(FMInputError, match=r"cannot write to .*ro \(permission denied\)"):
            check_output_folder(folder / "results")
    finally:
        folder.chmod(0o755)


def test_output_folder_removes_only_what_it_made_and_left_empty(tmp_path):
    with pytest.raises(RuntimeError), output_folder(tmp_path / "a" / "b"):
        raise RuntimeError("failed")
    assert not (tmp_path / "a").exists()
    with output_folder(tmp_path / "c") as folder:
        (folder / "kept.csv").write_text("x")
    assert (tmp_path / "c" / "kept.csv").exists()


def test_figures_only_needs_a_prefix(capsys):
    code, err = _status(capsys, ["figures", "--only"])
    assert code == 2
    assert "argument --only: expected at least one argument" in err


def test_os_errors_name_the_path_and_a_fix():
    import errno

    error = OSError(errno.EEXIST, "File exists", "/tmp/out")
    assert describe_os_error(error) == (
        "cannot use /tmp/out: File exists; a file of that name is in the way: move it, or pass another --out folder"
    )
    error = OSError(errno.ENOSPC, "No space left on device")
    assert describe_os_error(error, "results") == (
        "cannot use results: No space left on device; the disk is full: free some space (finished work is kept) "
        "and run the command again"
    )


# --------------------------------------------------------------------------- documented variables


def test_data_tests_pass_with_a_mirror_configured(tmp_path):
    """The README tells users whose network cannot reach the official address to set
    FMEDU_MOVIELENS_URL: the data tests must pass with it set (here to a file:// mirror that does
    not exist, so nothing is downloaded)."""
    env = {**os.environ, "FMEDU_MOVIELENS_URL": (tmp_path / "mirror" / "ml-100k.zip").as_uri()}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_data.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


# --------------------------------------------------------------------------- silent: counts


def test_complete_results_are_checked_against_the_data(monkeypatch, tmp_path):
    """A finished results file whose n_train / n_val / n_test disagree with the data is refused
    even when no run is left to do (it used to be accepted then, and refused with one run missing)."""
    import sweep_driver

    from fmedu.movielens import experiments

    sweep_driver.install(monkeypatch)
    out = tmp_path / "out"
    prov = experiments.run_experiment("tiny", out, progress=False)
    assert prov["runs_complete"] == prov["runs_total"] == 14
    before = (out / "tiny.csv").read_bytes()

    def fewer_test_rows(variant, root=None):
        *head, test_rows = sweep_driver.tiny_data(variant, root)
        return (*head, test_rows[:-1])

    monkeypatch.setattr(experiments, "_load_variant", fewer_test_rows)
    with pytest.raises(ResultsError, match=r"finished runs of variant syn were trained on n_train, n_val, n_test"):
        experiments.run_experiment("tiny", out, progress=False)
    assert (out / "tiny.csv").read_bytes() == before


# --------------------------------------------------------------------------- lenient checks, devices


@pytest.mark.parametrize("name", ["logistic_loss", "logistic_loss_derivative", "hinge_loss", "hinge_loss_derivative"])
def test_margin_losses_refuse_zero_one_labels(name):
    import torch

    import fmedu

    fn = getattr(fmedu.losses, name)
    y_hat = torch.tensor([0.3, -0.2], dtype=torch.float64)
    with pytest.raises(FMInputError, match=r"y must take values in \{1\.0, -1\.0\}, found 0\.0; map \{0, 1\}"):
        fn(y_hat, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert fn(y_hat, torch.tensor([1.0, -1.0], dtype=torch.float64)).shape == (2,)


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), True, "0.01"])
def test_model_init_std_is_checked_like_the_engine(bad):
    from fmedu import FactorizationMachine

    with pytest.raises(FMInputError, match="init_std must be a finite number >= 0"):
        FactorizationMachine(5, 3, init_std=bad)


def test_meta_and_mixed_device_tensors_get_fmedus_error():
    import torch

    import fmedu

    n, k = 5, 3
    w0 = torch.zeros((), dtype=torch.float64)
    w = torch.zeros(n, dtype=torch.float64)
    V = torch.zeros(n, k, dtype=torch.float64)
    x = torch.ones(n, dtype=torch.float64)
    with pytest.raises(FMInputError, match=r"V is a 'meta' tensor \(a shape without data\)"):
        fmedu.predict(x, w0, w, V.to("meta"))
    with pytest.raises(FMInputError, match=r"x is a 'meta' tensor"):
        fmedu.predict(x.to("meta"), w0, w, V)
    idx = torch.tensor([0, 2])
    with pytest.raises(FMInputError, match=r"idx is a 'meta' tensor"):
        fmedu.predict_sparse(idx.to("meta"), w0, w, V)
    if torch.cuda.is_available():
        with pytest.raises(FMInputError, match=r"inputs are on different devices \(x on cuda:0, V on cpu\)"):
            fmedu.predict(x.cuda(), w0, w, V)


def test_dense_sparse_conversions_refuse_bad_inputs_in_words():
    import numpy as np
    import torch

    from fmedu import dense_to_sparse, sparse_to_dense

    with pytest.raises(FMInputError, match=r"x must be a torch.Tensor, got ndarray; convert it with torch.as_tensor"):
        dense_to_sparse(np.ones(4))
    with pytest.raises(FMInputError, match=r"x must have shape \(n,\) or \(batch, n\), got \(2, 2, 2\)"):
        dense_to_sparse(torch.ones(2, 2, 2, dtype=torch.float64))
    with pytest.raises(FMInputError, match=r"x is a 'meta' tensor"):
        dense_to_sparse(torch.ones(3, dtype=torch.float64, device="meta"))
    idx = torch.tensor([[0, 2], [1, -1]])
    val32 = torch.tensor([[1.0, 2.0], [3.0, 0.0]], dtype=torch.float32)
    with pytest.raises(FMInputError, match=r"val has dtype torch.float32 but the result is asked in torch.float64"):
        sparse_to_dense(idx, 4, val32)
    assert sparse_to_dense(idx, 4, val32, dtype=torch.float32).tolist() == [[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]]
    x = torch.tensor([[0.0, 1.5, 0.0, -2.0], [3.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    back_idx, back_val = dense_to_sparse(x)
    assert torch.equal(sparse_to_dense(back_idx, 4, back_val), x)


def test_engine_takes_tensors_that_require_grad_and_refuses_meta():
    """A y that requires grad (or lives on another device) is data, copied to the host; a meta tensor
    is refused with fmedu's own error instead of torch's internal one."""
    import numpy as np
    import sweep_driver
    import torch

    from fmedu import engine

    idx, nnz, y, n_features, train_rows, val_rows, test_rows = sweep_driver.tiny_data(None)
    common = dict(n_features=n_features, epochs=1, train_rows=train_rows, val_rows=val_rows, k=3)
    runs = [engine.Run("sgd", 0.05, 1)]
    plain = engine.train_runs(runs, idx, nnz, y, **common)
    y_grad = torch.tensor(y, requires_grad=True)
    as_tensor = engine.train_runs(runs, torch.from_numpy(idx), torch.from_numpy(nnz), y_grad, **common)
    assert np.array_equal(plain.val_loss, as_tensor.val_loss)
    with pytest.raises(FMInputError, match=r"y is a 'meta' tensor"):
        engine.train_runs(runs, idx, nnz, torch.tensor(y, device="meta"), **common)


def test_other_epoch_count_is_named_not_called_damage(monkeypatch, tmp_path):
    """--epochs 3 into a folder of 2-epoch runs says so, and how to resume, rather than 'damaged'."""
    import sweep_driver

    from fmedu.movielens import experiments

    sweep_driver.install(monkeypatch)
    out = tmp_path / "out"
    experiments.run_experiment("tiny", out, epochs=2, progress=False)
    with pytest.raises(ResultsError, match=r"its runs were trained for 2 epochs .*, not 3: pass --epochs 2") as info:
        experiments.run_experiment("tiny", out, epochs=3, progress=False)
    assert "damaged" not in str(info.value)


# --------------------------------------------------------------------------- one atomic writer


def _linked(tmp_path: Path, name: str, content: bytes) -> tuple[Path, Path]:
    """``tmp_path/out/name`` is a link to ``tmp_path/store/name``, which holds ``content``."""
    store, out = tmp_path / "store", tmp_path / "out"
    store.mkdir()
    out.mkdir()
    (store / name).write_bytes(content)
    (out / name).symlink_to(store / name)
    return out / name, store / name


def _fail_fsync(monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)


def test_figures_command_keeps_linked_figure_files(capsys, tmp_path):
    """`python -m fmedu figures` into a folder whose CSV and PNG are links: the links stay, their
    targets get the new figure, and no temporary file is left beside them."""
    csv_link, csv_target = _linked(tmp_path, "00_design_matrix.csv", b"stale\n")
    png_link = tmp_path / "out" / "00_design_matrix.png"
    png_target = tmp_path / "store" / "00_design_matrix.png"
    png_target.write_bytes(b"stale")
    png_link.symlink_to(png_target)
    code, err = _status(capsys, ["figures", "--only", "00_design", "--out", str(tmp_path / "out")])
    assert code == 0, err
    assert csv_link.is_symlink() and png_link.is_symlink()
    assert csv_target.read_bytes().startswith(b"row,")
    assert png_target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [
        "00_design_matrix.csv",
        "00_design_matrix.png",
    ]


def test_figure_writers_leave_the_old_file_when_a_write_fails(monkeypatch, tmp_path):
    """write_csv and save_png replace a file whole: a failure mid-write (a full disk) leaves the
    old bytes and no temporary file, through a link as well as on a plain file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmedu.registry import save_png, write_csv

    csv_link, csv_target = _linked(tmp_path, "a.csv", b"x,y\r\n1,2\r\n")
    plain = tmp_path / "out" / "b.png"
    plain.write_bytes(b"old png")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    _fail_fsync(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        write_csv(csv_link, [{"x": 3, "y": 4}])
    with pytest.raises(OSError, match="No space left"):
        save_png(fig, plain)
    plt.close(fig)
    assert csv_link.is_symlink() and csv_target.read_bytes() == b"x,y\r\n1,2\r\n"
    assert plain.read_bytes() == b"old png"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.csv", "b.png"]
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["a.csv"]
    monkeypatch.undo()
    write_csv(csv_link, [{"x": 3, "y": 4}])
    assert csv_link.is_symlink() and csv_target.read_bytes() == b"x,y\r\n3,4\r\n"


def test_regularised_writers_follow_links_and_lose_nothing(monkeypatch, tmp_path):
    """The regularised preset's writers: an append to a linked CSV that fails mid-write is cut
    back to the old bytes; cutting back a partial line or dropping rows replaces the link's target
    whole and keeps the link; a failed replacement leaves the old file."""
    from fmedu.movielens import regularised as reg

    columns = ["a", "b"]
    link, target = _linked(tmp_path, "r.csv", b"a,b\n1,2.5\n")
    reg._append(link, [{"a": 3, "b": 4.5}], columns)
    assert link.is_symlink() and target.read_bytes() == b"a,b\n1,2.5\n3,4.5\n"
    before = target.read_bytes()
    with monkeypatch.context() as m:
        _fail_fsync(m)
        with pytest.raises(OSError, match="No space left"):
            reg._append(link, [{"a": 5, "b": 6.5}], columns)
        assert target.read_bytes() == before
        target.write_bytes(before + b"7,8")  # a partial last line, as an interruption leaves it
        with pytest.raises(OSError, match="No space left"):
            reg._complete_prefix(link)
        assert target.read_bytes() == before + b"7,8"
        with pytest.raises(OSError, match="No space left"):
            reg._write_json(link.with_name("r.json"), {"sessions": []})
    reg._complete_prefix(link)
    assert link.is_symlink() and target.read_bytes() == before
    assert reg._keep_rows(link, columns, lambda row: row["a"] != 1) == 1
    assert link.is_symlink() and target.read_bytes() == b"a,b\n3,4.5\n"
    new = tmp_path / "store" / "r.json"
    (tmp_path / "out" / "r.json").symlink_to(new)
    reg._write_json(tmp_path / "out" / "r.json", {"sessions": []})
    assert (tmp_path / "out" / "r.json").is_symlink() and new.read_text() == '{\n "sessions": []\n}\n'
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["r.csv", "r.json"]


# --------------------------------------------------------------------------- finite outputs


def _large_model(seed: int, n: int, k: int, exponent: int):
    """x with entries in [0.5, 1.5] (all features present) and V with entries ±[0.5, 1.5]·10^exponent."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = 0.5 + torch.rand(3, n, generator=gen, dtype=torch.float64)
    sign = torch.where(torch.rand(n, k, generator=gen) < 0.5, -1.0, 1.0).double()
    V = sign * (0.5 + torch.rand(n, k, generator=gen, dtype=torch.float64)) * 10.0**exponent
    w = torch.rand(n, generator=gen, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    return x, y, torch.tensor(0.25, dtype=torch.float64), w, V


def _outputs_or_overflow(fn) -> tuple | None:
    """The outputs of ``fn()``, or None when it raised fmedu's overflow error (any other error fails)."""
    import torch

    try:
        out = fn()
    except FMInputError as error:
        assert "overflowed to" in str(error) and "although every input is finite" in str(error), error
        return None
    outs = out if isinstance(out, tuple) else (out,)
    assert all(bool(torch.isfinite(t).all()) for t in outs)  # never a silent inf or NaN
    return outs


@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 6),
    k=st.integers(3, 4),
    exponent=st.integers(0, 300),
)
def test_public_entries_never_return_non_finite_outputs(seed, n, k, exponent):
    """Property: for finite inputs with large-but-finite V, predict, predict_sparse, the gradients
    of ŷ and the batch loss gradients (dense and sparse) return finite tensors or raise fmedu's
    overflow error. Below 10^100 they must succeed (logistic loss); from 10^160 the term
    Σ_i v_if² x_i² ≥ 0.0625·n·10^320 overflows float64, so prediction must raise."""
    import fmedu
    from fmedu import grad

    x, y, w0, w, V = _large_model(seed, n, k, exponent)
    idx = _all_features(x.shape[0], n)
    entries = {
        "predict": lambda: fmedu.predict(x, w0, w, V),
        "predict_naive": lambda: fmedu.predict_naive(x, w0, w, V),
        "predict_sparse": lambda: fmedu.predict_sparse(idx, w0, w, V, x),
        "predict_grad": lambda: grad.predict_grad(x, w0, w, V),
        "predict_grad_sparse": lambda: grad.predict_grad_sparse(idx, w0, w, V, x),
        "batch_loss_grad": lambda: grad.batch_loss_grad(x, y, w0, w, V, "logistic"),
        "batch_loss_grad_sparse": lambda: grad.batch_loss_grad_sparse(idx, y, w0, w, V, "logistic", val=x),
        "autograd_batch_grad": lambda: grad.autograd_batch_grad(y, w0, w, V, "logistic", x=x),
    }
    results = {name: _outputs_or_overflow(fn) for name, fn in entries.items()}
    if exponent <= 100:
        assert all(r is not None for r in results.values()), results
    if exponent >= 160:
        for name in ("predict", "predict_naive", "predict_sparse", "batch_loss_grad", "batch_loss_grad_sparse"):
            assert results[name] is None, name


def _all_features(batch: int, n: int):
    """Every feature present in every row: idx[b] = 0 … n−1 (the sparse twin of a dense x)."""
    import torch

    return torch.arange(n).repeat(batch, 1)


def test_a_diverging_training_run_raises_at_the_step_that_overflowed():
    """Finite data, a step size far too large: both backends stop with fmedu's overflow error that
    names the step and lr, instead of returning NaN parameters and a NaN history."""
    import torch

    from fmedu.train import evaluate, train

    gen = torch.Generator().manual_seed(1)
    X = torch.randn(40, 5, generator=gen, dtype=torch.float64) * 1e50
    y = torch.randn(40, generator=gen, dtype=torch.float64)
    for backend in ("closed-form", "autograd"):
        with pytest.raises(FMInputError, match=r"after step \d+ \(epoch 1\) overflowed .* lr=1e\+120 is too large"):
            train(X, y, X, y, k=3, lr=1e120, epochs=3, init_std=1e-60, backend=backend)
    # the same data with a small step trains to finite parameters
    result = train(X[:, :2] * 1e-50, y, X[:, :2] * 1e-50, y, k=3, lr=1e-2, epochs=2)
    assert all(math.isfinite(row["train_loss"]) for row in result.history)
    # evaluate of finite parameters whose prediction overflows refuses too
    w = torch.zeros(5, dtype=torch.float64)
    V = torch.full((5, 3), 1e200, dtype=torch.float64)
    with pytest.raises(FMInputError, match="the prediction y_hat overflowed"):
        evaluate(X * 1e-50, y, torch.tensor(0.0, dtype=torch.float64), w, V, "squared")
    V = torch.full((5, 3), 1e100, dtype=torch.float64)
    with pytest.raises(FMInputError, match="the mean loss overflowed"):
        evaluate(X * 1e-50, y, torch.tensor(0.0, dtype=torch.float64), w, V, "squared")


def test_regularised_preset_removes_only_its_own_stale_temporaries(tmp_path):
    """The regularised preset, like the experiments, clears the temporaries of a killed session of
    its own files (all four CSVs and the JSON) and nothing else; a damaged provenance file is
    refused as damaged, naming it, before any data is loaded, and left as it was."""
    from fmedu.movielens import regularised as reg

    name = "regularised-smoke"
    token = results_file.TEMP_TOKEN
    stale = [
        f".{name}{s}.{token}-4242-abc_1.tmp" for s in (".csv", "-peers.csv", "-summary.csv", "-folds.csv", ".json")
    ]
    foreign = [f".{name}-summary.csv.backup.tmp", f".other.csv.{token}-4242-abc_1.tmp", "notes.txt"]
    for file in stale + foreign:
        (tmp_path / file).write_text("x\n")
    (tmp_path / f"{name}.json").write_text("{ damaged")
    with pytest.raises(ResultsError, match=rf"{name}\.json is damaged"):
        reg.run(name, tmp_path)
    assert (tmp_path / f"{name}.json").read_text() == "{ damaged"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*foreign, f"{name}.json"])
