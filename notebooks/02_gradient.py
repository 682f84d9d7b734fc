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
# # 02 · The O(nk) gradient, checked three ways
#
# Training an FM means moving every parameter against the gradient of a loss, sample after
# sample: $1 + n + nk$ partial derivatives each time. If they cost $O(n^2k)$, the speed-up of
# chapter 01 would be lost at the first training step. **Is training as cheap as predicting?**
# Yes. This chapter derives $\partial\hat y/\partial v_{if}$ from Rendle's form of the FM in four
# lines, shows that one shared sum per factor makes the whole gradient cost $O(nk)$ (and
# $O(d\,k)$ for a sample with $d$ non-zeros), extends it to the gradient of a loss over a batch,
# checks the result three independent ways against tolerances derived from a rounding model,
# and trains an FM with a loop you can read in full. On the way it corrects two sources: an
# unpublished gradient note with a wrong factor 2, and a widely used implementation whose
# mistake no test with two factors can see.
#
# Symbols follow the course's [notation](../README.md#notation) table.
#
# ## What you will learn
#
# * to derive $\partial\hat y/\partial v_{if} = x_i s_f - v_{if}x_i^2$, with $s_f = \sum_j v_{jf}x_j$, from
#   Rendle's form, and why sharing $s_f$ makes the gradient $O(nk)$;
# * to derive the gradient of a batch loss by the chain rule, with the derivatives of the squared,
#   logistic and hinge losses (and a stated choice at the hinge's kink);
# * to check a gradient three ways (closed form, automatic differentiation, central differences)
#   against tolerances derived from a rounding model;
# * to read a derivation critically: errata E1 (a factor 2) and E6 (a slip invisible at $k = 2$);
# * to write the training loop yourself: closed-form gradient, optimiser step, repeat.
#
# ## What you need
#
# * [Chapter 01](01_rendle_reformulation.ipynb): the FM $\hat y = w_0 + \sum_i w_ix_i + \sum_{i<j}\langle v_i, v_j\rangle x_ix_j$,
#   its worked example (three users, four movies), and Rendle's identity (1.3) after Rendle's paper [1],
#   $\sum_{i<j}\langle v_i,v_j\rangle x_ix_j = \frac12\sum_{f=1}^k\bigl[(\sum_i v_{if}x_i)^2 - \sum_i v_{if}^2x_i^2\bigr]$,
#   which gives Rendle's form (1.4) of $\hat y$; chapter 01's rounding model (1.6) is used again in section 5.
# * The chain rule, and the sigmoid $\sigma(t) = 1/(1 + e^{-t})$.
# * Other sources use other letters. The gradient note [3] writes $P\in\mathbb R^{k\times d}$ for
#   $V^\top$ (its $P_{ij}$ is our $v_{ji}$), $X$ for $x$, $d$ for $n$, $\phi$ for the pairwise
#   term and $Z_i$ for our $s_f$. SystemDS's FM layer [5] calls a batch $X$ of shape $(n, d)$: its
#   $n$ is our batch size $B$ and its $d$ our $n$.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import sympy as sp
import torch

import fmedu
from fmedu import cost, grad, symbolic, testing
from fmedu import train as training
from fmedu.exercises import EXERCISES, catch_table, every_check_catches, format_catch_table
from fmedu.figures import nb02
from fmedu.notebook import setup

setup()

# %% [markdown]
# ## 1. A worked example: Ann rates Alien
#
# In chapter 01's example, $x$ is one-hot: a 1 for Ann, a 1 for Alien, 0 elsewhere. Only one pair
# survives, $\hat y = w_0 + w_{\text{Ann}} + w_{\text{Alien}} + \langle v_{\text{Ann}}, v_{\text{Alien}}\rangle$, so by hand:
# $\partial\hat y/\partial w_0 = 1$; $\partial\hat y/\partial w_i = 1$ for Ann and Alien, 0 otherwise;
# $\partial\hat y/\partial v_{\text{Ann}} = v_{\text{Alien}}$ and $\partial\hat y/\partial v_{\text{Alien}} = v_{\text{Ann}}$ (the derivative of a dot
# product in one argument is the other argument); every other row of $V$ gets 0. torch's
# *automatic differentiation* (autograd: it records the operations of a computation and applies
# the chain rule to them backwards [7, 8]) agrees exactly:

# %%
toy = testing.toy_ratings_fm()
x = toy.x("Ann", "Alien")
params = [p.clone().requires_grad_(True) for p in (toy.w0, toy.w, toy.V)]
g_w0, g_w, g_V = torch.autograd.grad(fmedu.predict(x, *params), params)
expected_V = torch.zeros(7, 2, dtype=torch.float64)
expected_V[0], expected_V[3] = toy.V[3], toy.V[0]  # Ann's row gets v_Alien, Alien's row gets v_Ann
float(g_w0) == 1.0, torch.equal(g_w, x), torch.equal(g_V, expected_V)

