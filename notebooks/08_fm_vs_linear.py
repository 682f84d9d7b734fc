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
# # 08 · Does an FM beat a linear model? A comparison with honest uncertainty
#
# Chapter 07 reproduced the proximal-point blog post's MovieLens experiment [1] and showed what
# its stability plot measures. The question a practitioner asks is different: trained the way
# the post trains them, does any of these factorization machines predict *new* ratings better
# than a linear model — and how sure can we be? This chapter sets up a fair protocol, adds two
# standard peers (logistic regression and a Bayesian factorization machine), measures the
# sampling error of a 10,000-rating test set of MovieLens 100k [3], and says, method by method
# and with an interval,
# which model is better, worse, or indistinguishable. The short answer: one of the post's methods
# ties with logistic regression, the others are measurably worse, and a regularised FM beats it;
# chapter 09 explains why unregularised training wastes the interactions and repairs it. The
# standard we hold the comparison to — tuned baselines, and uncertainty that includes the test
# set's — is the one argued for by Rendle, Zhang and Koren [2].
#
# Symbols as in the [notation](../README.md#notation) table.
#
# ## What you will learn
#
# * how to choose fairly: train, validation and test rows, the step size and the epoch chosen on
#   validation only, and why choosing on the reported rows flatters;
# * the standard error of a held-out log-loss (8.1) and of a *paired* difference (8.2), and why
#   pairing makes comparisons on one test set far sharper;
# * where the post's methods stand against logistic regression and a Bayesian FM, with paired
#   bootstrap intervals;
# * a measure of step-size robustness that does not depend on where the grid ends.
#
# ## What you need
#
# * Chapter 07 (the data, the three splits, the methods: the exact prox step, the frozen-vector
#   prox step of erratum E3 — a linear model — SGD, Adagrad and Adam, and the full step-size sweep).
# * The logistic loss $\ell_r = \log(1 + e^{-y_r\hat y_r})$ of row $r$; the mean over rows the
#   model never saw is the *held-out log-loss*. The AUC is the probability that a random 5-star
#   rating is scored above a random other one (1/2 for a constant score) [9].
# * Variance of a sum of independent terms; the sample variance with $m - 1$ in the denominator.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

from fmedu import engine
from fmedu.exercises import EXERCISES
from fmedu.figures import nb08
from fmedu.movielens import analysis, data, metrics, peers
from fmedu.movielens.regularised import paired_bootstrap
from fmedu.notebook import setup

setup()
_ = engine.set_threads(1)
ml = data.require_movielens()  # checks every file's SHA-256
split_data, splits = peers.experiment_split()
sf_rows = analysis.results("stability-full")
peer_rows = analysis.peer_results()
CHOOSE, REPORT = analysis.held_out(sf_rows)
PEER_SPLIT = analysis.peer_split(peer_rows)
test_rows = splits[PEER_SPLIT]
y01 = (ml.y > 0).astype(np.float64)
CHOOSE, REPORT, {name: len(rows) for name, rows in splits.items()}

# %% [markdown]
# ## 1 · A tiny example: two models, four test ratings
#
# Two models are scored on the same four test ratings; their per-row losses $a_r$ and $b_r$ are
# below. Row 2 is hard for both (a 5-star rating both scored low), row 3 easy for both. The
# difference of the mean losses is the mean of the per-row differences $d_r = a_r - b_r$:

# %%
a = [sp.Rational(x) for x in ("0.20", "1.50", "0.10", "0.90")]
b = [sp.Rational(x) for x in ("0.25", "1.40", "0.15", "1.00")]
d = [x - y for x, y in zip(a, b)]
mean = lambda v: sum(v) / len(v)
var = lambda v: sum((x - mean(v)) ** 2 for x in v) / (len(v) - 1)  # sample variance
mean(a) - mean(b), d, var(a), var(b), var(d)

