# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · MovieLens 100k, end to end
#
# The blog trains a logistic factorization machine on MovieLens 100k with its stochastic
# proximal-point step and compares it with Adam, Adagrad and SGD. This notebook
#
# 1. checks the data and its encoding (and the published loader's shifted join, erratum E4);
# 2. reproduces the published 10-epoch curves, explains why they are those of a *linear*
#    model (the published trainer never moves the latent vectors, erratum E3), and shows what
#    the exact step does at the same step size;
# 3. redoes the step-size stability comparison, first on the published 1,000-rating subset
#    and then on all 100,000 ratings with held-out loss, and checks which published
#    conclusions survive (erratum E5).
#
# The large experiments were run with `python -m fmedu experiment NAME` (the compiled engine
# `fmedu.engine`); this notebook only **reads** their committed results (`results/*.csv`, with
# provenance in `results/*.json`) and runs small, deterministic computations live.
#
# **Notation.** design.md's symbols throughout. The blog writes $\hat y$ for the label (our
# $y\in\{-1,+1\}$), $\sigma$ for the model's output (our $\hat y$), $w$ for the binary feature
# vector (our $x$, stored as its non-zero indices `idx`), $x$ for the parameter vector (our
# $\theta = (w_0, w, V)$), $b_0, b_i$ for the biases (our $w_0, w_i$), $m$ for the number of
# features (our $n$) and $d$ for the largest number of non-zeros (our max nnz).

# %%
import math
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import torch

from fmedu import engine
from fmedu.figures import nb06
from fmedu.movielens import data
from fmedu.notebook import setup
from fmedu.prox.published import PublishedProxTrainer

setup()
engine.set_threads(1)

# %% [markdown]
# ## 1 · The data
#
# Each rating becomes one sample: one-hot user id, movie id, age (each distinct age is a
# category), gender and occupation, plus the movie's genres (multi-hot). The label is
# $y = +1$ for a 5-star rating and $-1$ otherwise. `fmedu.data.load_movielens` reads the local
# copy named by `FMEDU_DATA` (it verifies the files' SHA-256 first) and returns padded index
# arrays.

# %%
ml = data.load_movielens()
(len(ml), int(ml.user.max()) + 1, int(ml.item.max()) + 1, ml.n_features, int(ml.nnz.min()), int(ml.nnz.max()))

# %% [markdown]
# 100,000 ratings of 943 users on 1,682 movies, 2,728 features, 6 to 11 non-zeros per rating.
# The feature blocks add up, and every rating has exactly one feature of each one-hot block:

# %%
blocks = {}
for name in ml.feature_names:
    blocks[name.split("=")[0]] = blocks.get(name.split("=")[0], 0) + 1
blocks, sum(blocks.values()) == 2728

# %%
positive_share = float((ml.y > 0).mean())
round(100 * positive_share, 1), bool(np.all(ml.y == np.where(ml.rating >= 5, 1.0, -1.0)))

# %% [markdown]
# 21.2 % of the ratings are positive, so predicting the base rate alone has logistic loss
# $-(p\log p + (1-p)\log(1-p))$ with $p = 0.212$:

# %%
base_rate_loss = -(positive_share * math.log(positive_share) + (1 - positive_share) * math.log(1 - positive_share))
round(base_rate_loss, 4)

# %% [markdown]
# ### Erratum E4: the published join
#
# The published loader uses the 1-based user and movie ids of `u.data` as 0-based row
# positions in the user and movie tables. Every rating therefore gets the demographics of the
# *next* user and the genres of the *next* movie, and the ratings of user 943 and of movie
# 1682, which have no "next" row, disappear. `join="published"` reproduces this.

# %%
pub = data.load_movielens(join="published")
dropped = int(((ml.user == 942) | (ml.item == 1681)).sum())
len(pub), dropped, len(ml) - dropped == len(pub)

# %% [markdown]
# The kept ratings are in the same order; their user-id feature is that of user id + 1:

# %%
kept = ~((ml.user == 942) | (ml.item == 1681))
bool(np.all(pub.idx[:, 0] == ml.idx[kept, 0] + 1)), bool(np.all(pub.idx[:, 1] == ml.idx[kept, 1] + 1))