# %% [markdown]
# A training step on this rating moves only Ann's and Alien's parameters: two rows of $V$ out of
# seven, or out of millions. The rest of the chapter finds the formula for any $x$ and its cost.
#
# ## 2. The gradient of $\hat y$, derived
#
# **Claim.** For any $x$, $\partial\hat y/\partial w_0 = 1$, $\partial\hat y/\partial w_i = x_i$, and
# $\partial\hat y/\partial v_{if} = x_i s_f - v_{if}x_i^2$ with $s_f = \sum_j v_{jf}x_j$.
#
# The biases are easy: $\hat y$ is $w_0$ plus $\sum_i w_ix_i$ plus terms without biases. For $v_{if}$,
# start from Rendle's form (1.4) of chapter 01, which names the sum inside the square $s_g$:
#
# $$\begin{aligned}
# \hat y &= w_0 + \sum_j w_jx_j + \frac12\sum_{g=1}^k\Bigl[s_g^2 - \sum_j v_{jg}^2x_j^2\Bigr],\quad s_g = \sum_j v_{jg}x_j &&\text{Rendle's form (1.4)}\\
# \frac{\partial\hat y}{\partial v_{if}} &= \frac12\Bigl[\frac{\partial}{\partial v_{if}}s_f^2 - \frac{\partial}{\partial v_{if}}\sum_j v_{jf}^2x_j^2\Bigr] &&\text{only factor } g = f \text{ contains } v_{if}\\
# &= \frac12\Bigl[2s_f\,\frac{\partial s_f}{\partial v_{if}} - 2v_{if}x_i^2\Bigr] &&\text{chain rule on } s_f^2;\ \text{only } j = i \text{ in the sum}\\
# &= x_i\,s_f - v_{if}\,x_i^2 &&\frac{\partial s_f}{\partial v_{if}} = x_i .
# \end{aligned}\tag{2.1}$$
#
# The third line is where care is needed: $s_f$ contains $v_{if}$ itself, so differentiating $s_f^2$
# gives $2s_f\,x_i$, not 0. The same result comes straight from the definition: $v_{if}$ appears in
# every pair $(i, j)$, $j \ne i$, as $v_{if}v_{jf}x_ix_j$, so
# $\partial\hat y/\partial v_{if} = x_i\sum_{j\ne i}v_{jf}x_j$, which is (2.1) after adding and
# subtracting the term $j = i$. Rendle states the same formula [1], and the libFM paper trains FMs
# with it by stochastic gradient descent [2].
#
# **Check 1: sympy, for symbolic $n$.** sympy differentiates factor $f$ of Rendle's form with
# indexed symbols $v_{jf}$, $x_j$ and a symbolic number of features $n$, and subtracts (2.1):

# %%
i, j, f, n = sp.symbols("i j f n", integer=True, positive=True)
xi, v = sp.IndexedBase("x"), sp.IndexedBase("v")
s_f = sp.Sum(v[j, f] * xi[j], (j, 1, n))
factor_f = sp.Rational(1, 2) * (s_f**2 - sp.Sum(v[j, f] ** 2 * xi[j] ** 2, (j, 1, n)))
difference = sp.simplify(sp.diff(factor_f, v[i, f]).doit() - (xi[i] * s_f - v[i, f] * xi[i] ** 2))
difference, difference.args[0] == (0, i <= n)

# %% [markdown]
# sympy answers with a case split: the difference is $0$ whenever $i \le n$, that is, for every
# feature (for an index beyond $n$, $v_{if}$ does not occur and the derivative is 0). The check
# from the definition, with every pair spelled out, at $n = 5$ features and $k = 3$ factors: all 15
# entries agree, and the derivatives in $w_0$ and $w$ are $1$ and $x$.

# %%
xs, Vs, y_def, derived, closed = symbolic.symbolic_gradient(5, 3)
ws = [sp.Symbol(f"w_{i + 1}", real=True) for i in range(5)]
(
    (derived - closed).applyfunc(sp.expand) == sp.zeros(5, 3),
    sp.diff(y_def, sp.Symbol("w_0", real=True)),
    [sp.diff(y_def, wi) for wi in ws] == list(xs),
)

# %% [markdown]
# On the worked example, (2.1) gives back the hand result: for Ann's row,
# $x_{\text{Ann}}s - v_{\text{Ann}}x_{\text{Ann}}^2 = (v_{\text{Ann}} + v_{\text{Alien}}) - v_{\text{Ann}} = v_{\text{Alien}}$. The package implements (2.1)
# (section 5 checks it numerically against autograd and finite differences, with $k \ge 3$):

# %%
torch.equal(fmedu.predict_grad(x, toy.w0, toy.w, toy.V)[2], expected_V)

# %% [markdown]
# > **Erratum E1: the gradient note's factor 2.** The gradient note (Andrew Bai, "FM O(dk) weight
# > gradient calculation", unpublished, 2022 [3]) ends with $\partial\phi/\partial P_{ij} = X_jZ_i - 2P_{ij}X_j^2$;
# > in our notation $\partial\hat y/\partial v_{if} = x_is_f - 2v_{if}x_i^2$. **Correct:** $x_is_f - v_{if}x_i^2$, (2.1), as
# > the SystemDS reference page [4] states. The note isolates the terms that contain $v_{if}$,
# > $\phi_{if} = v_{if}x_iZ - v_{if}^2x_i^2$ with $Z = s_f$ (right), then differentiates holding $Z$ fixed
# > (wrong: $Z$ contains $v_{if}$, and $\partial Z/\partial v_{if} = x_i$ is what the third line of (2.1) uses). The chain-rule
# > term it drops, $\frac{\partial\phi_{if}}{\partial Z}\,x_i = v_{if}x_i^2$, cancels half of $-2v_{if}x_i^2$.
# > **Evidence** below: sympy shows the difference is exactly $-v_{if}x_i^2$ in every entry, and that
# > "hold $Z$ fixed" reproduces the note while adding the chain-rule term gives (2.1). **Would an
# > ordinary test catch it? Yes:** the error $v_{if}x_i^2$ is of the same order as the gradient
# > itself wherever $x_i \ne 0$, so any numeric gradient test fails (second cell below).

# %%
note = symbolic.note_gradient(xs, Vs)
e1 = symbolic.e1_explanation(5, 3, 1, 2)
Z = sp.Symbol("Z", real=True)
z_fixed = e1["z_fixed"].subs(Z, e1["Z"])
(
    (note - derived).applyfunc(sp.expand) == sp.Matrix(5, 3, lambda i, f: -Vs[i, f] * xs[i] ** 2),
    sp.expand(z_fixed - note[1, 2]) == 0,
    sp.expand(z_fixed + e1["chain_term"] - derived[1, 2]) == 0,
)

# %% [markdown]
# In numbers, on a random batch with the note's own loss (logistic): the note's $V$-gradient misses
# autograd by more than a million times the rounding tolerance of section 5, ours stays below it.

