"""fmedu.engine: every method's multi-run trajectory equals a plain single-run reference.

References: torch.optim (SGD, Adagrad, Adam) on fmedu.FactorizationMachine with autograd, and
repeated fmedu.prox.prox_step (exact, and freeze_V=True for the published semantics).
"""

import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import fmedu
from fmedu import engine, prox
from fmedu.errors import FMInputError

N_FEAT, K, M = 23, 4, 5  # n ≠ k, k ≥ 3


def synthetic(N=80, n=N_FEAT, m=M, seed=0, rare=True):
    """Padded one-hot-like data; features n-1 and n-2 appear in one sample each (rare rows)."""
    rng = np.random.default_rng(seed)
    common = n - 2 if rare else n
    nnz = rng.integers(1, m + 1, N)
    idx = -np.ones((N, m), np.int64)
    for r in range(N):
        idx[r, : nnz[r]] = np.sort(rng.choice(common, nnz[r], replace=False))
    if rare:
        idx[0, nnz[0] - 1] = n - 1
        idx[N // 2, nnz[N // 2] - 1] = n - 2
        for r in (0, N // 2):
            idx[r, : nnz[r]] = np.sort(idx[r, : nnz[r]])
    y = np.where(rng.random(N) < 0.35, 1.0, -1.0)
    return idx, nnz, y


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def held_out_loss(model, rows_t, y, rows):
    if len(rows) == 0:
        return np.nan
    with torch.no_grad():
        return np.mean([float(torch.nn.functional.softplus(-float(y[r]) * model(rows_t[r]))) for r in rows])


def reference(method, eta, seed, idx, nnz, y, epochs, train_rows, val_rows, n=N_FEAT, k=K, test_rows=()):
    """Single run, plain loop: torch.optim on the nn.Module, or repeated prox.prox_step."""
    w0, w, V = engine.init_params(seed, n, k)
    model = fmedu.FactorizationMachine(n, k)
    with torch.no_grad():
        model.w0.fill_(w0)
        model.w.copy_(torch.from_numpy(w))
        model.V.copy_(torch.from_numpy(V))
    opt = None
    if method == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=eta)
    elif method == "adagrad":
        opt = torch.optim.Adagrad(model.parameters(), lr=eta)
    elif method == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=eta)
    rows_t = [torch.from_numpy(idx[r, : nnz[r]].copy()) for r in range(len(y))]
    train_loss, val_loss, test_loss = [], [], []
    for e in range(epochs):
        total = 0.0
        for r in engine.epoch_permutation(seed, e, train_rows):
            ir, yr = rows_t[r], float(y[r])
            if opt is None:
                with torch.no_grad():
                    total += float(torch.nn.functional.softplus(-yr * model(ir)))
                    res = prox.prox_step(
                        ir, yr, model.w0.data, model.w.data, model.V.data, eta, freeze_V=(method == "prox-published")
                    )
                    model.w0.data, model.w.data, model.V.data = res.w0, res.w, res.V
            else:
                opt.zero_grad()
                loss = torch.nn.functional.softplus(-yr * model(ir))
                loss.backward()
                opt.step()
                total += float(loss.detach())
        train_loss.append(total / len(train_rows))
        val_loss.append(held_out_loss(model, rows_t, y, val_rows))
        test_loss.append(held_out_loss(model, rows_t, y, test_rows))
    reference.test_loss = np.array(test_loss)  # the test losses of the last call
    return (
        np.array(train_loss),
        np.array(val_loss),
        (float(model.w0.detach()), model.w.detach().numpy().copy(), model.V.detach().numpy().copy()),
    )