# %% [markdown]
# Our held-out set is a fixed, seeded 10 % of the correctly joined ratings
# (`data.validation_split`, seed 0); it is used only for the validation loss.

# %%
train_rows, val_rows = data.validation_split(len(ml))
len(train_rows), len(val_rows), len(np.intersect1d(train_rows, val_rows))

# %% [markdown]
# ## 2 · The published 10-epoch experiment (erratum E3)
#
# The blog trains with $\eta = 1/(2\cdot 11 + 1) = 1/23$, embedding dimension $k = 20$,
# $V, w \sim \mathcal N(0, 0.01^2)$, $w_0 = 0$, batch size 1, a fresh shuffle per epoch, and
# reports each epoch's mean loss with every sample's loss taken *before* its own update.
#
# Its trainer writes the new latent vectors with `V[idx, :].sub_(direction)`. In PyTorch,
# indexing with an index tensor returns a **copy**, so the in-place subtraction changes the
# copy and the write is lost:

# %%
V_demo = torch.zeros(5, 3, dtype=torch.float64)
V_demo[torch.tensor([1, 3]), :].sub_(1.0)  # as published: updates a temporary copy
bool(torch.all(V_demo == 0))

# %% [markdown]
# Only $w_0$ and $w$ train; $V$ stays at its random initial value. The engine's method
# `prox-published` reproduces exactly that: $z^*$ maximises the full dual $q(z)$, the biases
# move by $\eta z^* y$, $V$ is left alone. Live check on 300 samples of the published join:
# the engine equals the published algorithm (`PublishedProxTrainer`, golden-section search,
# lost write) up to the golden-section tolerance on $z$ ($10^{-8}$).


# %%
def published_trainer_epoch(ds, rows, seed, eta, fix_write):
    """One epoch of the published torch trainer in the engine's order for ``seed``."""
    w0, w, V = engine.init_params(seed, ds.n_features, 20)
    tr = PublishedProxTrainer(
        torch.tensor(w0, dtype=torch.float64), torch.from_numpy(w), torch.from_numpy(V), eta, fix_write=fix_write
    )
    for r in engine.epoch_permutation(seed, 0, rows):
        tr.step(torch.from_numpy(ds.idx[r, : ds.nnz[r]].copy()), float(ds.y[r]))
    return [t.numpy() for t in tr.params()]


def engine_epoch(ds, rows, seed, eta, method):
    t = engine.Trainer([engine.Run(method, eta, seed)], ds.idx, ds.nnz, ds.y, n_features=ds.n_features, train_rows=rows)
    t.epoch()
    return t.params(0)


def max_rel_diff(a, b):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max() / np.abs(np.asarray(y)).max()) for x, y in zip(a, b))


rows300 = np.arange(300)
ours = engine_epoch(pub, rows300, 0, 1 / 23, "prox-published")
theirs = published_trainer_epoch(pub, rows300, 0, 1 / 23, fix_write=False)
max_rel_diff(ours, theirs) <= 1e-6, bool(np.array_equal(ours[2], engine.init_params(0, pub.n_features, 20)[2]))

# %% [markdown]
# The full experiment (`python -m fmedu experiment published-10epoch`: three attempts each,
# all 99,831 samples of the published join, as published) against the blog's printed losses:

# %%
p10 = nb06.results("published-10epoch")
table = nb06.reproduction_table(p10)
print("epoch  blog prox  ours   diff    | blog Adam  ours   diff")
for t in table:
    print(
        f"{t['epoch']:5d}  {t['published_prox']:.4f}   {t['ours_prox']:.4f} {t['diff_prox']:+.4f} |"
        f" {t['published_adam']:.4f}   {t['ours_adam']:.4f} {t['diff_adam']:+.4f}"
    )

# %% [markdown]
# The prox curve is reproduced within $\pm 0.01$ at every epoch (in fact within about
# $\pm 0.001$, the spread between attempts):

# %%
max(abs(t["diff_prox"]) for t in table) <= 0.01