# %%
gen = torch.Generator().manual_seed(7)
xb, yb, w0, w, V = testing.random_problem(7, 3, 6, "logistic", gen)
g_V_auto = grad.autograd_batch_grad(yb, w0, w, V, "logistic", x=xb)[3]
tol_V = grad.rounding_model_bounds(yb, w0, w, V, "logistic", x=xb)["autograd"][2]
note_ratio = float(((grad.note_batch_grad_V(xb, yb, w0, w, V) - g_V_auto).abs() / tol_V).max())
ours_ratio = float(((fmedu.batch_loss_grad(xb, yb, w0, w, V, "logistic")[3] - g_V_auto).abs() / tol_V).max())
note_ratio > 1e6, ours_ratio <= 1

# %% [markdown]
# ## 3. What the gradient costs, and which entries it touches
#
# (2.1) splits the work in two. First the $k$ sums $s_f = \sum_j v_{jf}x_j$, once per sample: $nk$
# multiply-adds, or $d\,k$ when only $d$ entries of $x$ are non-zero. Then each entry
# $x_is_f - v_{if}x_i^2$ costs a few operations, and is exactly 0 when $x_i = 0$. So the whole
# gradient costs $O(nk)$, and $O(d\,k)$ on sparse data, the same order as the prediction. Recomputing
# $s_f$ for each of the $n$ rows instead would cost $O(n^2k)$. The picture:

# %%
touched = nb02.touched_cells()
nb02.plot_touched_rows(touched)
plt.show()

# %% [markdown]
# (`figures/02_touched_rows.png`.) A sample with non-zeros at features 2, 5 and 7 of $n = 8$, $k = 3$:
# its gradient is non-zero only in those three rows of $V$ (orange), and every row reads the same
# three column sums $s_1, s_2, s_3$ (blue). The diagram's count, checked against (2.1) on a random
# $V$: the non-zero rows of the gradient are exactly the sample's non-zero features.

# %%
gen = torch.Generator().manual_seed(2)
x8 = torch.zeros(8, dtype=torch.float64)
x8[[1, 4, 6]] = torch.randn(3, dtype=torch.float64, generator=gen)  # features 2, 5, 7 (0-based 1, 4, 6)
g8 = fmedu.predict_grad(x8, *testing.random_fm(8, 3, gen))[2]
rows_hot = sorted({c["i"] for c in touched if c["panel"] == "dV" and c["touched"]})
[i + 1 for i in g8.abs().sum(1).nonzero().flatten().tolist()] == rows_hot == [2, 5, 7]

# %% [markdown]
# **Counted.** For a batch, section 4 below writes the $V$-gradient as three matrix products of
# $2Bnk$ floating-point operations (flops) each: $S = XV$ and $(X\odot X)(V\odot V)$ for $\hat y$, and
# $X^\top(d\odot S)$ for the gradient, $6Bnk$ in all. Autograd runs the two forward products and, for
# each, one backward product (the gradient with respect to $V$): $8Bnk$. torch's flop counter records matrix–matrix products only
# (the linear term's matrix–vector products, $4Bn$ flops, and the elementwise operations are left
# out); for those products the counts are exact at every $n$:


# %%
def gradient_flops(n, k=16, batch=64):
    x, y, w0, w, V = testing.random_problem(n, k, batch, "squared", torch.Generator().manual_seed(n))
    closed_form = cost.matmul_flops(fmedu.batch_loss_grad, x, y, w0, w, V, "squared")
    autograd = cost.matmul_flops(grad.autograd_batch_grad, y, w0, w, V, "squared", x=x)
    return closed_form, autograd


all(gradient_flops(n) == (6 * 64 * n * 16, 8 * 64 * n * 16) for n in (100, 200, 400, 800))

# %% [markdown]
# **Measured.** CPU seconds per sample, one thread, best of several rounds, committed with the course
# (`figures/02_gradient_cost.png` and its CSV; timings vary between machines). Left: against $n$ on
# log–log axes (a power law is a straight line there), the closed-form batch gradient and autograd
# (batches of 64) and the per-sample gradients of (2.1) (batches of 8), with a slope-1 reference.
# Right: the sparse per-sample gradient against the number of non-zeros at $n = 10^3$ and $10^6$.

# %%
dense_rows, sparse_rows = nb02.committed_cost()
nb02.plot_gradient_cost(dense_rows, sparse_rows)
plt.show()

# %% [markdown]
# The fitted log–log slopes of the three dense computations, and autograd's time divided by the
# closed form's at each $n$:

# %%
ratios = nb02.autograd_ratios(dense_rows)
{form: round(slope, 2) for form, slope in nb02.slopes(dense_rows).items()}, {n: round(r, 2) for n, r in ratios.items()}

# %% [markdown]
# All three dense computations grow about linearly in $n$: every fitted slope lies between 0.7 and
# 1.3. Autograd is slower at every $n$, but not by a constant factor: the ratio falls at every step
# from the smallest $n$ to the largest, as a fixed cost per call (recording and replaying the graph)
# would make it; we did not measure that cost separately. On sparse data (right panel), a thousand
# times more features costs at most ten times more time at every number of non-zeros:

# %%
ordered = [ratios[n] for n in sorted(ratios)]
sparse_seconds = {(r["n"], r["nnz"]): r["seconds"] for r in sparse_rows}
(
    all(0.7 <= slope <= 1.3 for slope in nb02.slopes(dense_rows).values()),
    min(ordered) > 1 and all(a > b for a, b in zip(ordered, ordered[1:])),
    all(sparse_seconds[10**6, m] <= 10 * sparse_seconds[10**3, m] for n, m in sparse_seconds),
)