@pytest.mark.parametrize(
    "method,eta", [("prox", 0.2), ("prox-published", 0.2), ("sgd", 0.3), ("adagrad", 0.1), ("adam", 0.01)]
)
def test_engine_matches_single_run_reference(method, eta):
    idx, nnz, y = synthetic()
    train_rows, val_rows, test_rows = np.arange(16, 80), np.arange(8), np.arange(8, 16)
    seeds = [3, 4]
    runs = [engine.Run(method, eta, s) for s in seeds] + [engine.Run("sgd", 0.05, 9)]  # mixed batch
    res = engine.train_runs(
        runs,
        idx,
        nnz,
        y,
        n_features=N_FEAT,
        epochs=3,
        k=K,
        train_rows=train_rows,
        val_rows=val_rows,
        test_rows=test_rows,
    )
    for r, seed in enumerate(seeds):
        tl, vl, (w0, w, V) = reference(method, eta, seed, idx, nnz, y, 3, train_rows, val_rows, test_rows=test_rows)
        assert rel_err(res.train_loss[r], tl) <= 1e-12
        assert rel_err(res.val_loss[r], vl) <= 1e-12
        assert rel_err(res.test_loss[r], reference.test_loss) <= 1e-12
        e_w0, e_w, e_V = res.trainer.params(r)
        assert rel_err([e_w0], [w0]) <= 1e-12
        assert rel_err(e_w, w) <= 1e-12
        assert rel_err(e_V, V) <= 1e-12
    if method == "prox-published":  # E3: the latent vectors never move
        _, _, V_init = engine.init_params(seeds[0], N_FEAT, K)
        assert np.array_equal(res.trainer.params(0)[2], V_init)


def test_adam_lazy_catch_up_equals_dense_adam_across_step_37412():
    """40,000 steps (both regimes of fmedu.engine.adam): rare features' long zero-gradient tails
    are caught up in O(1); torch.optim.Adam moves every parameter at every step.

    A small step size keeps the dynamics tame: at lr = 0.02, rounding-level differences grow
    to ~1e-8 over these 40,000 steps between any two float64 implementations (torch against a
    dense numpy replay of its own formulas, too).
    """
    idx, nnz, y = synthetic(N=20_000, seed=1)
    runs = [engine.Run("adam", 0.005, 5)]
    res = engine.train_runs(runs, idx, nnz, y, n_features=N_FEAT, epochs=2, k=K)
    tl, _, (w0, w, V) = reference("adam", 0.005, 5, idx, nnz, y, 2, np.arange(20_000), np.arange(0))
    assert rel_err(res.train_loss[0], tl) <= 1e-12
    e_w0, e_w, e_V = res.trainer.params(0)
    assert rel_err(e_w, w) <= 1e-12 and rel_err(e_V, V) <= 1e-12 and rel_err([e_w0], [w0]) <= 1e-12
    # the rare rows really moved while untouched (Adam moves every parameter every step)
    _, w_init, _ = engine.init_params(5, N_FEAT, K)
    assert abs(e_w[N_FEAT - 1] - w_init[N_FEAT - 1]) > 1e-4


@given(
    B=st.floats(-5, 5),
    P=st.floats(0, 3),
    frac=st.floats(0, 1),
    d=st.integers(1, 11),
    y=st.sampled_from([-1.0, 1.0]),
    eta_frac=st.floats(0.01, 0.95),
)
@example(B=-3.0, P=2.25, frac=0.75, d=11, y=-1.0, eta_frac=0.375)  # Newton alone alternates here (test below)
def test_prox_z_solves_the_dual_optimality_condition(B, P, frac, d, y, eta_frac):
    A, C = P, frac * d * P  # ‖Σ v_i‖² ≤ d Σ‖v_i‖²
    eta = eta_frac * min(prox.step_size_bound(d, "exact", y), 1.0)
    z = engine.newton_z(B, A, C, d, eta, y)  # compiled
    s = prox.SampleScalars(B, A, C, d)
    assert 0.0 < z < 1.0
    # the compiled kernel and the interpreted source agree
    assert abs(z - prox.maximise_q_newton(s, y, eta)) <= 1e-14
    # q'(z*) = −y ŷ(θ(z*)) − logit z* = 0, with ŷ(θ(z)) in its eigenvalue form (mean and perp energies)
    lam_mean, lam_perp = prox.s_eigenvalues(d, eta, y, z)
    f = B + eta * y * z * (d + 1) + 0.5 * ((d - 1) * s.mean_energy / lam_mean**2 - s.perp_energy / lam_perp**2)
    assert abs(-y * f - math.log(z / (1 - z))) <= 1e-9 * (1 + abs(f))