# %% [markdown]
# Adam (torch default settings, $\eta = 10^{-3}$, every parameter moves at every step) has the
# published shape: its loss is lowest at epoch 2 and then rises, while its global bias $w_0$
# climbs steadily, as the blog printed ($w_0 \approx 12.7$ after 10 epochs). The level agrees
# to within 0.01 at every epoch:

# %%
adam = nb06.curves(p10, "published", "adam")
adam_w0 = nb06.curves(p10, "published", "adam", "w0").mean(0)
(
    int(np.argmin(adam.mean(0))) + 1,
    int(np.argmin(nb06.PUBLISHED_ADAM)) + 1,
    max(abs(t["diff_adam"]) for t in table) <= 0.01,
    bool(np.all(np.diff(adam_w0) > 0)),
    bool(abs(adam_w0[-1] - nb06.PUBLISHED_ADAM_W0[-1]) <= 1.5),
)

# %% [markdown]
# ### The exact step at the same step size
#
# With the write fixed (engine method `prox`, which is `fmedu.prox.prox_step` repeated; live
# check against the published trainer with `fix_write=True`):

# %%
ours = engine_epoch(ml, rows300, 0, 1 / 23, "prox")
theirs = published_trainer_epoch(ml, rows300, 0, 1 / 23, fix_write=True)
max_rel_diff(ours, theirs) <= 1e-6

# %% [markdown]
# On all the data (correct join, 10 % held out) the exact step at $\eta = 1/23$ does not
# train at all: the training loss starts above the base-rate loss and *grows* epoch after
# epoch, and so does the held-out loss:

# %%
exact = nb06.curves(p10, "corrected", "prox")
exact_val = nb06.curves(p10, "corrected", "prox", "val_loss")
print("epoch  train  validation  (mean of 3 attempts)")
for e in range(exact.shape[1]):
    print(f"{e + 1:5d}  {exact.mean(0)[e]:.3f}  {exact_val.mean(0)[e]:.3f}")
bool(exact.mean(0)[0] > base_rate_loss), bool(exact.mean(0)[-1] > 4 * exact.mean(0)[0])

# %% [markdown]
# **Why.** The latent vectors explode. The V-block of the prox subproblem is
# $\tfrac{1}{2\eta}\,\mathrm{tr}\big((V-V_t)^\top (\ldots)\big)$ with Hessian $S(z)/\eta$,
# $S(z) = (1+\beta)I - \beta\,\mathbf 1\mathbf 1^\top$, $\beta = \eta y z$, and the step is
# $V_{\mathrm{idx}} \leftarrow S(z)^{-1} V_{\mathrm{idx}}$. $S(z)^{-1}$ has eigenvalue
# $1/(1-(d-1)\beta)$ along $\mathbf 1$ and $1/(1+\beta)$ orthogonal to it. For a positive sample
# the common direction of the touched latent vectors is **stretched** by up to
# $1/(1-(d-1)\eta)$; for a negative one the part orthogonal to it is stretched by up to
# $1/(1-\eta)$. Near the convexity bound every step inflates some part of the block. At
# $d = 11$ and $\eta = 1/23$:

# %%
eta_q = Fraction(1, 23)
1 / (1 - 10 * eta_q), 1 / (1 - eta_q)

# %% [markdown]
# A positive sample can multiply the sum of its eleven latent vectors by $23/13 \approx 1.77$
# in one step. The stretched vectors are shared with many other ratings (a user's id vector
# with all that user's ratings, the gender vector with half the data), so their pairwise
# products $\langle v_i, v_j\rangle$ make large, wrong predictions elsewhere. The RMS latent
# norm after each epoch (figure `06_latent_norms`): frozen at its initial $0.01\sqrt{20}$ in
# the published run, growing fifty-fold in the exact run:

# %%
v_exact = nb06.curves(p10, "corrected", "prox", "v_rms").mean(0)
v_frozen = nb06.curves(p10, "published", "prox-published", "v_rms").mean(0)
[round(float(v), 2) for v in v_exact], bool(np.all(np.diff(v_exact) > 0)), bool(np.ptp(v_frozen) == 0)

# %%
fig = nb06.plot_latent_norms(p10)
plt.show()