# %% [markdown]
# ## 4. From $\hat y$ to a loss over a batch
#
# Training minimises a loss averaged over a batch of $B$ samples $x_b$ with targets $y_b$,
# $L(\theta) = \frac1B\sum_b\ell(\hat y_b, y_b)$, where $\theta$ is any one parameter. $\theta$ enters $\ell$ only
# through $\hat y_b$, so:
#
# $$\begin{aligned}
# \frac{\partial L}{\partial\theta} &= \frac1B\sum_{b=1}^B\frac{\partial}{\partial\theta}\,\ell(\hat y_b, y_b) &&\text{derivative of a sum}\\
# &= \frac1B\sum_b\ell'(\hat y_b, y_b)\,\frac{\partial\hat y_b}{\partial\theta} &&\text{chain rule through } \hat y_b\\
# &= \sum_b d_b\,\frac{\partial\hat y_b}{\partial\theta},\qquad d_b = \tfrac1B\,\ell'(\hat y_b, y_b) &&\text{name the weights}\\
# \frac{\partial L}{\partial v_{if}} &= \sum_b d_b\,\bigl(x_{bi}s_{bf} - v_{if}x_{bi}^2\bigr) = \bigl[X^\top(d\odot S)\bigr]_{if} - v_{if}\bigl[(X\odot X)^\top d\bigr]_i &&\text{insert (2.1); } S = XV
# \end{aligned}\tag{2.2}$$
#
# Here $X$ is the $B\times n$ matrix of the batch, $\ell'$ the derivative in the first argument,
# $\odot$ the entrywise product ($d\odot S$ multiplies row $b$ of $S$ by $d_b$). Likewise
# $\partial L/\partial w_0 = \sum_b d_b$ and $\partial L/\partial w = X^\top d$. The per-sample gradients are never formed:
# the $V$-gradient needs the $S$ already computed for $\hat y$ and two more products.
#
# **The losses.** Squared loss for regression, logistic and hinge for labels $y = \pm1$:
#
# $$\begin{aligned}
# \ell_{\text{sq}} &= (\hat y - y)^2, & \ell'_{\text{sq}} &= 2(\hat y - y)\\
# \ell_{\text{log}} &= \log\bigl(1 + e^{-y\hat y}\bigr), & \ell'_{\text{log}} &= \frac{-y\,e^{-y\hat y}}{1 + e^{-y\hat y}} = \frac{-y}{e^{y\hat y} + 1} = -y\,\sigma(-y\hat y)\\
# \ell_{\text{hinge}} &= \max(0,\ 1 - y\hat y), & \ell'_{\text{hinge}} &= \begin{cases}-y & y\hat y < 1\\ 0 & y\hat y > 1\\ -y\ \text{(our choice)} & y\hat y = 1\end{cases}
# \end{aligned}\tag{2.3}$$
#
# (logistic: chain rule, then multiply numerator and denominator by $e^{y\hat y}$.) The hinge has a
# kink at margin $y\hat y = 1$: no derivative there, but a *subgradient*, any slope between the
# one-sided derivatives on its two sides ($-y$ and $0$); we take $-y$, as torch's autograd does for
# this loss. The three-way check of section 5 avoids the kink: it redraws any batch whose margins
# lie within reach of its finite-difference step. sympy confirms the smooth derivatives, for
# both labels, and the two one-sided slopes at the kink:

# %%
t, y_s, hh = sp.Symbol("yhat", real=True), sp.Symbol("y", real=True), sp.Symbol("h", positive=True)
logistic = sp.log(1 + sp.exp(-y_s * t))
hinge_pos = sp.Max(0, 1 - t)  # y = +1, kink at yhat = 1
(
    sp.simplify(sp.diff((t - y_s) ** 2, t) - 2 * (t - y_s)),
    [sp.simplify((sp.diff(logistic, t) + y_s / (1 + sp.exp(y_s * t))).subs(y_s, yv)) for yv in (1, -1)],
    [sp.limit((hinge_pos.subs(t, 1 + side * hh) - 0) / (side * hh), hh, 0) for side in (-1, 1)],
)

# %% [markdown]
# For $y = +1$ the slope left of the kink is $-1 = -y$ and right of it $0$, so the subgradients at
# the kink are the interval $[-1, 0]$ and our choice is its end $-y$. In the package, at the kink,
# for both labels, the derivative and autograd both give $-y$:

# %%
y_kink = torch.tensor([1.0, -1.0], dtype=torch.float64)
y_hat_kink = (y_kink * 1.0).requires_grad_(True)  # y * yhat = 1 for both labels
(auto_kink,) = torch.autograd.grad(fmedu.hinge_loss(y_hat_kink, y_kink).sum(), y_hat_kink)
torch.equal(fmedu.hinge_loss_derivative(y_hat_kink.detach(), y_kink), -y_kink), torch.equal(auto_kink, -y_kink)

# %% [markdown]
# **Check of (2.2) with sympy**, with $\ell$ an unknown function (so the check holds for every loss),
# $B = 2$ samples, $n = 4$, $k = 3$: sympy differentiates $L$ itself and compares with the last line of
# (2.2) and with $\sum_b d_b$ and $X^\top d$.

# %%
_, w0_s, w_s, V_s = symbolic.fm_symbols(4, 3)
X_s = sp.Matrix(2, 4, lambda b, i: sp.Symbol(f"x_{b + 1}{i + 1}", real=True))
ell, u = sp.Function("ell"), sp.Symbol("u")
y_hats = [symbolic.fm_prediction(X_s[b, :].T, w0_s, w_s, V_s) for b in range(2)]
L_s = sum(ell(yh) for yh in y_hats) / 2
d_s = sp.Matrix([sp.diff(ell(u), u).subs(u, yh) / 2 for yh in y_hats])  # d_b = ell'(yhat_b) / B
S_s = X_s * V_s
XX = X_s.applyfunc(lambda e: e**2)
formula_V = X_s.T * sp.diag(*d_s) * S_s - sp.diag(*(XX.T * d_s)) * V_s
(
    (sp.Matrix(4, 3, lambda i, f: sp.diff(L_s, V_s[i, f])) - formula_V).applyfunc(sp.expand) == sp.zeros(4, 3),
    sp.simplify(sp.diff(L_s, w0_s) - sum(d_s)),
    sp.Matrix([sp.diff(L_s, wi) for wi in w_s]) - X_s.T * d_s == sp.zeros(4, 1),
)