def test_newton_alone_alternates_where_the_halving_rule_converges(monkeypatch):
    """A sample on which plain Newton steps jump between the two flat ends of g(t) and creep
    inwards: after 100 evaluations (the engine's cap) they are still far from the root. The
    halving rule of bracketed_newton reaches it in a few more than FREE_NEWTON evaluations,
    in each of the three iterations that use it (unpenalised, penalised, per-feature)."""
    from fmedu.engine import penalised
    from fmedu.prox import dual, scalar, step

    B, A, C, d, eta, y = -3.0, 2.25, 0.75 * 11 * 2.25, 11, 0.375, -1.0
    s = prox.SampleScalars(B, A, C, d)

    def residual(z):
        return abs(dual.q_prime(z, s, y, eta))

    def solve_three_ways():
        z_plain, n_plain = scalar.newton_z(B, A, C, float(d), eta, y, 100)
        z_pen, n_pen = penalised.newton_z(B, A, C, float(d), eta, y, 1.0, 1.0, 100)
        predict = lambda z: scalar.prediction_after(z, B, A, C, float(d), eta, y)
        try:
            z_feat = step._newton_per_feature(predict, y, -y * (B + 0.5 * (C - A)), max_iter=100)
        except FMInputError:
            z_feat = math.nan
        return (z_plain, n_plain), (z_pen, n_pen), z_feat

    (z, n), (z_pen, n_pen), z_feat = solve_three_ways()
    assert n <= scalar.FREE_NEWTON + 10 and n_pen <= scalar.FREE_NEWTON + 10
    assert residual(z) <= 1e-12 and residual(z_pen) <= 1e-12 and residual(z_feat) <= 1e-12
    assert engine.newton_z(B, A, C, d, eta, y) == z  # the compiled kernel takes the same steps

    monkeypatch.setattr(scalar, "FREE_NEWTON", 10**9)  # Newton steps only (the interpreted source)
    (z, n), (z_pen, n_pen), z_feat = solve_three_ways()
    assert n == 100 and n_pen == 100 and math.isnan(z_feat)  # the per-feature iteration refuses
    assert residual(z) > 1.0 and residual(z_pen) > 1.0


def test_z_iteration_converges_below_the_cap_on_a_random_sweep():
    """20,000 random samples below the bound (d 1..11, both labels, |B| up to ~30, A over five
    decades): each z-iteration ends at a root of q' within the engine's cap of evaluations."""
    from fmedu.engine.common import MAX_NEWTON
    from fmedu.prox import dual, scalar

    rng = np.random.default_rng(25)
    worst = 0
    for _ in range(20_000):
        d, y = int(rng.integers(1, 12)), float(rng.choice([-1.0, 1.0]))
        B = rng.normal() * 10 ** rng.uniform(-1, 1.5)
        A = 10 ** rng.uniform(-3, 2)
        C = rng.uniform(0, 1) * d * A
        eta = rng.uniform(0.01, 0.99) * min(prox.step_size_bound(d, "exact", y), 1.0)
        z, evaluations = scalar.newton_z(B, A, C, float(d), eta, y, MAX_NEWTON)
        worst = max(worst, evaluations)
        if z == 1.0:  # t* = logit z* beyond float64's sigmoid: −y ŷ(θ(z*)) = t* is that large
            assert -y * scalar.prediction_after(z, B, A, C, float(d), eta, y)[0] > 36.0
            continue
        s = prox.SampleScalars(B, A, C, d)
        # logit(z) of the float z is exact to about ε/(z(1 − z)): the returned z is σ(t*) rounded
        tolerance = 1e-9 * (1 + abs(B) + A + C) + 4 * scalar.EPS / (z * (1 - z))
        assert abs(dual.q_prime(z, s, y, eta)) <= tolerance, (B, A, C, d, y, eta)
    assert worst < MAX_NEWTON