# %% [markdown]
# The losses vary a lot from row to row (sample variances 0.43 and 0.36), but the differences
# vary little (0.0075): the rows' difficulty is *shared*. How much a mean moves
# when the test rows are drawn again is governed by these variances.
#
# **The standard error of a held-out loss.** If the $m$ test rows are drawn independently from
# the population of ratings, the losses $\ell_1, \ldots, \ell_m$ are independent with a common
# variance $\sigma^2$, and
#
# $$
# \begin{aligned}
# \operatorname{Var}\Bigl(\frac1m\sum_{r=1}^m \ell_r\Bigr)
#   &= \frac1{m^2}\sum_{r=1}^m \operatorname{Var}(\ell_r) &&\text{(independent rows: variances add)}\\
#   &= \frac{\sigma^2}{m}, \qquad
#   \mathrm{SE} \approx \frac{s}{\sqrt m} &&\text{(estimate } \sigma \text{ by the sample s.d. } s\text{)}
# \end{aligned}
# \tag{8.1}
# $$
#
# **The paired difference.** Two models scored on the *same* rows give pairs $(a_r, b_r)$; the
# difference of their mean losses is the mean of $d_r = a_r - b_r$, so (8.1) applies to $d_r$:
#
# $$
# \begin{aligned}
# \operatorname{Var}(d_r) &= \operatorname{Var}(a_r) + \operatorname{Var}(b_r) - 2\operatorname{Cov}(a_r, b_r)
#   &&\text{(variance of a difference)}\\
# \mathrm{SE}\bigl(\bar a - \bar b\bigr) &\approx \frac{s_d}{\sqrt m}
#   \;\ll\; \sqrt{\frac{s_a^2 + s_b^2}{m}} \quad\text{when } \operatorname{Cov}(a_r, b_r) \text{ is large}
#   &&\text{(shared difficulty)}
# \end{aligned}
# \tag{8.2}
# $$
#
# The first line of (8.2) holds for sample variances too, exactly. A check with general symbols
# for five rows ($\operatorname{cov}$ with the same $m - 1$ denominator):

# %%
A, B = sp.symbols("a1:6"), sp.symbols("b1:6")
cov = lambda u, v: sum((x - mean(u)) * (y - mean(v)) for x, y in zip(u, v)) / (len(u) - 1)
D = [x - y for x, y in zip(A, B)]
sp.expand(var(D) - (var(A) + var(B) - 2 * cov(A, B))), var(d) == var(a) + var(b) - 2 * cov(a, b)

# %%
fig = nb08.plot_pairing()
plt.show()

# %% [markdown]
# *Why pairing helps (simulated losses of two models on 2,000 rows that share each row's
# difficulty). Left: per-row losses of the two models lie along the diagonal. Right: over many
# redrawn test sets, the difference of the two mean losses varies far less (paired) than it would
# if the two means were independent (unpaired).* In the real comparison below, the same holds.
#
# ## 2 · Choosing fairly: train, validation, test
#
# Every method has a step size to choose, and, because every run records its loss after each
# epoch, an epoch to stop at. Picking the smallest of many noisy held-out numbers and reporting
# that same number is optimistic: the minimum of noisy estimates is biased low (Exercise 8.1; [8]
# treats model selection in general). So each run stops at the epoch with the lowest *validation*
# loss, each method's step size is the one whose runs reach the lowest mean validation loss there,
# and the number reported is the *test* loss at those choices. How large is the flattery? If $K$
# settings have the same true loss $\mu$ and each is measured with an independent error of
# standard deviation $\sigma$, the smallest measurement is on average $\mu - \sigma\,e_K$, where
# $e_K$ is the expected largest of $K$ standard normal draws (about 1.54 for $K = 10$; Exercise
# 8.1 simulates it); the test loss at the chosen setting, measured on other rows, is unbiased.
# How much would the same-rows shortcut flatter each method here?

# %%
chosen = analysis.selection_table(sf_rows, CHOOSE, REPORT)
print("method                          eta       epoch  validation  test     test - validation")
for s in chosen:
    print(
        f"{nb08.LABELS[s['method']]:30s} {s['eta']:.2e}  {s['epoch_median']:5g}  {s['choose_mean']:.4f}"
        f"      {s['mean']:.4f}   {s['mean'] - s['choose_mean']:+.4f}"
    )
len(chosen), all(s["attempts"] == 10 for s in chosen)

# %% [markdown]
# (Epoch: the median over the ten attempts of the epoch each one stopped at; each mean is over
# the ten attempts, i.e. seeds, on this one split.) All five are higher on the test rows; so is
# logistic regression, which chose nothing on the validation rows:

# %%
lr_rows = {r["split"]: r["log_loss"] for r in peer_rows if (r["model"], r["setting"]) == ("logistic regression", "C=1")}
gap_lr = lr_rows["test"] - lr_rows["validation"]
val_order = [nb08.LABELS[s["method"]] for s in sorted(chosen, key=lambda s: s["choose_mean"])]
test_order = [nb08.LABELS[s["method"]] for s in sorted(chosen, key=lambda s: s["mean"])]
round(gap_lr, 4), all(s["mean"] > s["choose_mean"] for s in chosen), val_order, test_order

