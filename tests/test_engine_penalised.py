"""fmedu.engine with per-touch L2 penalties and a per-epoch step decay (``Run(..., lam_w, lam_v, decay)``).

References: torch.optim (SGD, Adagrad, Adam) on the penalised per-sample loss
softplus(−y ŷ) + ½ Σ_{i ∈ idx} (λ_w w_i² + λ_v ‖v_i‖²) with the learning rate set per epoch;
the penalised prox step against a float64 generic optimiser (scipy) of the full prox objective
and against autograd (its gradient vanishes at the step).
"""

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from test_engine import N_FEAT, K, rel_err, synthetic

import fmedu
from fmedu import engine
from fmedu.engine import penalised, rules
from fmedu.engine.common import MAX_NEWTON, penalised_bound
from fmedu.errors import FMInputError

ROOT = Path(__file__).resolve().parents[1]


def test_old_three_field_runs_keep_working_and_mean_no_penalty():
    run = engine.Run("sgd", 0.1, 3)
    assert (run.lam_w, run.lam_v, run.decay) == (0.0, 0.0, 1.0)
    assert run == engine.Run("sgd", 0.1, 3, lam_w=0.0, lam_v=0.0, decay=1.0)
    idx, nnz, y = synthetic(N=30)
    a = engine.train_runs([run], idx, nnz, y, n_features=N_FEAT, epochs=2, k=K)
    b = engine.train_runs([engine.Run("sgd", 0.1, 3, 0.0, 0.0, 1.0)], idx, nnz, y, n_features=N_FEAT, epochs=2, k=K)
    assert np.array_equal(a.train_loss, b.train_loss)


@pytest.mark.parametrize(
    "field,value,match",
    [("lam_w", -0.1, "lam_w"), ("lam_v", math.nan, "lam_v"), ("lam_v", "0.1", "lam_v"), ("decay", 0.0, "decay"),
     ("decay", 1.5, "decay"), ("decay", True, "decay")],
)  # fmt: skip
def test_bad_penalties_and_decays_are_refused(field, value, match):
    idx, nnz, y = synthetic(N=10)
    run = engine.Run("sgd", 0.1, 0, **{field: value})
    with pytest.raises(FMInputError, match=match):
        engine.Trainer([run], idx, nnz, y, n_features=N_FEAT, k=K)


def test_the_penalised_bound_moves_with_lam_v_and_is_enforced():
    assert penalised_bound(11, 0.0) == 1 / 10
    assert penalised_bound(11, 0.5) == pytest.approx(1 / 9.5)
    assert penalised_bound(11, 10.0) == math.inf  # lam_v >= d - 1: every eta (y = -1 needs lam_v >= 1 too)
    assert penalised_bound(3, 0.5) == pytest.approx(min(1 / 1.5, 1 / 0.5))
    idx, nnz, y = synthetic(N=10)  # max nnz 5: bound 1/4 without a penalty, 1/(4 - 1) with lam_v = 1
    engine.Trainer([engine.Run("prox", 0.3, 0, lam_v=1.0)], idx, nnz, y, n_features=N_FEAT, k=K)
    with pytest.raises(FMInputError, match="convexity bound"):
        engine.Trainer([engine.Run("prox", 0.3, 0)], idx, nnz, y, n_features=N_FEAT, k=K)


def test_decay_schedule_is_eta_times_decay_to_the_epoch_minus_one():
    idx, nnz, y = synthetic(N=10)
    t = engine.Trainer(
        [engine.Run("sgd", 0.2, 0, decay=0.5), engine.Run("sgd", 0.3, 0)], idx, nnz, y, n_features=N_FEAT, k=K
    )
    seen = []
    for _ in range(3):
        seen.append(t.epoch_etas().copy())
        t.epoch()
    assert np.allclose(np.array(seen)[:, 0], [0.2, 0.1, 0.05], rtol=0, atol=1e-17)
    assert np.all(np.array(seen)[:, 1] == 0.3)  # decay 1: exactly eta, every epoch