def test_same_seed_same_numbers_and_different_seeds_differ():
    idx, nnz, y = synthetic()
    runs = [engine.Run("adagrad", 0.1, 1), engine.Run("adagrad", 0.1, 1), engine.Run("adagrad", 0.1, 2)]
    res = engine.train_runs(runs, idx, nnz, y, n_features=N_FEAT, epochs=2, k=K)
    assert np.array_equal(res.train_loss[0], res.train_loss[1])
    assert not np.array_equal(res.train_loss[0], res.train_loss[2])


def test_bad_inputs_raise_clear_errors():
    idx, nnz, y = synthetic()
    ok = dict(n_features=N_FEAT, epochs=1, k=K)
    with pytest.raises(FMInputError, match="unknown method"):
        engine.train_runs([engine.Run("lbfgs", 0.1, 0)], idx, nnz, y, **ok)
    with pytest.raises(FMInputError, match="positive and finite"):
        engine.train_runs([engine.Run("sgd", -1.0, 0)], idx, nnz, y, **ok)
    with pytest.raises(FMInputError, match="convexity bound"):
        engine.train_runs([engine.Run("prox", 0.3, 0)], idx, nnz, y, **ok)
    with pytest.raises(FMInputError, match=r"labels y must be in \{-1, \+1\}"):
        engine.train_runs([engine.Run("sgd", 0.1, 0)], idx, nnz, (y + 1) / 2, **ok)
    with pytest.raises(FMInputError, match="feature indices must lie"):
        engine.train_runs([engine.Run("sgd", 0.1, 0)], idx, nnz, y, n_features=5, epochs=1, k=K)
    with pytest.raises(FMInputError, match="epochs must be a positive int"):
        engine.train_runs([engine.Run("sgd", 0.1, 0)], idx, nnz, y, n_features=N_FEAT, epochs=0, k=K)
    with pytest.raises(FMInputError, match="runs is empty"):
        engine.train_runs([], idx, nnz, y, **ok)
    # beyond the bound is allowed explicitly (demonstrations)
    engine.train_runs([engine.Run("prox", 0.3, 0)], idx, nnz, y, allow_beyond_bound=True, **ok)


def test_held_out_rows_must_be_separate():
    idx, nnz, y = synthetic()
    ok = dict(n_features=N_FEAT, epochs=1, k=K)
    with pytest.raises(FMInputError, match="val_rows shares rows with train_rows"):
        engine.train_runs([engine.Run("sgd", 0.1, 0)], idx, nnz, y, train_rows=np.arange(50), val_rows=[49], **ok)
    with pytest.raises(FMInputError, match="val_rows and test_rows share rows"):
        engine.train_runs(
            [engine.Run("sgd", 0.1, 0)], idx, nnz, y, train_rows=np.arange(50), val_rows=[60], test_rows=[60], **ok
        )
    res = engine.train_runs([engine.Run("sgd", 0.1, 0)], idx, nnz, y, train_rows=np.arange(50), **ok)
    assert np.isnan(res.val_loss).all() and np.isnan(res.test_loss).all()  # no held-out rows: NaN


ONE = (np.array([[0, 1, -1]]), np.array([2]), np.array([1.0]))  # a one-sample data set