# %% [markdown]
# So most of the gap is that these 10,000 test ratings happen to be harder than the 10,000
# validation ratings. And the *order* of the methods is not the same on the two sets: SGD is
# first on validation, Adagrad on test. Differences that change places between two samples of
# 10,000 ratings are differences of the size of the sampling error — section 4 measures it.
# Three of the chosen epochs sit at the end of the 20-epoch budget (median 19, 18.5 and 19 for
# the exact step, the frozen-vector step and SGD): for them the budget, not validation, stopped
# training, and more epochs might have helped.

# %%
budget = max(int(r["epoch"]) for r in sf_rows)
{nb08.LABELS[s["method"]]: s["epoch_median"] for s in chosen if s["epoch_median"] >= budget - 2}, budget

# %% [markdown]
# ## 3 · What practitioners would use instead
#
# Two standard tools, fitted on exactly the same training rows and features: L2-regularised
# logistic regression from scikit-learn [7] at its default $C = 1$ (a grid of $C$ picked on the
# validation rows also chooses $C = 1$), and a Bayesian FM fitted by Gibbs sampling with myFM [6],
# rank 20, whose hierarchical priors choose the regularisation of $w$ and $V$ from the data [5]
# (and rank 0, the same model without interactions). Nothing of these is tuned on the test rows.
#
# Both are the model of this course with something added. Logistic regression is the FM with
# $V = 0$, $\hat y = w_0 + \sum_i w_i x_i$, fitted to the whole training set at once by minimising
#
# $$
# \sum_{r \in \text{train}} \log\bigl(1 + e^{-y_r \hat y_r}\bigr) + \frac{1}{2C}\,\|w\|^2 ,
# $$
#
# so its only defence against over-fitting is the $L_2$ penalty with weight $1/(2C)$. The
# Bayesian FM keeps the full FM, puts Gaussian priors on $w$ and on every column of $V$, gives the
# priors' precisions priors of their own (so the data choose how strongly to shrink), and predicts
# with the average over many draws of $(w_0, w, V)$ from the posterior instead of one fitted value.
# The post's methods have neither: one pass of batch-1 steps per epoch, no penalty, no averaging.
# Side by side on the test rows (the post's methods: log-loss mean and sd over 10 attempts, AUC
# over 3 of them; myFM: over 3 seeds):

# %%
comparison = nb08.comparison_table(sf_rows, peer_rows)
print(f"{'model':30s} {'setting':34s} {'log-loss':>16s} {'AUC':>6s}")
for t in comparison:
    print(f"{t['model']:30s} {t['setting']:34s} {t['log_loss']:.4f} ± {t['log_loss_sd']:.4f}  {t['auc']:.3f}")

# %%
fig = nb08.plot_comparison(comparison)
plt.show()

# %% [markdown]
# *Test log-loss of every model; bars: ±1 standard deviation over attempts or seeds on this one
# test set (not the sampling error of the test set); dotted line at logistic regression. Orange:
# the frozen-vector step, which is a linear model; red: the post's FM methods.* Logistic
# regression and the rank-0 Bayesian model agree, so their loss is what the linear part of this
# data is worth; the rank-20 Bayesian FM is lower. The bars over attempts are small — but whether these
# differences would survive a different test set is a question the bars cannot answer.
#
# ## 4 · How large is the sampling error?
#
# To apply (8.1) and (8.2) we need each model's loss on each test row. The committed results
# hold means only, so we train one run of each of the post's methods again — attempt 0, its chosen
# step size, stopped at its own chosen epoch — and fit logistic regression and one Bayesian FM
# (seed 0). The FM refits and the Bayesian FM must reproduce the committed numbers exactly (a
# Gibbs sampler with a fixed seed is deterministic too). Logistic regression's solver, L-BFGS,
# stops once its gradient is small (scikit-learn's default tolerance, 10⁻⁴), not at the exact
# optimum, and its path follows the machine's linear-algebra library: on another processor it
# stops at a slightly different point, so its test loss must agree to 10⁻⁶, a thousandth of the
# smallest difference (0.001) this chapter tries to resolve. This takes a few minutes:

# %%
picks = peers.blog_method_choices(sf_rows, attempts=(0,))
X = peers.one_hot_matrix(ml.idx, ml.nnz, ml.n_features)
train = splits["train"]
prob, same = {}, []
for p in picks:
    predict, val = peers.refit_blog_method(split_data, splits, p["method"], p["eta"], 0, int(p["epoch"]))
    prob[nb08.LABELS[p["method"]]] = predict(test_rows)
    same.append(val == p["choose"])