# %% [markdown]
# ## 5. Three ways to compute one gradient
#
# A closed form is only as trustworthy as its check. Three independent computations of the gradient
# of the mean batch loss:
#
# 1. **closed form**: (2.2) with (2.1) and (2.3);
# 2. **autograd**: torch differentiates the prediction and the loss in float64 [8];
# 3. **central differences**: $\bigl(L(\theta + h) - L(\theta - h)\bigr)/2h$, one parameter at a time, $h = 10^{-5}$,
#    from loss *values* only, so independent of any derivative formula.
#
# **How close must they be?** A derived tolerance, not a guess. In the standard model of
# floating-point arithmetic [9, §2.2], the one behind chapter 01's bound (1.6), each operation returns the exact result times $(1 + \delta)$
# with $|\delta| \le u = 2^{-53}$, half the machine epsilon $\varepsilon$ of float64. From it, a sum of
# $m + 1$ terms, added in any order, is exact up to $\gamma_m = mu/(1 - mu)$ times the sum of the
# terms' absolute values [9, Lemma 3.1 and §4.2]. Follow one entry of (2.2) through the computation:
# $s_{bf}$ sums $n$ products; $\hat y_b$ sums $n$ linear terms and $k$ factors; $\ell'$ turns an error
# $\delta$ in $\hat y_b$ into at most $\sup|\ell''|\,\delta$; the batch sum adds $B$ terms; and at most 8 more
# roundings happen outside these sums (products, the subtraction in (2.1), the square, $\exp$ and
# $\log$). So each of the two computations is within $\gamma_mG$ of the exact entry, and they differ by
# at most
#
# $$|g_{\text{closed}} - g_{\text{autograd}}| \le 2\gamma_m\,G,\qquad m = n + k + B + 8,\qquad
# G = \frac1B\sum_b\bigl(|\ell'_b| + 2\sup|\ell''|\,\tilde y_b\bigr)\,\Bigl|\frac{\partial\hat y_b}{\partial\theta}\Bigr|_{\text{abs}}, \tag{2.4}$$
#
# where $|\cdot|_{\text{abs}}$ is (2.1) with every $x$ and $v$ replaced by its absolute value and both signs $+$, and
# $\tilde y_b = |w_0| + \sum_i|w_ix_{bi}| + \frac12\sum_f(\sum_i|v_{if}x_{bi}|)^2$ is the prediction with absolute values
# ($\sup|\ell''|$ is 2, $\tfrac14$ and 0 for the three losses; the factor 2 covers the squares of Rendle's
# form). For central differences the tolerance adds three terms to $\gamma_mG$: the truncation error of
# Taylor's theorem, $\frac{h^2}{6}\sup|\ell'''|\,|\partial\hat y/\partial\theta|^3$ (exact because $\hat y$ is *affine* in each
# single parameter: no $v_{if}$ multiplies itself); the rounding of the two loss values, divided by
# $2h$; and the rounding of $\theta \pm h$. The tolerances carry **no safety factor**: (2.4) is a worst
# case. If the printed ratio observed/tolerance stays below 1, the check passes.
#
# **One case, side by side**: $n = 5$, $k = 3$, a batch of $B = 4$, logistic loss. The first six
# entries of $\partial L/\partial V$ by the three methods, their differences, and the tolerances:

# %% tags=["nbval-ignore-output"]
gen = torch.Generator().manual_seed(4)
x4, y4, w0_4, w_4, V_4 = testing.random_problem(5, 3, 4, "logistic", gen)
case = grad.three_way(y4, w0_4, w_4, V_4, "logistic", x=x4)
entries = [(i, f) for i in range(2) for f in range(3)]
pd.DataFrame(
    {
        "(i, f)": [f"({i + 1}, {f + 1})" for i, f in entries],
        "closed form": [f"{case['closed'][2][e]:.15f}" for e in entries],
        "autograd": [f"{case['autograd'][2][e]:.15f}" for e in entries],
        "central diff.": [f"{case['fd'][2][e]:.15f}" for e in entries],
        "|closed − autograd|": [f"{abs(case['closed'][2][e] - case['autograd'][2][e]):.1e}" for e in entries],
        "tolerance (2.4)": [f"{case['bounds']['autograd'][2][e]:.1e}" for e in entries],
        "|closed − diff.|": [f"{abs(case['closed'][2][e] - case['fd'][2][e]):.1e}" for e in entries],
        "tolerance": [f"{case['bounds']['fd'][2][e]:.1e}" for e in entries],
    }
)

# %% [markdown]
# Closed form and autograd agree in every digit shown (in this case they are identical); the
# central differences differ from them around the tenth decimal, inside their tolerance. Over every
# entry of $w_0$, $w$ and $V$, the largest ratio observed/tolerance (below 1: the check passes):

# %%
case["ratio_autograd"] <= 1, case["ratio_fd"] <= 1

# %% tags=["nbval-ignore-output"]
round(case["ratio_autograd"], 4), round(case["ratio_fd"], 4)

# %% [markdown]
# **The sweep.** The same three-way check on 36 random cases: each loss, with dense, sparse
# real-valued and one-hot batches, $k$ from 3 to 6 and $n \ne k$ (section 6 says why), batches of
# 1 to 8. The cell prints the number of cases, whether all of them have $k \ge 3$ and $n \ne k$,
# whether every ratio is at most 1, and whether every ratio is at most 0.1; then the largest ratios
# per loss (closed form vs autograd, closed form vs differences; their last digits vary between
# machines):

# %%
sweep = nb02.three_way_sweep(trials=36, seed=0)
(
    len(sweep),
    all(r["k"] >= 3 and r["n"] != r["k"] for r in sweep),
    all(r["ratio_autograd"] <= 1 and r["ratio_fd"] <= 1 for r in sweep),
    max(max(r["ratio_autograd"], r["ratio_fd"]) for r in sweep) <= 0.1,
)

# %% tags=["nbval-ignore-output"]
{
    loss: (
        max(r["ratio_autograd"] for r in sweep if r["loss"] == loss),
        max(r["ratio_fd"] for r in sweep if r["loss"] == loss),
    )
    for loss in ("squared", "logistic", "hinge")
}