def test_out_of_range_val_rows_no_longer_crash_the_interpreter():
    """Defect 2 as reported: train_runs(..., val_rows=np.array([1])) on a one-sample data set ended
    the interpreter with a segmentation fault (exit 139); now it is an FMInputError."""
    code = (
        "import numpy as np\n"
        "from fmedu import engine\n"
        "from fmedu.errors import FMInputError\n"
        "try:\n"
        "    engine.train_runs([engine.Run('sgd', 0.1, 0)], np.array([[0, 1, -1]]), np.array([2]), np.array([1.0]),\n"
        "                      n_features=3, epochs=1, val_rows=np.array([1]))\n"
        "except FMInputError as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "refused: val_rows contains row 1, outside [0, 1) for a data set of 1 samples\n"


@pytest.mark.parametrize("backend", ["compiled", "gpu"])
@pytest.mark.parametrize(
    "rows, message",
    [
        ({"val_rows": np.array([1])}, "val_rows contains row 1, outside [0, 1)"),
        ({"val_rows": np.array([-1])}, "val_rows contains row -1, outside [0, 1)"),
        ({"train_rows": np.array([-1])}, "train_rows contains row -1, outside [0, 1)"),
        ({"train_rows": np.array([0, 0])}, "train_rows repeats a row"),
        ({"val_rows": [0, 0]}, "val_rows repeats a row"),
        ({"train_rows": np.array([0.0])}, "train_rows must be a 1-D array of integer row numbers"),
        ({"train_rows": np.array([True])}, "np.flatnonzero(mask)"),
        ({"train_rows": np.array([[0]])}, "train_rows must be a 1-D array"),
        ({"train_rows": np.array([2**63 + 1], np.uint64)}, "train_rows contains row 9223372036854775809"),
        ({"val_rows": np.array([255], np.uint8)}, "val_rows contains row 255"),
        ({"train_rows": np.array([], np.int64)}, "train_rows is empty"),
    ],
)
def test_every_row_array_is_checked_before_a_kernel(backend, rows, message):
    """Defect 2: train_rows and val_rows on both backends: in range (no wrap-around of negative
    rows), each row once, integers only (a boolean mask or floats are refused, not cast)."""
    if backend == "gpu":  # the GPU trainer's driver (run by numba-cuda's simulator without a GPU)
        make = pytest.importorskip("fmedu.engine.cuda").CudaTrainer
    else:
        make = engine.Trainer
    with pytest.raises(FMInputError, match=re.escape(message)):
        make([engine.Run("sgd", 0.1, 0)], *ONE, n_features=3, k=K, **rows)
    # held-out rows may not overlap the training rows: on this one-sample set they are empty
    make([engine.Run("sgd", 0.1, 0)], *ONE, n_features=3, k=K, train_rows=np.array([0], np.uint8), val_rows=[])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"idx": np.array([[0.0, 1.7, -1.0]])}, "idx must hold integers, got dtype float64"),
        ({"idx": np.array([[True, False, False]]), "nnz": np.array([1])}, "idx must hold integers, got dtype bool"),
        ({"nnz": np.array([2.7])}, "nnz must hold integers"),
        ({"idx": np.array([[1, 1, -1]])}, "sample 0 repeats a feature index"),
        ({"y": np.array([True])}, "labels y must be numbers"),
        ({"idx": np.zeros((0, 3), np.int64), "nnz": np.zeros(0, np.int64), "y": np.zeros(0)}, "data set is empty"),
        ({"n_features": 0}, "n_features must be a positive integer, got 0"),
        ({"n_features": True}, "n_features must be a positive integer, got True"),
        ({"k": 0}, r"k \(factorization dimension\) must be a positive integer, got 0"),
        ({"k": -2}, r"k \(factorization dimension\) must be a positive integer, got -2"),
        ({"init_std": float("nan")}, "init_std must be a finite number >= 0, got nan"),
        ({"init_std": -0.1}, "init_std must be a finite number >= 0"),
        ({"runs": [("sgd", 0.1, 0)]}, r"runs must hold fmedu.engine.Run\(method, eta, seed\) objects"),
        ({"runs": [engine.Run("sgd", "0.1", 0)]}, "step size eta must be a positive finite number, got '0.1'"),
        ({"runs": [engine.Run("sgd", 0.1, -1)]}, "seed must be a non-negative integer, got -1"),
        ({"epochs": 1.0}, "epochs must be a positive int, got 1.0"),
    ],
)
def test_engine_inputs_are_refused_not_cast(change, message):
    """Siblings of defect 2: what np.asarray(..., int64) would truncate (floats, booleans), repeated
    features within a sample, and settings numpy would reject with a raw error."""
    kw = dict(runs=[engine.Run("sgd", 0.1, 0)], idx=ONE[0], nnz=ONE[1], y=ONE[2], n_features=3, epochs=1, k=K)
    kw.update(change)
    runs, idx, nnz, y = (kw.pop(key) for key in ("runs", "idx", "nnz", "y"))
    with pytest.raises(FMInputError, match=message):
        engine.train_runs(runs, idx, nnz, y, **kw)