prob["logistic regression"] = peers.fit_logistic(X[train], y01[train], C=1.0)(X[test_rows])
prob["Bayesian FM (rank 20)"] = peers.fit_bayesian_fm(X[train], y01[train], rank=20, seed=0)(X[test_rows])
t = y01[test_rows]
row_loss = {name: -(t * np.log(p) + (1 - t) * np.log1p(-p)) for name, p in prob.items()}
committed = {
    (r["model"], r["setting"]): r["log_loss"] for r in peer_rows if r["split"] == PEER_SPLIT and int(r["seed"]) == 0
}
(
    all(same),
    abs(row_loss["logistic regression"].mean() - committed[("logistic regression", "C=1")]) <= 1e-6,
    abs(row_loss["Bayesian FM (rank 20)"].mean() - committed[("Bayesian FM (myFM)", "rank=20")]) <= 1e-9,
)

# %% [markdown]
# Every refit reproduces its recorded validation loss exactly, the Bayesian FM its recorded test
# loss, and logistic regression its test loss to 10⁻⁶. Now (8.1) for logistic regression's test
# loss, and (8.2) for its difference with the exact prox step, against the spread over seeds that the bars above showed:

# %%
m = len(test_rows)
lr_loss = row_loss["logistic regression"]
se_single = lr_loss.std(ddof=1) / math.sqrt(m)
se_paired = (row_loss["prox, exact step"] - lr_loss).std(ddof=1) / math.sqrt(m)
seed_sd = next(s["sd"] for s in chosen if s["method"] == "prox")
m, round(se_single, 4), round(se_paired, 4), round(seed_sd, 4), bool(se_paired < se_single / 3)

# %% [markdown]
# The standard error of one 10,000-rating test log-loss is 0.0057 — larger than most of the
# differences between the methods, and more than five times the spread over seeds (0.001 for the
# exact step). Pairing removes the shared difficulty of the rows: the standard error of the
# exact step's paired difference with logistic regression is 0.0015. Differences of a few
# thousandths can therefore be resolved, but only as paired differences, and only when they are
# larger than about twice that.
#
# Two sources of variation are in play, and they add. Drawing another test set moves every
# model's loss (the sampling error, what (8.1) and (8.2) measure); training with another seed
# moves one model's loss on a fixed test set (the spread over seeds, what the bars of section 3
# show). Since the second is several times smaller here, an interval for one attempt on many
# redrawn test sets is the honest first-order picture; chapter 09 adds the second by repeating the
# whole experiment on five folds.
#
# For intervals we use the **paired bootstrap** [10]: draw the 10,000 test rows with replacement,
# the same rows for both models, recompute the mean difference, repeat 4,000 times, and take the
# 2.5 % and 97.5 % quantiles. It makes no normality assumption. A model is *better* than logistic
# regression if the whole 95 % interval of its loss minus logistic regression's is below 0,
# *worse* if above, and *indistinguishable* (a tie) if it contains 0:

# %%
rng_seed = 20260
verdict = {}
print(f"{'model':30s} {'minus logistic regression':>26s}   95 % interval        verdict")
for name, loss in row_loss.items():
    if name == "logistic regression":
        continue
    diff, lo, hi = paired_bootstrap(loss, lr_loss, n_boot=4000, seed=rng_seed)
    verdict[name] = "better" if hi < 0 else "worse" if lo > 0 else "tie"
    print(f"{name:30s} {diff:+26.4f}   [{lo:+.4f}, {hi:+.4f}]   {verdict[name]}")
verdict

# %% [markdown]
# The bootstrap and the formula (8.2) should tell the same story when the per-row differences are
# many and not too skewed: the normal interval $\bar d \pm 1.96\,s_d/\sqrt m$ against the
# bootstrap's, for every model, with their largest disagreement in either end:

# %%
gaps_ends = []
for name, loss in row_loss.items():
    if name == "logistic regression":
        continue
    dr = loss - lr_loss
    half = 1.96 * dr.std(ddof=1) / math.sqrt(m)
    _, lo, hi = paired_bootstrap(loss, lr_loss, n_boot=4000, seed=rng_seed)
    gaps_ends.append(max(abs(lo - (dr.mean() - half)), abs(hi - (dr.mean() + half))))
rows_factor = (1.96 * se_paired / 0.001) ** 2  # test sets this many times larger resolve a 0.001 difference
round(max(gaps_ends), 4), max(gaps_ends) < 0.0005, round(rows_factor, 1)