# %% [markdown]
# The observed errors use at most a tenth of the worst case: rounding errors of opposite signs
# cancel, which (2.4) does not assume. The tolerance is still tight enough for what it has to
# catch: the note's error of section 2 exceeded it more than a million times.
#
# ## 6. A slip that $k = 2$ cannot see
#
# > **Erratum E6: SystemDS's factor index.** Apache SystemDS's FM layer (`scripts/nn/layers/fm.dml`,
# > function `backward` [5]) computes the shared sums as a matrix $XV$, whose column $f$ holds $s_f$
# > for every sample, and builds the $V$-gradient factor by factor. Factor 1 reads column 1; the loop
# > over factors $2, \dots, k$ reads column $k$ where column $f$ was meant, so **every factor $f \ge 2$
# > uses $s_k$ instead of its own $s_f$** in (2.1). **Correct:** factor $f$ uses $s_f$. At $k = 2$ the
# > slipped map of columns $(1, k) = (1, 2)$ *is* the correct one, so every gradient test at $k = 2$
# > passes; from $k = 3$ the middle factors are wrong. **Evidence** below: the column each factor
# > reads, an exact sympy comparison, and an ordinary numeric gradient test. **Would an ordinary test
# > catch it?** Only one with $k \ge 3$: the sweep above uses $k \ge 3$ for that reason, and $n \ne k$
# > so that a mix-up of the feature and factor axes fails on shapes instead of passing silently.
#
# The column each factor reads (0-based), for $k = 2, 3, 4$:

# %%
{k: symbolic.slipped_columns(k, "first-own-rest-last") for k in (2, 3, 4)}

# %% [markdown]
# Exactly, with sympy ($n = k + 3$): is the slipped gradient $x_is_{c(f)} - v_{if}x_i^2$ identical to (2.1)?
# And as an ordinary numeric test sees it: the slipped gradient against autograd within the
# tolerance (2.4), on random data (three seeds, squared and logistic loss):


# %%
def slip_is_exact(k):
    """Does the slipped V-gradient equal (2.1) for every input? (n = k + 3 features)"""
    slipped = symbolic.slipped_symbolic_gradient(k + 3, k, "first-own-rest-last")
    return (slipped - symbolic.symbolic_gradient(k + 3, k)[3]).applyfunc(sp.expand) == sp.zeros(k + 3, k)


def slip_passes_numeric_test(k):
    return all(
        grad.e6_gradient_test(k + 3, k, "first-own-rest-last", loss=loss, seed=seed)
        for loss in ("squared", "logistic")
        for seed in range(3)
    )


{k: (slip_is_exact(k), slip_passes_numeric_test(k)) for k in (1, 2, 3, 4, 5)}

# %% [markdown]
# Both columns agree: the slip is exact for $k \le 2$ ($k = 1$ has no second factor; we model the
# loop as empty), so the numeric test passes there, and both fail at every $k \ge 3$.
#
# ## 7. Training, written out
#
# With (2.2) in hand, training is a short loop: shuffle, cut into batches, compute the gradient,
# step. The step is **Adam** [6], the optimiser the SystemDS reference page [4] uses: it keeps running
# averages of the gradient and of its square and moves each parameter by the first divided by the
# square root of the second (the package writes it out in a dozen lines). The data come from a
# *planted* FM ($n = 20$, $k = 3$, known $w_0, w, V$): $x \sim \mathcal N(0, I)$ and $y = \hat y(x)$ plus
# Gaussian noise. The planted model is then the truth, and its loss is the floor a fit can reach.
# The cell prints the sizes of the training and validation sets, the number of recorded losses
# (before training and after each epoch), and whether they equal the committed run:

# %%
(w0_true, w_true, V_true), X, y, X_val, y_val = nb02.planted_dataset("regression")
cfg = nb02.TRAINING["regression"]
gen = torch.Generator().manual_seed(1)
w0 = torch.zeros((), dtype=torch.float64)  # start: w0 = 0, small random w and V
w = 0.1 * torch.randn(20, dtype=torch.float64, generator=gen)
V = 0.1 * torch.randn(20, 3, dtype=torch.float64, generator=gen)
adam = training.Adam([w0, w, V], lr=cfg["lr"])
history = [(training.evaluate(X, y, w0, w, V, "squared"), training.evaluate(X_val, y_val, w0, w, V, "squared"))]
for _epoch in range(cfg["epochs"]):
    order = torch.randperm(len(X), generator=gen)  # a fresh shuffle each epoch
    for start in range(0, len(X), cfg["batch_size"]):
        rows = order[start : start + cfg["batch_size"]]
        _, *gradients = fmedu.batch_loss_grad(X[rows], y[rows], w0, w, V, "squared")  # (2.2)
        adam.step(gradients)  # updates w0, w, V in place
    history.append((training.evaluate(X, y, w0, w, V, "squared"), training.evaluate(X_val, y_val, w0, w, V, "squared")))
len(X), len(X_val), len(history), nb02.history_matches_committed("regression", history)

# %% [markdown]
# The loop reproduces, to rounding, the committed run that the figure below draws (left panel); the
# right panel is the same loop with the logistic loss, on labels drawn as $y = +1$ with probability
# $\sigma(\hat y(x))$ and $-1$ otherwise. Each loss is drawn beside the planted model's loss on the **same**
# set: training with training, validation with validation.

# %%
committed = nb02.committed_training()
nb02.plot_training_curves(committed)
plt.show()

# %% [markdown]
# (`figures/02_training_curves.png`.) Both fits descend to the planted model's level. On the training
# set they end slightly *below* the planted model (they have fitted some of the noise), on the
# validation set slightly above it. The relative gaps at the last epoch, and whether each lies
# within 3 % with those signs:

# %%
gaps = {}
for task in ("regression", "classification"):
    last = [r for r in committed if r["task"] == task][-1]
    gaps[task] = {
        "training": round(last["train_loss"] / last["planted_train_loss"] - 1, 4),
        "validation": round(last["val_loss"] / last["planted_val_loss"] - 1, 4),
    }
gaps, all(-0.03 <= g["training"] < 0 < g["validation"] <= 0.03 for g in gaps.values())

# %% [markdown]
# So the fits overfit a little, by at most 3 % of the loss in either direction, and generalise to
# within 3 % of the truth. What did the regression fit learn? Only the off-diagonal of $VV^\top$
# enters $\hat y$, and $V$ is determined only up to a rotation (chapter 04), so we compare interactions:
# the relative error $\|\mathrm{offdiag}(VV^\top - V_*V_*^\top)\|_F / \|\mathrm{offdiag}(V_*V_*^\top)\|_F$ against the
# planted $V_*$, and whether it is within 10 %:

# %%
offdiag_error = training.offdiagonal_relative_error(V, V_true)
round(offdiag_error, 4), offdiag_error <= 0.10

# %% [markdown]
# ## Key takeaways
#
# * $\partial\hat y/\partial v_{if} = x_is_f - v_{if}x_i^2$ (2.1): four lines from Rendle's form (1.4), where $s_f$ itself depends
#   on $v_{if}$. With $s_f$ computed once per sample, the gradient costs $O(nk)$, $O(d\,k)$ on sparse
#   data, and touches only the rows of the non-zero features.
# * A batch loss adds one chain rule: $\partial L/\partial\theta = \sum_b d_b\,\partial\hat y_b/\partial\theta$ with $d_b = \ell'(\hat y_b, y_b)/B$
#   (2.2); for the hinge, choose a subgradient at the kink and say which.
# * Check a gradient three ways against a tolerance you can derive: a rounding model gives
#   $2\gamma_mG$ (2.4); print the ratio observed/tolerance.
# * Erratum E1 (a dropped chain-rule term) fails any numeric test; erratum E6 (a factor-index slip)
#   passes every test at $k = 2$: gradient tests need $k \ge 3$ and $n \ne k$.
# * Training is a dozen lines around (2.2): shuffle, batch, gradient, optimiser step.
#
# ## Exercises
#
# ### Exercise 2.1 (easy)
#
# In the worked example, Cat rates Brazil. **Before running anything**, write down
# $\partial\hat y/\partial v_{\text{Cat}}$ and $\partial\hat y/\partial v_{\text{Brazil}}$. Then check them with (2.1) in code.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# One-hot pair: yhat = w0 + w_Cat + w_Brazil + <v_Cat, v_Brazil>, so the gradient in v_Cat is v_Brazil
# and in v_Brazil is v_Cat; both are (0.5, 0.5) here, because the two latent vectors are equal.
cat, brazil = toy.features.index("Cat"), toy.features.index("Brazil")
g = fmedu.predict_grad(toy.x("Cat", "Brazil"), toy.w0, toy.w, toy.V)[2]
torch.equal(g[cat], toy.V[brazil]), torch.equal(g[brazil], toy.V[cat]), int((g != 0).any(dim=1).sum())

# %% [markdown]
# ### Exercise 2.2 (easy)
#
# **Predict before you run.** Double the input, $x \to 2x$. By what factor does each of
# $\partial\hat y/\partial w_0$, $\partial\hat y/\partial w_i$ and $\partial\hat y/\partial v_{if}$ change? Check on a random dense
# batch; the check can be exact, because multiplying by 2 never rounds in float64.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The gradient in w0 is 1 whatever x is; the gradient in w_i is x_i, so it doubles; in (2.1) both
# terms of the gradient in v_if carry two factors of x (s_f is linear in x), so it is multiplied by 4.
gen = torch.Generator().manual_seed(11)
xd = testing.random_x(9, 5, "dense", gen)
w0d, wd, Vd = testing.random_fm(9, 4, gen)
one, two = fmedu.predict_grad(xd, w0d, wd, Vd), fmedu.predict_grad(2 * xd, w0d, wd, Vd)
torch.equal(two[0], one[0]), torch.equal(two[1], 2 * one[1]), torch.equal(two[2], 4 * one[2])

# %% [markdown]
# ### Exercise 2.3 (medium, write code)
#
# Write `my_grad_V(x, V)`: the $n\times k$ matrix $\partial\hat y/\partial V$ of one sample $x$ by (2.1), in
# $O(nk)$ (compute the $k$ sums $s_f$ once; no loop over $i$). Check it against autograd on a
# random sample with $n = 7$, $k = 4$, within the tolerance $2\gamma_mG$ of (2.4) with $B = 1$ and
# $\ell'= 1$, $\ell'' = 0$ (the gradient of $\hat y$ itself).


# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
def my_grad_V(x, V):
    s = x @ V  # the k sums s_f, O(nk)
    return x[:, None] * s[None, :] - V * (x * x)[:, None]  # x_i s_f - v_if x_i^2, O(nk)


gen = torch.Generator().manual_seed(5)
w0e, we, Ve = testing.random_fm(7, 4, gen)
xe = torch.randn(7, dtype=torch.float64, generator=gen)
Vg = Ve.clone().requires_grad_(True)
(auto_e,) = torch.autograd.grad(fmedu.predict(xe, w0e, we, Vg), Vg)
abs_grad = xe.abs()[:, None] * (xe.abs() @ Ve.abs())[None, :] + Ve.abs() * (xe * xe)[:, None]
tolerance = 2 * grad.gamma(7 + 4 + 1 + grad.EXTRA_ROUNDINGS) * abs_grad
bool(((my_grad_V(xe, Ve) - auto_e).abs() <= tolerance).all())