# %% [markdown]
# Large vectors alone do not explain the loss (Adam's grow even larger, figure above). What
# matters is *where* they point. Live, one epoch of the exact step on the training split, at
# $\eta = 1/23$ and at a 40 times smaller step size, and the two parts of the prediction on
# the held-out ratings: the linear part $w_0 + \sum_i w_i$ and the pairwise part
# $\tfrac12(\|\sum_i v_i\|^2 - \sum_i \|v_i\|^2)$:

# %% tags=["nbval-ignore-output"]
parts = {}
for eta in (1 / 23, 1.1e-3):
    one = engine.Trainer(
        [engine.Run("prox", eta, 0)],
        ml.idx,
        ml.nnz,
        ml.y,
        n_features=ml.n_features,
        train_rows=train_rows,
        val_rows=val_rows,
    )
    rec = one.epoch()
    print(f"eta = {eta:.4f}: training loss {rec['train_loss'][0]:.3f}, validation loss {rec['val_loss'][0]:.3f}")
    parts[eta] = nb06.prediction_parts(ml.idx, ml.nnz, ml.y, *one.params(0), val_rows)
    for part in parts[eta]:
        print(
            f"   y = {part['y']:+d}: linear part {part['linear_mean']:+7.2f},"
            f" pairwise part {part['pairwise_mean']:+6.2f} (sd {part['pairwise_sd']:.2f})"
        )

# %% [markdown]
# (The printed values depend on rounding in a diverging run and may differ slightly between
# machines; the check below does not.)

# %%
big, small = parts[1 / 23], parts[1.1e-3]
(
    all(
        p["pairwise_mean"] > 3 and p["pairwise_sd"] > abs(big[0]["pairwise_mean"] - big[1]["pairwise_mean"])
        for p in big
    ),
    all(abs(p["pairwise_mean"]) < 0.1 for p in small),
)

# %% [markdown]
# At $\eta = 1/23$ the stretched common directions make the pairwise part large and positive
# for *every* rating, with a spread (sd ≈ 6–7) larger than the gap between the two labels; the
# biases chase it downwards (linear part ≈ −11). Predictions become differences of two large
# numbers, confidently wrong for many ratings, and each further epoch stretches again. At
# the smaller step size the pairwise part stays a small correction and the loss falls.

# %%
fig = nb06.plot_published(p10)
plt.show()

# %% [markdown]
# So the published curve is that of a linear model (biases only), and the method it was
# meant to demonstrate diverges at the step size used. The stability sweep below shows
# how the exact step behaves at smaller step sizes.
#
# ## 3 · Step-size stability
#
# The published sweep: 10 geometric step sizes ($10^{-5}\ldots 1/23$ for prox,
# $10^{-5}\ldots 10^{-1}$ for the others), 10 attempts (seeds: initialisation and shuffles;
# attempt $a$ uses the same seed for every method), 10 epochs, on the **first 1,000 ratings**
# of the published join, training loss only. For each (method, $\eta$, attempt) we take the best
# epoch loss, then plot the mean over attempts with a band of $\pm 2$ standard errors.

# %%
sp_rows = nb06.results("stability-published")
sp = nb06.stability_summary(sp_rows, "train_loss")


def best_eta(summary, method):
    """(η, mean best loss) of the step size with the lowest mean."""
    s = min((s for s in summary if s["method"] == method), key=lambda s: s["mean"])
    return s["eta"], s["mean"]


def spread(summary, method):
    """max − min over step sizes of the mean best loss (how much the choice of η matters)."""
    means = [s["mean"] for s in summary if s["method"] == method]
    return max(means) - min(means)


for m in engine.METHODS:
    eta, best = best_eta(sp, m)
    print(f"{m:15s} best eta {eta:.2g}  best loss {best:.4f}  spread over eta {spread(sp, m):.4f}")

# %%
fig = nb06.plot_stability_published(sp_rows)
plt.show()

# %% [markdown]
# ### All 100,000 ratings, 20 epochs, held-out loss
#
# `python -m fmedu experiment stability-full`: the same sweep on the correctly joined data,
# 90 % for training and 10 % held out, 20 epochs, 10 attempts for every method and step size
# (8·10⁸ sample steps in all; the wall times are in the provenance below). Adam is trained with
# its exact dense semantics, replayed lazily by the engine, which makes it the slowest method.