# %% [markdown]
# They agree to within 0.00005 at every end (0.0 at four decimals), far less than the intervals'
# half-widths: with 10,000 rows the mean difference is close to normal, and (8.2) is all one needs
# to size an experiment: to
# resolve a paired difference of 0.001 the half-width $1.96\,s_d/\sqrt m$ must fall below it, which
# takes a test set $(1.96 \cdot \mathrm{SE}/0.001)^2$ times larger — the last number above, 8.9 for
# the exact step — because the SE falls only as $1/\sqrt m$.
#
# Method by method, on these test rows and for attempt 0: Adagrad and SGD are indistinguishable
# from logistic regression (SGD only just: its interval barely contains 0); the exact prox step,
# the frozen-vector linear model and Adam are worse, by intervals that exclude 0; the Bayesian FM
# is better. "The post's FMs tie with a linear model" is therefore true of Adagrad and SGD, not of
# the exact prox step the post is about, and for none of them is it a win.
#
# ## 5 · What remains of the published conclusions
#
# **"Adagrad is the best method on this data set."** On test loss, with paired intervals between
# the post's methods:

# %%
pairs = [("Adagrad", "SGD"), ("Adagrad", "prox, exact step"), ("SGD", "prox, exact step")]
pairs += [("SGD", "prox as published (V frozen)"), ("Adagrad", "prox as published (V frozen)")]
between = {}
for x, z in pairs:
    diff, lo, hi = paired_bootstrap(row_loss[x], row_loss[z], n_boot=4000, seed=rng_seed)
    between[f"{x} − {z}"] = (round(diff, 4), round(lo, 4), round(hi, 4))
between

# %% [markdown]
# Partly. Adagrad has the lowest test loss of the post's methods, and it is better than the exact
# prox step by an interval that excludes 0 (so is SGD); but its lead over SGD lies inside the
# sampling error, and against a tuned linear model it only ties. SGD and Adagrad both end lower
# than the frozen-vector linear model, on validation (the table in section 2) and on test — their
# trained interactions carry a little signal — but on test the paired intervals of those two
# differences still contain 0: ten thousand ratings cannot tell them apart.
#
# **"Prox is the most consistent across step sizes."** Chapter 07 measured consistency as the
# largest minus the smallest test loss over a method's grid, which grows with how far a grid
# reaches into divergence (prox's ends at $1/23$, the others' at $0.1$) and mixes "too slow" with
# "diverges". A measure that asks the practitioner's question instead — *how far can I miss the
# best step size and lose at most 0.005?* — is the width in decades of the step sizes whose test
# loss is within $\tau = 0.005$ of the method's best:
#
# $$
# W_\tau = \log_{10}\frac{\eta_{\mathrm{hi}}}{\eta_{\mathrm{lo}}}, \qquad
# \eta_{\mathrm{lo}}, \eta_{\mathrm{hi}} = \text{smallest and largest } \eta \text{ with }
# L(\eta) \le \min_{\eta'} L(\eta') + \tau .
# \tag{8.3}
# $$
#
# It is $0$ when only the best grid point qualifies, and does not depend on where the grid
# ends unless the qualifying set reaches an end (then it is a lower bound, marked):

# %%
sf_test = analysis.selection_summary(sf_rows, CHOOSE, REPORT)
width = {}
for method in analysis.METHOD_ORDER:
    sel = [s for s in sf_test if s["method"] == method]
    w, at_edge = analysis.stable_width([s["eta"] for s in sel], [s["mean"] for s in sel], tol=0.005)
    width[nb08.LABELS[method]] = (round(w, 2), "≥ (reaches the grid's end)" if at_edge else "")
width, min(width, key=lambda k: width[k][0]) == "prox, exact step"

# %% [markdown]
# On this measure the exact prox step is the *least* robust of the five: only its best step
# size is within 0.005 of its best (its grid points are about 0.4 decades apart, so its window is
# narrower than that). SGD and Adagrad tolerate 0.89 decades each; the frozen-vector step and Adam
# at least 0.81 and 1.33 (their windows reach an end of the grid). Adam's wide window is at its
# smallest step sizes, where its best is still worse than the others' best — robust and mediocre.
# This is the reverse of what the post concluded for the proximal step, and chapter 07's
# derivation (7.1) is the reason: the larger $\eta$, the more an implicit step stretches the
# vectors that many ratings share.
#
# ## 6 · Why unregularised batch-1 FMs do not beat a linear model
#
# An FM with $k = 20$ has 54,560 latent parameters, more than half a parameter per training
# rating; most users and movies have few ratings; and nothing but early stopping holds the latent
# vectors back. At their chosen epochs, the gap between training loss (the epoch's mean loss before
# each update) and test loss:

# %%
gaps = {nb08.LABELS[s["method"]]: round(s["mean"] - s["train_mean"], 3) for s in chosen}
gaps, all(gaps[m] > gaps["prox as published (V frozen)"] for m in ("SGD", "Adagrad", "prox, exact step"))