def test_run_index_out_of_range_is_refused_not_wrapped():
    idx, nnz, y = synthetic(N=50, seed=3)
    trainer = engine.make_trainer([engine.Run("sgd", 0.01, s) for s in range(3)], idx, nnz, y, n_features=N_FEAT, k=K)
    assert trainer.params(np.int64(2))[1].shape == (N_FEAT,)
    for bad in (-1, 3, 1.0, True):
        with pytest.raises(FMInputError, match=r"run index must be an integer from 0 to 2"):
            trainer.params(bad)


def test_numpy_integers_are_integers():
    res = engine.train_runs(
        [engine.Run("sgd", np.float64(0.1), np.int64(0))], *ONE, n_features=np.int64(3), epochs=np.int64(2), k=K
    )
    assert res.train_loss.shape == (1, 2)


def test_prox_published_refuses_the_step_the_exact_prox_refuses():
    """Defect 12: the engine's prox-published accepted eta = 5 at d = 3 where
    prox_step(freeze_V=True) refuses it; both now apply the exact bound 1/(d-1) = 0.5."""
    idx, nnz, y = np.array([[0, 1, 2]]), np.array([3]), np.array([1.0])
    w0, w, V = engine.init_params(0, 3, K)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float64)
    with pytest.raises(FMInputError, match="convexity bound"):
        prox.prox_step(torch.tensor([0, 1, 2]), 1.0, as_t(w0), as_t(w), as_t(V), 5.0, freeze_V=True)
    for method in ("prox", "prox-published"):
        with pytest.raises(
            FMInputError, match=rf"{method} step size eta=5 is not below the convexity bound 1/\(d-1\) = 0.5"
        ):
            engine.train_runs([engine.Run(method, 5.0, 0)], idx, nnz, y, n_features=3, epochs=1, k=K)


def test_cached_cpu_kernels_are_stamped_with_every_source_they_compile():
    """numba checks a cached kernel against its own file only; the CPU kernels inline the shared
    pieces of other files, so their cache stamp is a digest of all of those files."""
    from fmedu.engine import cpu

    locator = cpu._epoch_kernel._cache._impl.locator
    assert isinstance(locator, cpu._EngineSourcesLocator)
    assert locator.get_source_stamp() == cpu._sources_digest()
    assert cpu._EngineSourcesLocator.from_function(math.sqrt, engine.__file__) is None  # only cpu.py's kernels


@pytest.mark.parametrize("R, threads", [(50, 2), (10, 3), (5, 2), (1, 2), (3, 8), (7, 1)])
def test_the_threads_take_the_runs_in_turn(R, threads):
    """A sweep lists runs step size by step size; prange gives each thread one contiguous block
    of the schedule, and each block must be runs t, t + T, t + 2T, ... (T = min(threads, R)), so
    that every thread gets a share of every step size."""
    from fmedu.engine.cpu import run_schedule

    schedule = run_schedule(R, threads)
    assert sorted(schedule.tolist()) == list(range(R))
    T = min(threads, R)
    blocks = np.split(schedule, np.cumsum([len(range(t, R, T)) for t in range(T)])[:-1])
    assert [b.tolist() for b in blocks] == [list(range(t, R, T)) for t in range(T)]


def test_prange_deals_the_schedule_out_in_contiguous_blocks():
    """What run_schedule relies on: with T threads, numba's prange gives thread t the t-th
    contiguous block, so thread t trains runs t, t + T, ... (read back with numba.get_thread_id)."""
    import numba

    from fmedu.engine.cpu import run_schedule

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")

    @numba.njit(parallel=True)
    def thread_of_run(schedule, out):
        for q in numba.prange(schedule.shape[0]):
            out[schedule[q]] = numba.get_thread_id()

    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        out = np.full(50, -1)
        thread_of_run(run_schedule(50, 2), out)
    finally:
        numba.set_num_threads(before)
    assert set(out[0::2]) | set(out[1::2]) == {0, 1}
    assert len(set(out[0::2])) == 1 and len(set(out[1::2])) == 1
