"""fmedu.engine.cuda: the GPU kernels give every run's trajectory of the CPU engine.

Without a GPU the kernels run in numba-cuda's simulator (tests/conftest.py sets
NUMBA_ENABLE_CUDASIM=1), which executes the same kernel source on the CPU: there every record
and every final parameter must equal the CPU engine's to 1e-12 relative (they agree to the last
bit: the same per-sample source, the same order of every sum). On a real GPU
(``make test-gpu``, FMEDU_GPU_TESTS=1) the compiler contracts multiply-adds into fused ones,
so the same comparison uses a stated tolerance of 1e-9 relative on these short runs.

Under FMEDU_GPU_TESTS=1 every test here *fails*, naming the problem, when numba-cuda is missing
or no GPU is usable (no driver, a driver too old for CUDA 13, no device): a broken GPU host must
not pass as a row of skips. Elsewhere those cases skip.
"""

import os

import numpy as np
import pytest
from test_engine import N_FEAT, rel_err, synthetic

from fmedu import engine
from fmedu.errors import FMInputError

GPU_TESTS = os.environ.get("FMEDU_GPU_TESTS") == "1"


def _gpu_problem(cuda_engine) -> str | None:
    """What keeps the kernels from running here, in the driver's words; None when they can."""
    if cuda_engine.simulator():
        return None
    try:
        cuda_engine.cuda.current_context()  # initialises the driver and the first device
    except Exception as error:  # numba-cuda's CudaSupportError, CudaDriverError, ...
        return f"{type(error).__name__}: {' '.join(str(error).split())}"
    return None


try:
    from fmedu.engine import cuda as cuda_engine
except Exception as error:  # numba-cuda missing or unusable
    if not GPU_TESTS:
        pytest.skip(f"numba-cuda is not installed (pip install -e '.[cuda]'): {error}", allow_module_level=True)
    cuda_engine, PROBLEM = None, f"fmedu.engine.cuda cannot be imported: {type(error).__name__}: {error}"
else:
    PROBLEM = _gpu_problem(cuda_engine)
    if PROBLEM and not GPU_TESTS:
        pytest.skip(f"neither a CUDA GPU nor the numba-cuda simulator is usable: {PROBLEM}", allow_module_level=True)


@pytest.fixture(autouse=True)
def _usable_gpu():
    """Under FMEDU_GPU_TESTS=1, fail (not skip) every test when the GPU cannot run the kernels."""
    if PROBLEM:
        pytest.fail(f"FMEDU_GPU_TESTS=1 but the GPU cannot run the kernels: {PROBLEM}", pytrace=False)


SIMULATOR = cuda_engine is not None and cuda_engine.simulator()
TOLERANCE = 1e-12 if SIMULATOR else 1e-9
K = 4
METHOD_ETAS = (("prox", 0.2), ("prox-published", 0.2), ("sgd", 0.3), ("adagrad", 0.1), ("adam", 0.01))


def _compare(runs, lanes, epochs=2, N=40, seed=0, m=None, **rows):
    idx, nnz, y = synthetic(N=N, seed=seed) if m is None else synthetic(N=N, seed=seed, m=m)
    kw = dict(n_features=N_FEAT, k=K, **rows)
    cpu = engine.Trainer(runs, idx, nnz, y, **kw)
    gpu = cuda_engine.CudaTrainer(runs, idx, nnz, y, lanes=lanes, **kw)
    for _ in range(epochs):
        a, b = cpu.epoch(), gpu.epoch()
        for key in ("train_loss", "val_loss", "test_loss", "v_rms", "w0"):
            if np.isnan(a[key]).all():
                assert np.isnan(b[key]).all(), key
            else:
                assert rel_err(b[key], a[key]) <= TOLERANCE, key
    for r in range(len(runs)):
        for pa, pb in zip(cpu.params(r), gpu.params(r)):
            assert rel_err(np.atleast_1d(pb), np.atleast_1d(pa)) <= TOLERANCE
    return cpu, gpu


@pytest.mark.parametrize("lanes", [32, 3])
def test_every_method_matches_the_cpu_engine(lanes):
    """Five methods in one launch; 32 lanes (a warp: one column each) and 3 (fewer than k + 1 columns)."""
    runs = [engine.Run(m, eta, s) for m, eta in METHOD_ETAS for s in (1, 2)]
    rows = dict(train_rows=np.arange(16, 40), val_rows=np.arange(8), test_rows=np.arange(8, 16))
    _compare(runs, lanes, epochs=3, **rows)


@pytest.mark.parametrize("lanes", [32, 3])
def test_penalties_decay_and_the_linearised_ablation_match_the_cpu_engine(lanes):
    """Per-touch L2 penalties and a decaying step for every method, and prox-linearised, in one launch."""
    runs = [engine.Run(m, eta, s, lam_w=0.05, lam_v=0.2, decay=0.8) for m, eta in METHOD_ETAS for s in (1, 2)]
    runs.append(engine.Run("prox-linearised", 0.2, 3, lam_v=0.1))
    rows = dict(train_rows=np.arange(16, 40), val_rows=np.arange(8), test_rows=np.arange(8, 16))
    _compare(runs, lanes, epochs=3, **rows)