# %% [markdown]
# The three FM methods that train $V$ with a constant step fit their training rows beyond what
# carries over: their gap is larger than the frozen-vector linear model's. How thin the data is
# for the latent vectors, counted on the training rows:

# %%
per_user = np.bincount(ml.user[train], minlength=943)
per_movie = np.bincount(ml.item[train], minlength=1682)
latent = ml.n_features * 20
(
    latent,
    round(latent / len(train), 2),
    int(np.median(per_user)),
    int(np.median(per_movie)),
    round(float(np.mean(per_movie < 10)), 2),
)

# %% [markdown]
# 54,560 latent numbers for 80,000 ratings (0.68 per rating); the median user has 51 training
# ratings, the median movie 22, and 36 % of the movies fewer than ten, so their vectors are fitted
# to a handful of labels. A constant-step method without a penalty keeps moving them as long as it runs; only
# early stopping (chosen on validation) holds them back, and for three of the methods even that
# was cut short by the 20-epoch budget.
#
# The Bayesian FM regularises $V$ with priors and
# averages over many plausible $V$, and it turns the interactions into held-out accuracy;
# unregularised batch-1 training, with any of the post's step rules, gets at most a tie.
#
# For the exact prox step there is a second reason, the one chapter 07 saw at $\eta = 1/23$. The
# FM's pairwise term is *bilinear*, and on a bilinear term an implicit step stretches more than an
# explicit one. The smallest case: two scalars $u, v$ and the loss $f(u, v) = -c\,uv$ with $c > 0$
# (a sample that wants $\langle v_i, v_j\rangle$ larger). Write $s = u + v$:
#
# $$
# \begin{aligned}
# \text{explicit (SGD):}\quad & u^+ = u + \eta c\,v,\; v^+ = v + \eta c\,u
#   &&\Rightarrow\; s^+ = (1 + \eta c)\,s\\
# \text{implicit (prox):}\quad & u^+ = u + \eta c\,v^+,\; v^+ = v + \eta c\,u^+
#   &&\text{(the gradient at the new point)}\\
#   & s^+ = s + \eta c\,s^+ \;\Rightarrow\; s^+ = \frac{s}{1 - \eta c}
#   &&\text{(add the two equations)}\\
# \frac{1}{1 - x} &= 1 + x + x^2 + \cdots \;>\; 1 + x \quad (0 < x < 1)
#   &&\text{(geometric series)}
# \end{aligned}
# \tag{8.4}
# $$
#
# The implicit step's factor is (7.1)'s $1/(1 - (d-1)\eta)$ in miniature. A check with sympy,
# solving the implicit step's two equations for general symbols:

# %%
u, v, c_, eta_ = sp.symbols("u v c eta", positive=True)
up, vp = sp.symbols("u_plus v_plus")
sol = sp.solve([sp.Eq(up, u + eta_ * c_ * vp), sp.Eq(vp, v + eta_ * c_ * up)], [up, vp], dict=True)[0]
implicit = sp.simplify((sol[up] + sol[vp]) / (u + v))
excess = sp.simplify(implicit - (1 + eta_ * c_))
implicit, sp.simplify(excess - (c_ * eta_) ** 2 / (1 - c_ * eta_)) == 0