def torch_reference(method, eta, seed, lam_w, lam_v, decay, idx, nnz, y, epochs, train_rows, val_rows):
    """One run with torch.optim on the penalised per-touch loss, lr = eta · decay^(e − 1)."""
    w0, w, V = engine.init_params(seed, N_FEAT, K)
    model = fmedu.FactorizationMachine(N_FEAT, K)
    with torch.no_grad():
        model.w0.fill_(w0)
        model.w.copy_(torch.from_numpy(w))
        model.V.copy_(torch.from_numpy(V))
    opt = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam}[method](
        model.parameters(), lr=eta
    )
    rows_t = [torch.from_numpy(idx[r, : nnz[r]].copy()) for r in range(len(y))]
    train_loss, val_loss = [], []
    for e in range(epochs):
        for group in opt.param_groups:
            group["lr"] = eta * decay**e
        total = 0.0
        for r in engine.epoch_permutation(seed, e, train_rows):
            ir, yr = rows_t[r], float(y[r])
            opt.zero_grad()
            loss = torch.nn.functional.softplus(-yr * model(ir))
            penalty = 0.5 * (lam_w * (model.w[ir] ** 2).sum() + lam_v * (model.V[ir] ** 2).sum())
            (loss + penalty).backward()
            opt.step()
            total += float(loss.detach())
        train_loss.append(total / len(train_rows))
        with torch.no_grad():
            val_loss.append(
                np.mean([float(torch.nn.functional.softplus(-float(y[r]) * model(rows_t[r]))) for r in val_rows])
            )
    params = (float(model.w0.detach()), model.w.detach().numpy().copy(), model.V.detach().numpy().copy())
    return np.array(train_loss), np.array(val_loss), params


@pytest.mark.parametrize("method,eta", [("sgd", 0.3), ("adagrad", 0.1), ("adam", 0.02)])
def test_penalised_optimisers_match_torch_on_the_penalised_loss(method, eta):
    """Four epochs of 64 steps (256 steps), k = 4, float64; rare rows exercise Adam's catch-up."""
    idx, nnz, y = synthetic()
    train_rows, val_rows = np.arange(16, 80), np.arange(16)
    lam_w, lam_v, decay = 0.05, 0.2, 0.8
    runs = [engine.Run(method, eta, 3, lam_w, lam_v, decay), engine.Run(method, eta, 4, lam_w, lam_v, decay)]
    res = engine.train_runs(
        runs, idx, nnz, y, n_features=N_FEAT, epochs=4, k=K, train_rows=train_rows, val_rows=val_rows
    )
    for r, seed in enumerate((3, 4)):
        tl, vl, (w0, w, V) = torch_reference(
            method, eta, seed, lam_w, lam_v, decay, idx, nnz, y, 4, train_rows, val_rows
        )
        assert rel_err(res.train_loss[r], tl) <= 1e-12
        assert rel_err(res.val_loss[r], vl) <= 1e-12
        e_w0, e_w, e_V = res.trainer.params(r)
        assert rel_err([e_w0], [w0]) <= 1e-12
        assert rel_err(e_w, w) <= 1e-12
        assert rel_err(e_V, V) <= 1e-12
    # the penalty changed the run: an unpenalised run ends elsewhere
    plain = engine.train_runs(
        [engine.Run(method, eta, 3, decay=decay)], idx, nnz, y, n_features=N_FEAT, epochs=4, k=K,
        train_rows=train_rows,
    )  # fmt: skip
    assert rel_err(plain.trainer.params(0)[2], res.trainer.params(0)[2]) > 1e-3


def prox_objective(theta, idx_s, y, w0, w, V, eta, lam_w, lam_v):
    """The full prox objective of one sample in the touched coordinates (w0, w_I, V_I) as a vector."""
    d, k = len(idx_s), V.shape[1]
    w0n, wI, VI = theta[0], theta[1 : 1 + d], theta[1 + d :].reshape(d, k)
    s = VI.sum(0)
    y_hat = w0n + wI.sum() + 0.5 * (s @ s - (VI * VI).sum())
    loss = np.logaddexp(0.0, -y * y_hat)
    pen = 0.5 * (lam_w * (wI @ wI) + lam_v * (VI * VI).sum())
    prox = ((w0n - w0) ** 2 + ((wI - w[idx_s]) ** 2).sum() + ((VI - V[idx_s]) ** 2).sum()) / (2 * eta)
    return loss + pen + prox