# %%
sf_rows = nb06.results("stability-full")
sf_train = nb06.stability_summary(sf_rows, "train_loss")
sf_val = nb06.stability_summary(sf_rows, "val_loss")
print("method          best eta (val)  best val loss  best train loss  spread of val over eta")
for m in sorted({r["method"] for r in sf_rows}, key=engine.METHODS.index):
    eta, best = best_eta(sf_val, m)
    print(f"{m:15s} {eta:14.2g}  {best:13.4f}  {best_eta(sf_train, m)[1]:15.4f}  {spread(sf_val, m):10.4f}")

# %%
fig = nb06.plot_stability_full(sf_rows)
plt.show()

# %% [markdown]
# ### 50 epochs of the exact step
#
# `python -m fmedu experiment long`: exact prox for 50 epochs at the ten prox step sizes,
# 10 attempts each.

# %%
long_rows = nb06.results("long")
long_train = nb06.stability_summary(long_rows, "train_loss")
long_val = nb06.stability_summary(long_rows, "val_loss")
for s_t, s_v in zip(long_train, long_val):
    print(f"eta {s_t['eta']:.2g}: best train {s_t['mean']:.4f}  best val {s_v['mean']:.4f}")

# %%
fig = nb06.plot_long(long_rows)
plt.show()

# %% [markdown]
# ## 4 · What remains of the published conclusions (erratum E5)
#
# The published stability experiment trains on the **first 1,000 ratings only** and reports
# **training loss only**; the text describes 20 epochs and 15–20 attempts, the code runs 10
# epochs and 10 attempts. Its prox runs are the frozen-vector (linear) model of E3, on the
# shifted join of E4. On 1,000 ratings and 2,728 features the training loss mostly measures
# memorisation: Adam reaches a best training loss near 0, far below the base-rate loss, which
# says nothing about prediction. Checked one by one against the results above:
#
# **(a) "Prox is the most consistent across step sizes."** On the published subset this holds
# for what was actually run — the frozen-vector prox has the smallest spread of the best
# training loss over the step sizes:

# %%
spreads_subset = {m: round(spread(sp, m), 3) for m in engine.METHODS}
spreads_subset, min(spreads_subset, key=spreads_subset.get) == "prox-published"

# %% [markdown]
# With the latent vectors trained (the method the blog describes) and on all the data, it is
# the reverse: the exact prox step's held-out loss varies more over its step sizes than that
# of SGD, Adagrad or the linear model, because above $\eta \approx 7\cdot 10^{-3}$ its latent
# vectors blow up (section 2):

# %%
spreads_full = {
    m: round(spread(sf_val, m), 3) for m in sorted({r["method"] for r in sf_rows}, key=engine.METHODS.index)
}
spreads_full, all(spreads_full["prox"] > spreads_full[m] for m in ("prox-published", "sgd", "adagrad"))

# %% [markdown]
# **(b) "Adagrad is the best method on this data set."** On training loss Adagrad does reach
# the lowest values at large step sizes (it memorises the training set best). On held-out
# data, at their best step sizes, SGD, Adagrad and the exact prox step land within a few
# thousandths of each other, and the *linear* model (frozen vectors) is as good to within
# 0.003: the latent vectors add almost nothing to held-out prediction here. Adam, which moves
# every parameter at every step, is best at its smallest step sizes and still clearly worse.

# %%
best_val = {m: round(best_eta(sf_val, m)[1], 4) for m in spreads_full}
sparse_methods = ("prox", "sgd", "adagrad")
fm_best = min(best_val[m] for m in sparse_methods)
(
    best_val,
    max(best_val[m] for m in sparse_methods) - fm_best <= 0.005,
    best_val["prox-published"] - fm_best <= 0.003,
    best_val["adam"] - fm_best >= 0.01,
)

# %% [markdown]
# **(c) "Adam degrades when the step size is too large."** This survives, and more strongly
# on all the data: Adam's best held-out loss rises monotonically once $\eta$ passes
# $10^{-4}$ and ends far above the base-rate loss; on the published subset its best training
# loss at the largest step size is far above its best.