# %% [markdown]
# The implicit factor is $1/(1 - c\eta)$, and it exceeds the explicit one by
# $(c\eta)^2/(1 - c\eta) > 0$ for every $0 < c\eta < 1$. On MovieLens the vectors that almost every
# sample touches (the gender, the age groups, popular movies) receive this extra stretch thousands
# of times an epoch, and inflate. Whether an $L_2$ penalty on $V$, as libFM's SGD uses [4], repairs both, and what
# a penalty does to the prox step, is the subject of
# [chapter 09](09_regularised_prox.ipynb).
#
# ## Key takeaways
#
# * Choose on validation rows, report test rows; the order of the post's methods flips between
#   the two, a first sign that their differences are of the size of the sampling error.
# * The standard error of a 10,000-rating test log-loss is 0.0057 (8.1), more than five times the
#   spread over seeds; a paired difference on the same rows has about 0.0015 (8.2). Bands over
#   seeds on one split are not the uncertainty of a comparison.
# * With paired bootstrap intervals against logistic regression: Adagrad and SGD tie; the exact
#   prox step, the frozen-vector linear model and Adam are worse; a Bayesian FM is better.
# * By the width of its near-optimal step sizes (8.3), the exact prox step is the least robust to
#   $\eta$ of the post's methods.
# * Unregularised batch-1 FMs over-fit their latent vectors; a regularised FM finds the
#   interactions (chapter 09).
#
# ## Exercises
#
# ### Exercise 8.1 (medium)
#
# *The winner's curse.* Ten step sizes all have the same true held-out loss 0.42; each is
# measured on a validation set and on a test set with independent noise of standard deviation
# 0.002. Choose the step size with the smallest validation loss, 4,000 times. Predict whether
# the chosen validation loss is, on average, below 0.42, and whether the test loss at the chosen
# step size is.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The minimum of ten noisy numbers is biased low (by about 1.54 standard deviations for ten
# normal draws); the test number at the chosen index is an independent draw, so it is unbiased.
rng = np.random.default_rng(0)
val = 0.42 + 0.002 * rng.standard_normal((4000, 10))
test = 0.42 + 0.002 * rng.standard_normal((4000, 10))
pick = val.argmin(axis=1)
chosen_val, chosen_test = val[np.arange(4000), pick], test[np.arange(4000), pick]
se = 0.002 / math.sqrt(4000)
print(f"mean chosen validation {chosen_val.mean():.5f}, mean test at the choice {chosen_test.mean():.5f}")
print(f"bias of the chosen validation loss in standard deviations (e_10): {(0.42 - chosen_val.mean()) / 0.002:.2f}")
bool(chosen_val.mean() < 0.42 - 1.4 * 0.002), bool(abs(chosen_test.mean() - 0.42) < 4 * se)

# %% [markdown]
# ### Exercise 8.2 (hard)
#
# A recommender with no learning at all: score every test rating by its movie's share of 5-star
# ratings among the *training* rows (movies without training ratings get the overall share).
# Predict its AUC relative to 1/2 and to logistic regression's, then compute it with
# `metrics.roc_auc`. Why can its log-loss not be compared as easily?

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The AUC only needs a ranking. The movie's share of 5-star ratings ranks well (popular,
# well-loved movies get 5 stars more often) but ignores the user, so it should land between
# the constant score (AUC 1/2) and the linear model, which also knows who rates.
fives = np.bincount(ml.item[train], weights=(ml.y[train] > 0), minlength=1682)
counts = np.bincount(ml.item[train], minlength=1682)
share = np.where(counts > 0, fives / np.maximum(counts, 1), (ml.y[train] > 0).mean())
auc = metrics.roc_auc(ml.y[test_rows], share[ml.item[test_rows]])
lr_auc = metrics.roc_auc(ml.y[test_rows], prob["logistic regression"])
# Its log-loss is poor for another reason: a movie seen once with 5 stars gets probability 1,
# and one wrong test rating then costs -log(1e-15), about 34.5; the share is not calibrated.
print(f"AUC {auc:.3f} against logistic regression's {lr_auc:.3f}")
0.5 < auc < lr_auc

# %% [markdown]
# ### Exercise 8.3 (medium, your turn)
#
# Two models scored on the *same* test rows differ by the mean of their per-row loss differences.
# Write the standard error (8.2) of that mean, then use it on the movie-share model of Exercise 8.2
# against the base rate. **Predict first:** is the paired standard error larger or smaller than
# what you would get by treating the two models' losses as independent samples?


# %% fmedu={"stub": "def my_paired_se(loss_a, loss_b):\n    raise NotImplementedError  # your code here: return a float"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_paired_se(loss_a, loss_b):
    diff = np.asarray(loss_b, dtype=np.float64) - np.asarray(loss_a, dtype=np.float64)
    return float(diff.std(ddof=1) / np.sqrt(len(diff)))


# %%
EXERCISES["paired_se"].check(my_paired_se).correct

# %% [markdown]
# On MovieLens (with your function once it passes, the reference until then): per-row log-losses
# of the base rate (the training share of 5-star ratings for every rating) and of the movie-share
# model, on the test rows, with the share clipped away from 0 and 1 so that one unseen rating
# cannot cost 34.5:

# %%
p_base = np.full(len(test_rows), (ml.y[train] > 0).mean())
fives_per_movie = np.bincount(ml.item[train], weights=(ml.y[train] > 0), minlength=1682)
ratings_per_movie = np.bincount(ml.item[train], minlength=1682)
movie_share = np.where(ratings_per_movie > 0, fives_per_movie / np.maximum(ratings_per_movie, 1), p_base[0])
p_movie = np.clip(movie_share[ml.item[test_rows]], 0.01, 0.99)
toy_loss = {name: -(t * np.log(p) + (1 - t) * np.log1p(-p)) for name, p in (("base", p_base), ("movie", p_movie))}
se_fn = (
    my_paired_se if EXERCISES["paired_se"].check(my_paired_se, quiet=True).correct else EXERCISES["paired_se"].reference
)
paired = se_fn(toy_loss["base"], toy_loss["movie"])
unpaired = float(np.sqrt(sum(v.var(ddof=1) / len(v) for v in toy_loss.values())))
print(
    f"mean difference {np.mean(toy_loss['movie'] - toy_loss['base']):+.4f}, paired SE {paired:.4f}, unpaired {unpaired:.4f}"
)
paired < unpaired