def engine_step(idx_s, y, w0, w, V, eta, lam_w, lam_v, linearised=False):
    """One penalised step through the engine's shared pieces (the code the kernels compile)."""
    theta = np.concatenate([w[:, None], V], axis=1).copy()
    idx2 = np.array([idx_s])
    col_s, col_sq = np.zeros(theta.shape[1]), np.zeros(theta.shape[1])
    rules.column_sums(theta, idx2, 0, len(idx_s), 0, theta.shape[1], 1, col_s, col_sq)
    B, A, C = rules.sample_scalars(w0, col_s, col_sq)
    beta, c, f, rho = rules.prox_step_coefficients(B, A, C, len(idx_s), eta, y, w0, col_s[0], lam_w, lam_v, linearised)
    rules.prox_columns(theta, idx2, 0, len(idx_s), 0, theta.shape[1], 1, col_s, beta, c, f, True, rho)
    return w0 + beta, theta[:, 0], theta[:, 1:], beta


@pytest.mark.parametrize("case", range(12))
def test_penalised_prox_step_minimises_the_prox_objective(case):
    """Random samples, both labels, eta up to 0.999 of the bound, penalties from 0 to large:
    the step agrees with scipy's minimiser of the full objective and the autograd gradient vanishes."""
    rng = np.random.default_rng(100 + case)
    n, k, d = 9, 3 + case % 3, 2 + case % 6
    y = 1.0 if case % 2 == 0 else -1.0
    lam_w, lam_v = [(0.0, 0.3), (0.5, 0.0), (0.05, 0.05), (2.0, 3.0)][case % 4]
    bound = penalised_bound(d, lam_v)
    eta = min(bound, 5.0) * [0.3, 0.9, 0.999][case % 3]
    idx_s = np.sort(rng.choice(n, d, replace=False))
    w0, w, V = rng.normal() * 0.5, rng.normal(size=n) * 0.5, rng.normal(size=(n, k)) * 0.5
    w0n, wn, Vn, _ = engine_step(idx_s, y, w0, w, V, eta, lam_w, lam_v)
    x_engine = np.concatenate([[w0n], wn[idx_s], Vn[idx_s].ravel()])
    start = np.concatenate([[w0], w[idx_s], V[idx_s].ravel()])
    args = (idx_s, y, w0, w, V, eta, lam_w, lam_v)
    best = minimize(prox_objective, start, args=args, method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000})
    assert prox_objective(x_engine, *args) <= best.fun + 1e-12
    assert np.abs(x_engine - best.x).max() <= 1e-5
    # untouched rows are unchanged
    rest = np.setdiff1d(np.arange(n), idx_s)
    assert np.array_equal(wn[rest], w[rest]) and np.array_equal(Vn[rest], V[rest])
    # autograd: the gradient of the objective vanishes at the step
    t = torch.tensor(x_engine, requires_grad=True)
    dd = len(idx_s)
    s = t[1 + dd :].reshape(dd, k).sum(0)
    VI = t[1 + dd :].reshape(dd, k)
    y_hat = t[0] + t[1 : 1 + dd].sum() + 0.5 * (s @ s - (VI * VI).sum())
    obj = (
        torch.nn.functional.softplus(-y * y_hat)
        + 0.5 * (lam_w * (t[1 : 1 + dd] ** 2).sum() + lam_v * (VI * VI).sum())
        + ((t - torch.from_numpy(start)) ** 2).sum() / (2 * eta)
    )
    (grad,) = torch.autograd.grad(obj, t)
    assert float(grad.abs().max()) <= 1e-12 * (1 + float(t.detach().abs().max()) / eta)


def test_penalised_prediction_reduces_to_the_unpenalised_one():
    from fmedu.prox import scalar

    for z in (0.1, 0.5, 0.9):
        a = penalised.prediction_after(z, 0.3, 1.2, 2.5, 5.0, 0.1, -1.0, 1.0, 1.0)
        b = scalar.prediction_after(z, 0.3, 1.2, 2.5, 5.0, 0.1, -1.0)
        assert a == pytest.approx(b, rel=1e-15)
    z = penalised.newton_z(0.3, 1.2, 2.5, 5.0, 0.1, 1.0, 1.0, 1.0, MAX_NEWTON)[0]
    assert z == pytest.approx(scalar.newton_z(0.3, 1.2, 2.5, 5.0, 0.1, 1.0, MAX_NEWTON)[0], rel=1e-14)