# %% [markdown]
# ### Exercise 2.4 (medium)
#
# **Predict before you run.** A different slip: a backward pass that reads the *last* column of
# $XV$ for every factor, including the first. For which $k$ from 1 to 5 does a numeric gradient test
# pass? Write your prediction as a dictionary, then check it with the same numeric test as in
# section 6 (column map `"all-last"`).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The map (k-1, ..., k-1) equals the correct map (0, ..., k-1) only when k = 1: already at k = 2
# factor 1 reads column 2. So a test at k = 2 catches this slip, unlike SystemDS's.
prediction = {k: k == 1 for k in (1, 2, 3, 4, 5)}
observed = {k: grad.e6_gradient_test(k + 3, k, "all-last", loss="logistic") for k in (1, 2, 3, 4, 5)}
observed == prediction

# %% [markdown]
# ### Exercise 2.5 (hard)
#
# **Predict before you run.** Central differences with a much larger step, $h = 10^{-2}$ instead of
# $10^{-5}$. For the squared loss and for the logistic loss, does the largest difference from the
# closed form grow or shrink? Use the fact that $\hat y$ is affine in each single parameter, and the
# terms of the central-difference tolerance in section 5. Check on one random batch each
# ($n = 6$, $k = 3$).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# yhat is affine in each single parameter, so the squared loss is a quadratic in it and its third
# derivative is 0: the truncation term of the central-difference tolerance vanishes for every h, and
# only rounding remains, divided by 2h. A larger h makes the squared loss's error shrink. The logistic
# loss has a non-zero third derivative: its truncation term grows like h squared (about a million
# times from h = 1e-5 to 1e-2) and outweighs the rounding, so its error grows.
gen = torch.Generator().manual_seed(3)
errors = {}
for loss in ("squared", "logistic"):
    xh, yh, w0h, wh, Vh = testing.random_problem(6, 3, 4, loss, gen)
    exact = fmedu.batch_loss_grad(xh, yh, w0h, wh, Vh, loss)[1:]
    errors[loss] = {
        h: grad.max_abs_error(exact, grad.finite_difference_batch_grad(yh, w0h, wh, Vh, loss, x=xh, h=h))
        for h in (1e-5, 1e-2)
    }
errors["squared"][1e-2] < errors["squared"][1e-5], errors["logistic"][1e-2] > errors["logistic"][1e-5]

# %% [markdown]
# ### Exercise 2.6 (medium, your turn)
#
# Write the gradient of the pairwise term with respect to $V$ at one sample `x` of shape (n,): an (n, k) tensor with entries $\partial/\partial v_{if}$. **Predict first:** which rows of your gradient are zero for a one-hot `x`?
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["grad_v"].hint()` gives a hint.


# %% fmedu={"stub": "def my_grad_v(x, V):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_grad_v(x, V):
    s = x @ V  # (k,)
    return x[:, None] * s[None, :] - V * (x * x)[:, None]


# %%
EXERCISES["grad_v"].check(my_grad_v).correct

# %% [markdown]
# ### Exercise 2.7 (easy, your turn)
#
# Write $\frac{d}{d\hat y}\log(1 + e^{-y\hat y})$ entrywise for tensors `y_hat` and `y` (labels $\pm1$).
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["logistic_dloss"].hint()` gives a hint.


# %% fmedu={"stub": "def my_logistic_dloss(y_hat, y):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_logistic_dloss(y_hat, y):
    return -y * torch.sigmoid(-y * y_hat)


# %%
EXERCISES["logistic_dloss"].check(my_logistic_dloss).correct

# %% [markdown]
# ### Every check of this chapter, caught
#
# A check that no wrong function can fail proves nothing. The table runs every check of this chapter
# that takes a function of yours (each exercise's check, and the chapter's other checks of the same
# function: central differences, the third way of section 5) on every wrong variant in the course's catalogue (the slips named above, and the errata
# that are code) and on the reference solution; "caught" means the check said wrong. The last line is
# True when every check catches at least one variant, every variant is caught by at least one check,
# and no check rejects a reference solution.

# %%
catch_rows = catch_table("02")
print(format_catch_table(catch_rows))
every_check_catches(catch_rows)

# %% [markdown]
# ## References
#
# 1. Steffen Rendle. "Factorization Machines." *Proceedings of the 10th IEEE International
#    Conference on Data Mining (ICDM)*, pp. 995–1000, 2010. doi:10.1109/ICDM.2010.127
# 2. Steffen Rendle. "Factorization Machines with libFM." *ACM Transactions on Intelligent
#    Systems and Technology* 3(3), article 57, 2012. doi:10.1145/2168752.2168771 (the gradient
#    and stochastic gradient descent for FMs).
# 3. Andrew Bai. "FM O(dk) weight gradient calculation." Unpublished note, July 2022.
#    Corrected here: erratum E1.
# 4. Apache SystemDS. "Algorithms Reference: Factorization Machines." Project documentation,
#    https://apache.github.io/systemds/site/algorithms-factorization-machines
# 5. Apache SystemDS. `scripts/nn/layers/fm.dml` (the FM layer: `forward`, `backward`,
#    `init`), https://github.com/apache/systemds/blob/main/scripts/nn/layers/fm.dml.
#    Corrected here: erratum E6.
# 6. Diederik P. Kingma and Jimmy Ba. "Adam: A Method for Stochastic Optimization." *3rd
#    International Conference on Learning Representations (ICLR)*, 2015. arXiv:1412.6980
# 7. Atılım Güneş Baydin, Barak A. Pearlmutter, Alexey Andreyevich Radul and Jeffrey Mark
#    Siskind. "Automatic Differentiation in Machine Learning: a Survey." *Journal of Machine
#    Learning Research* 18(153):1–43, 2018.
# 8. Adam Paszke et al. "PyTorch: An Imperative Style, High-Performance Deep Learning Library."
#    *Advances in Neural Information Processing Systems 32 (NeurIPS)*, 2019.
# 9. Nicholas J. Higham. *Accuracy and Stability of Numerical Algorithms*, 2nd ed. SIAM,
#    Philadelphia, 2002.
#
# [← Previous: 01 · Rendle's reformulation: an FM in O(nk)](01_rendle_reformulation.ipynb) · [Course index](00_index.ipynb) · [Next: 03 · What an FM can express →](03_expressiveness.ipynb)