# %% [markdown]
# ### Exercise 8.4 (medium, your turn)
#
# Write the width (8.3): given step sizes (in any order), their losses (some possibly `inf` or
# `nan`: a diverged run) and a tolerance $\tau$, return $\log_{10}(\eta_{\mathrm{hi}}/\eta_{\mathrm{lo}})$
# over the step sizes whose loss is within $\tau$ of the smallest finite loss. **Predict first:**
# what does your function return for SGD's sweep if you add a step size of 10 whose runs diverge?


# %% fmedu={"stub": "def my_stable_width(etas, losses, tol):\n    raise NotImplementedError  # your code here: return a float"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_stable_width(etas, losses, tol):
    etas, losses = np.asarray(etas, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    ok = np.isfinite(losses)
    inside = etas[ok][losses[ok] <= losses[ok].min() + tol]
    return float(np.log10(inside.max() / inside.min()))


# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# A diverged run is outside the window, so adding it changes nothing: the width is a property
# of the valley around the best step size, not of where the grid ends.
sgd = [s for s in sf_test if s["method"] == "sgd"]
etas, losses = [s["eta"] for s in sgd], [s["mean"] for s in sgd]
fn = (
    my_stable_width
    if EXERCISES["stable_width"].check(my_stable_width, quiet=True).correct
    else EXERCISES["stable_width"].reference
)
fn(etas, losses, 0.005) == fn([*etas, 10.0], [*losses, math.inf], 0.005)

# %%
EXERCISES["stable_width"].check(my_stable_width).correct

# %% [markdown]
# ### Every check of this chapter, caught
#
# A check that no wrong function can fail proves nothing. The table runs every check of this chapter
# that takes a function of yours (each "your turn" exercise's check) on every wrong variant in the
# course's catalogue and on the reference solution; "caught" means the check said wrong. The last line is
# True when every check catches at least one variant, every variant is caught by at least one check,
# and no check rejects a reference solution.

# %%
from fmedu.exercises import catch_table, every_check_catches, format_catch_table

catch_rows = catch_table("08")
print(format_catch_table(catch_rows))
every_check_catches(catch_rows)

# %% [markdown]
# ## References
#
# 1. A. Shtoff, "Proximal Point to the Extreme — Factorization Machines", blog post, 2021,
#    <https://alexshtf.github.io/2021/04/14/ProximalPointFM.html>.
# 2. S. Rendle, L. Zhang and Y. Koren, "On the Difficulty of Evaluating Baselines: A Study on
#    Recommender Systems", arXiv:1905.01395, 2019.
# 3. F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context", ACM
#    Transactions on Interactive Intelligent Systems 5(4), article 19, 2015.
# 4. S. Rendle, "Factorization Machines with libFM", ACM Transactions on Intelligent Systems and
#    Technology 3(3), article 57, 2012.
# 5. C. Freudenthaler, L. Schmidt-Thieme and S. Rendle, "Bayesian Factorization Machines",
#    NIPS Workshop on Sparse Representation and Low-rank Approximation, 2011.
# 6. T. Ohtsuki, myFM: Bayesian factorization machines with Gibbs sampling (software, version
#    0.4.0), <https://github.com/tohtsky/myFM>.
# 7. F. Pedregosa et al., "Scikit-learn: Machine Learning in Python", Journal of Machine
#    Learning Research 12, pp. 2825–2830, 2011.
# 8. T. Hastie, R. Tibshirani and J. Friedman, *The Elements of Statistical Learning*, 2nd ed.,
#    Springer, 2009, chapter 7 (model assessment and selection).
# 9. T. Fawcett, "An Introduction to ROC Analysis", Pattern Recognition Letters 27(8),
#    pp. 861–874, 2006.
# 10. B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall, 1993.

# %% [markdown]
# [← Previous: 07 · MovieLens 100k: the published experiment](07_movielens.ipynb) · [Course
# index](00_index.ipynb) · [Next: 09 · Regularised proximal point →](09_regularised_prox.ipynb)
