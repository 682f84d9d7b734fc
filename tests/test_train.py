"""Training: hand-built Adam on closed-form gradients = torch.optim.Adam on autograd; planted FMs; errors."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fmedu import FMInputError
from fmedu import train as T

F64 = torch.float64


def data(task, n=8, k=3, N=300, N_val=100, strength=2.0, seed=5):
    planted = T.planted_fm(n, k, strength=strength, seed=seed)
    X, y = T.planted_data(*planted, N, task=task, seed=seed + 1)
    X_val, y_val = T.planted_data(*planted, N_val, task=task, seed=seed + 2)
    return planted, X, y, X_val, y_val


def max_difference(a, b):
    params = max(float((p - q).abs().max()) for p, q in zip(a[:3], b[:3]))
    hist = max(abs(r[c] - s[c]) for r, s in zip(a.history, b.history) for c in r)
    return max(params, hist)


@pytest.mark.parametrize(
    "task,loss", [("regression", "squared"), ("classification", "logistic"), ("classification", "hinge")]
)
def test_closed_form_adam_equals_torch_adam_on_autograd(task, loss):
    _, X, y, X_val, y_val = data(task)
    kw = dict(task=task, k=4, epochs=6, lr=0.01, batch_size=32, seed=3, loss=loss)
    a = T.train(X, y, X_val, y_val, **kw)
    b = T.train(X, y, X_val, y_val, backend="autograd", **kw)
    assert len(a.history) == len(b.history) == 7
    assert max_difference(a, b) <= 1e-10
    assert float((a.V - a.V.mean()).abs().max()) > 0.05  # the parameters did move


@given(steps=st.integers(1, 30), seed=st.integers(0, 1000), lr=st.floats(1e-4, 0.5))
def test_adam_class_matches_torch_optim(steps, seed, lr):
    gen = torch.Generator().manual_seed(seed)
    mine = [torch.randn(3, 2, dtype=F64, generator=gen), torch.randn((), dtype=F64, generator=gen)]
    theirs = [torch.nn.Parameter(p.clone()) for p in mine]
    adam, opt = T.Adam(mine, lr), torch.optim.Adam(theirs, lr=lr, foreach=False)
    for _ in range(steps):
        grads = [torch.randn(p.shape, dtype=F64, generator=gen) for p in mine]
        adam.step(grads)
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        opt.step()
    assert max(float((p - q.detach()).abs().max()) for p, q in zip(mine, theirs)) <= 1e-12


def test_wrong_adam_is_detected():
    """The trajectory comparison can fail: Adam without bias correction drifts visibly."""
    gen = torch.Generator().manual_seed(0)
    mine = [torch.randn(4, dtype=F64, generator=gen)]
    theirs = [torch.nn.Parameter(mine[0].clone())]
    opt = torch.optim.Adam(theirs, lr=0.1, foreach=False)
    m = torch.zeros(4, dtype=F64)
    u = torch.zeros(4, dtype=F64)
    for _ in range(5):
        g = torch.randn(4, dtype=F64, generator=gen)
        m = 0.9 * m + 0.1 * g
        u = 0.999 * u + 0.001 * g * g
        mine[0] -= 0.1 * m / (u.sqrt() + 1e-8)
        theirs[0].grad = g.clone()
        opt.step()
    assert float((mine[0] - theirs[0].detach()).abs().max()) > 1e-3


def test_regression_recovers_planted_model():
    planted, X, y, X_val, y_val = data("regression", n=10, k=3, N=2000, N_val=500, strength=1.0)
    r = T.train(X, y, X_val, y_val, task="regression", k=3, epochs=40, lr=0.005, batch_size=64, seed=0)
    planted_loss = T.evaluate(X_val, y_val, *planted, "squared")
    assert r.history[-1]["val_loss"] <= 1.2 * planted_loss
    assert r.history[-1]["val_loss"] < 0.1 * r.history[0]["val_loss"]
    assert T.offdiagonal_relative_error(r.V, planted[2]) <= 0.15


def test_classification_approaches_planted_accuracy():
    planted, X, y, X_val, y_val = data("classification", n=10, k=3, N=3000, N_val=1000, strength=4.0)
    r = T.train(X, y, X_val, y_val, task="classification", k=3, epochs=25, lr=0.01, batch_size=64, seed=0)
    planted_acc = float((T.predict_labels(X_val, *planted, "classification") == y_val).double().mean())
    assert r.history[-1]["val_accuracy"] >= planted_acc - 0.03
    assert r.history[-1]["val_accuracy"] > r.history[0]["val_accuracy"] + 0.2


def test_same_seed_same_numbers_and_predict_labels():
    _, X, y, X_val, y_val = data("classification")
    a = T.train(X, y, X_val, y_val, task="classification", k=3, epochs=2, seed=7)
    b = T.train(X, y, X_val, y_val, task="classification", k=3, epochs=2, seed=7)
    assert torch.equal(a.V, b.V) and a.history == b.history
    labels = T.predict_labels(X_val, a.w0, a.w, a.V, "classification")
    assert set(labels.tolist()) <= {-1.0, 1.0}
    values = T.predict_labels(X_val, a.w0, a.w, a.V, "regression")
    assert torch.equal(labels, torch.where(values >= 0, 1.0, -1.0).to(F64))
    w0, w, V, history = a  # a TrainResult unpacks like a tuple
    assert history[0]["epoch"] == 0 and history[-1]["epoch"] == 2


def test_errors_are_clear():
    _, X, y, X_val, y_val = data("classification", N=50, N_val=20)
    with pytest.raises(FMInputError, match="y must take values in"):
        T.train(X, (y + 1) / 2, X_val, y_val, task="classification", k=3)
    with pytest.raises(FMInputError, match="y_val must take values in"):
        T.train(X, y, X_val, (y_val + 1) / 2, task="classification", k=3)
    with pytest.raises(FMInputError, match="X_val has 7 features but X has 8"):
        T.train(X, y, X_val[:, :7], y_val, task="classification", k=3)
    with pytest.raises(FMInputError, match=r"y has shape \(49,\) but the batch has 50"):
        T.train(X, y[:49], X_val, y_val, task="classification", k=3)
    bad = X.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(FMInputError, match=r"X contains non-finite values \(first at index \(3, 1\)"):
        T.train(bad, y, X_val, y_val, task="classification", k=3)
    bad_y = y_val.clone()
    bad_y[0] = float("nan")
    with pytest.raises(FMInputError, match="y_val contains non-finite values"):
        T.train(X, y, X_val, bad_y, task="classification", k=3)
    with pytest.raises(FMInputError, match=r"y_val has shape \(19,\) but the batch has 20 samples"):
        T.train(X, y, X_val, y_val[:19], task="classification", k=3)
    with pytest.raises(FMInputError, match="loss 'squared' does not fit task 'classification'"):
        T.train(X, y, X_val, y_val, task="classification", loss="squared", k=3)
    with pytest.raises(FMInputError, match="task must be"):
        T.train(X, y, X_val, y_val, task="ranking", k=3)
    with pytest.raises(FMInputError, match="lr must be a positive finite number"):
        T.train(X, y, X_val, y_val, task="classification", k=3, lr=-1.0)
    with pytest.raises(FMInputError, match="k must be a positive integer"):
        T.train(X, y, X_val, y_val, task="classification", k=0)
    with pytest.raises(FMInputError, match=r"X must be a tensor of shape \(N, n\)"):
        T.train(X[0], y, X_val, y_val, task="classification", k=3)