@pytest.mark.parametrize("lanes", [32, 8])
def test_long_samples_take_the_general_path_and_agree(lanes):
    """Samples of up to D_REG + 3 rows mixed with short ones: a sample whose rows do not fit the
    registers (d > D_REG) or the lanes (d > lanes) takes the general path, the others the
    registers path, within one epoch; every record and parameter still matches the CPU's."""
    idx, nnz, _ = synthetic(N=30, seed=2, m=cuda_engine.D_REG + 3)
    assert (nnz > cuda_engine.D_REG).any() and (nnz <= min(lanes, cuda_engine.D_REG)).any()
    etas = dict(METHOD_ETAS, prox=0.03, **{"prox-published": 0.03})  # below 1/(2·15 + 1)
    runs = [engine.Run(m, eta, 1) for m, eta in etas.items()]
    _compare(runs, lanes, epochs=2, N=30, seed=2, m=cuda_engine.D_REG + 3)


def test_adam_alone_and_without_held_out_rows():
    """A launch with one method only (the other methods' state is a placeholder) and no held-out rows."""
    runs = [engine.Run("adam", 0.05, 3), engine.Run("adam", 0.002, 4)]
    cpu, _ = _compare(runs, lanes=8, epochs=3, N=30)
    assert np.isnan(cpu.epoch()["val_loss"]).all()


def test_rare_rows_are_caught_up_on_the_gpu():
    """Features seen once (rows 0 and N/2) are caught up only at the end of each epoch."""
    runs = [engine.Run("adam", 0.02, 5)]
    _, gpu = _compare(runs, lanes=8, epochs=2, N=40, seed=1)
    _, w_init, _ = engine.init_params(5, N_FEAT, K)
    assert abs(gpu.params(0)[1][N_FEAT - 1] - w_init[N_FEAT - 1]) > 1e-4


def test_bad_requests_raise_clear_errors():
    idx, nnz, y = synthetic(N=10)
    run = [engine.Run("sgd", 0.1, 0)]
    with pytest.raises(FMInputError, match="k \\+ 1 <= 64"):
        cuda_engine.CudaTrainer(run, idx, nnz, y, n_features=N_FEAT, k=64)
    with pytest.raises(FMInputError, match="lanes"):
        cuda_engine.CudaTrainer(run, idx, nnz, y, n_features=N_FEAT, k=K, lanes=0)
    with pytest.raises(FMInputError, match=r"lanes must be an int in \[1, 32\], got 33: a run's lanes are one warp"):
        cuda_engine.CudaTrainer(run, idx, nnz, y, n_features=N_FEAT, k=K, lanes=33)
    with pytest.raises(FMInputError, match="device must be"):
        engine.train_runs(run, idx, nnz, y, n_features=N_FEAT, epochs=1, device="tpu")


@pytest.mark.skipif(not SIMULATOR, reason="checks the simulator's own reporting")
def test_the_simulator_is_not_reported_as_a_gpu():
    assert not cuda_engine.gpu_available()
    assert "simulator" in cuda_engine.device_info()["gpu"]


@pytest.mark.skipif(SIMULATOR or os.environ.get("FMEDU_GPU_TESTS") != "1", reason="needs a real GPU")
def test_a_real_gpu_is_reported():
    assert cuda_engine.gpu_available()
    info = cuda_engine.device_info()
    assert info["gpu"] and len(info["compute_capability"]) == 2


@pytest.mark.skipif(not SIMULATOR, reason="a race of numba-cuda's simulator")
def test_every_lane_finds_its_blocks_one_exchange_board(monkeypatch):
    """The simulator's ``cuda.shared.array`` checks its table and stores a new array without a
    lock; here every new array takes 5 ms, so every lane of a fresh launch finds the table empty
    and makes a board of its own (the race that failed a CI run now and then). The exchanges and
    the RMS kernel (its columns read by shuffles) must still give the CPU engine's floats."""
    import time

    from numba.cuda.simulator import kernelapi

    class SlowArrays:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def empty(*args, **kwargs):
            time.sleep(0.005)
            return np.empty(*args, **kwargs)

    monkeypatch.setattr(kernelapi, "np", SlowArrays())
    lanes, rows, K1 = 8, 7, K + 1
    theta = np.arange(2 * rows * K1, dtype=np.float64).reshape(2, rows, K1) / 10 - 3
    out = np.full((2, 4), np.nan)
    cuda_engine._v_rms_kernel[2, lanes]((np.zeros(2), theta), out)
    expected = np.sqrt((theta[:, :, 1:] ** 2).sum(axis=(1, 2)) / rows)
    assert rel_err(out[:, 3], expected) <= TOLERANCE
    _compare([engine.Run("adam", 0.05, 3), engine.Run("sgd", 0.1, 4)], lanes=8, epochs=1, N=30)