# %%
adam_sub = sorted((s for s in sp if s["method"] == "adam"), key=lambda s: s["eta"])
adam_val = sorted((s for s in sf_val if s["method"] == "adam"), key=lambda s: s["eta"])
upper = [s["mean"] for s in adam_val if s["eta"] > 1e-4]
(
    adam_sub[-1]["mean"] > 10 * min(s["mean"] for s in adam_sub),
    bool(np.all(np.diff(upper) > 0)),
    adam_val[-1]["mean"] > base_rate_loss,
    adam_val[0]["attempts"],
)

# **(d) "Prox converges slowly; 50 epochs do not help much."** Half of it survives. The exact
# step is slow at the step sizes where it is stable: at $\eta \approx 4\cdot 10^{-4}$ its held-out
# loss is still falling after 50 epochs, and there it ends as good as the best 20-epoch result
# of any method. At $\eta \gtrsim 3\cdot 10^{-3}$ more epochs make it *worse*: the latent
# vectors keep growing and both losses rise (figure `06_long`).

# %%
best_long_val = min(long_val, key=lambda s: s["mean"])
long_curves = nb06.long_table(long_rows)
val_at = {
    eta: [t["mean"] for t in long_curves if t["eta"] == eta and t["column"] == "val_loss"]
    for eta in sorted({t["eta"] for t in long_curves})
}
etas_long = sorted(val_at)
(
    f"{best_long_val['eta']:.2g}",
    round(best_long_val["mean"], 4),
    best_long_val["mean"] <= fm_best + 0.001,
    int(np.argmin(val_at[best_long_val["eta"]])) + 1 >= 40,
    all(val_at[eta][-1] > val_at[eta][0] for eta in etas_long if eta > 2.5e-3),
)

# %% [markdown]
# In short: the published curve is reproduced, but it is the curve of a linear model (E3) on
# shifted features (E4); the exact step at the published step size diverges; the stability
# claim rests on a 1,000-rating, training-loss-only experiment (E5) and reverses on the full
# data; on held-out data all methods (and the linear model) end within a few thousandths of
# each other once their step size is tuned.

# %% [markdown]
# ### Provenance
#
# Each results file has a JSON twin with the configuration, the seeds, the git commit,
# package versions, the device and the wall time of every session that added runs. After a
# change to the dual solver's stopping rule the exact-prox runs were dropped from the files and
# trained again (the later sessions below); the CSV rows are those of the last session that
# wrote them. Stable runs agree between the two solvers to about 1e-15; runs that diverge
# (the exact step at the largest step sizes) are chaotic and agree only statistically.

# %%
import json

for name in ("published-10epoch", "stability-published", "stability-full", "long"):
    prov = json.loads((nb06.RESULTS / f"{name}.json").read_text())
    for sess in prov["sessions"]:
        if sess["runs_added"]:
            dev = sess["device"]
            print(
                f"{name:20s} +{sess['runs_added']:4d} runs  {sess['wall_s']:7.1f} s  {dev['backend']}, "
                f"{dev['threads']} threads, {dev.get('cpu', '?')}, fmedu commit {sess['git']['commit'][:7]}"
            )

# %% [markdown]
# ## 5 · Speed
#
# `python -m fmedu bench` times both prox implementations side by side in one run: the
# published-style torch step (golden-section search, about 40 evaluations of $q$ with torch
# operations per step) and the engine's compiled closed-form step (four scalars per sample, a
# safeguarded Newton iteration on $q'$). A small live version (timings vary between runs):

# %% tags=["nbval-ignore-output"]
from fmedu import bench

pub_rate = bench.published_steps_per_second(ml.idx, ml.nnz, ml.y, ml.n_features, steps=100)
eng_rate = bench.engine_steps_per_second(ml.idx, ml.nnz, ml.y, ml.n_features, "prox", rows=train_rows[:20000])
print(
    f"published-style torch step: {pub_rate:,.0f} steps/s; engine: {eng_rate:,.0f} steps/s; "
    f"speed-up {eng_rate / pub_rate:,.0f}x"
)