def test_linearised_ablation_applies_the_first_order_truncation():
    rng = np.random.default_rng(7)
    n, k, d, eta, lam_w, lam_v = 8, 3, 5, 0.2, 0.1, 0.4
    idx_s = np.array([0, 2, 3, 5, 7])
    w0, w, V = 0.1, rng.normal(size=n) * 0.3, rng.normal(size=(n, k)) * 0.3
    exact = engine_step(idx_s, 1.0, w0, w, V, eta, lam_w, lam_v)
    w0l, wl, Vl, beta = engine_step(idx_s, 1.0, w0, w, V, eta, lam_w, lam_v, linearised=True)
    assert beta == exact[3] and w0l == exact[0] and np.array_equal(wl, exact[1])  # same z*, same linear part
    a = 1 + eta * lam_v
    J = np.eye(d) - np.ones((d, d))
    expected = (np.eye(d) - beta / a * J) @ V[idx_s] / a
    assert np.allclose(Vl[idx_s], expected, rtol=0, atol=1e-15)
    assert not np.allclose(Vl[idx_s], exact[2][idx_s], atol=1e-6)


def test_penalised_prox_runs_match_a_loop_of_single_steps():
    """The engine's epochs (prox with penalty and decay, and the linearised ablation) equal a plain
    loop of :func:`engine_step` over the same shuffles."""
    idx, nnz, y = synthetic()
    train_rows = np.arange(80)
    cases = [("prox", 0.2, 0.1, 0.3, 0.7), ("prox-linearised", 0.1, 0.0, 0.2, 1.0)]
    runs = [engine.Run(m, eta, 5, lw, lv, dec) for m, eta, lw, lv, dec in cases]
    res = engine.train_runs(runs, idx, nnz, y, n_features=N_FEAT, epochs=3, k=K, train_rows=train_rows)
    for r, (m, eta, lw, lv, dec) in enumerate(cases):
        w0, w, V = engine.init_params(5, N_FEAT, K)
        for e in range(3):
            for row in engine.epoch_permutation(5, e, train_rows):
                w0, w, V, _ = engine_step(idx[row, : nnz[row]], y[row], w0, w, V, eta * dec**e, lw, lv, m != "prox")
        e_w0, e_w, e_V = res.trainer.params(r)
        assert rel_err([e_w0], [w0]) <= 1e-12 and rel_err(e_w, w) <= 1e-12 and rel_err(e_V, V) <= 1e-12


@pytest.mark.skipif(
    not (Path(os.environ.get("FMEDU_DATA", "")) / "u.data").is_file(), reason="needs MovieLens 100k in $FMEDU_DATA"
)
def test_unpenalised_constant_step_runs_reproduce_the_committed_sweep_bit_for_bit():
    """lam = 0, decay = 1: two epochs of every method equal results/stability-full.csv exactly."""
    from fmedu.movielens import experiments

    variant = experiments.PRESETS["stability-full"].variants[0]
    idx, nnz, y, n, tr, va, te = experiments._load_variant(variant)
    with open(ROOT / "results" / "stability-full.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["attempt"] == "0" and r["eta_index"] == "6" and int(r["epoch"]) <= 2]
    ref: dict = {}
    for row in rows:
        ref.setdefault(row["method"], []).append(row)
    methods = sorted(ref)
    runs = [engine.Run(m, float(ref[m][0]["eta"]), 0, lam_w=0.0, lam_v=0.0, decay=1.0) for m in methods]
    res = engine.train_runs(runs, idx, nnz, y, n_features=n, epochs=2, train_rows=tr, val_rows=va, test_rows=te)
    for i, m in enumerate(methods):
        for e in range(2):
            for key, arr in (("train_loss", res.train_loss), ("val_loss", res.val_loss), ("v_rms", res.v_rms),
                             ("w0", res.w0)):  # fmt: skip
                assert arr[i, e] == float(ref[m][e][key]), (m, e, key)
