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
# # 01 · Rendle's reformulation: an FM in O(nk)
#
# Recommenders, click prediction and most problems built from categorical data have millions of
# one-hot features: every user, every item, every advertiser is a feature of its own. The signal
# sits in *pairs* ("this user likes this kind of movie"), but a model with one weight per pair
# would need $n^2/2$ weights, trillions of them, and would see almost none of the pairs in
# training. A factorization machine (FM) gives every feature a short vector of $k$ numbers and
# scores a pair by the inner product of its two vectors. **Why can such a model be evaluated on
# millions of features at all?** This chapter answers the half of the question that is
# arithmetic: an identity due to Rendle [1] turns the sum over all $n(n-1)/2$ pairs into $k$
# sums over the features, so one prediction costs $O(nk)$ instead of $O(n^2k)$, and
# $O(\operatorname{nnz}\cdot k)$ when only nnz of the $n$ features are non-zero.
#
# Symbols follow the course's [notation](00_index.ipynb#notation) table.
#
# ## What you will learn
#
# * what an FM computes, on a worked example with three users and four movies;
# * Rendle's identity, derived as a chain of five moves ("full square minus diagonal, halved"),
#   and proven for every $n$ by induction;
# * how to compare two floating-point computations honestly, with a bound derived from a model
#   of rounding instead of "close enough";
# * what the two forms cost: exact operation counts first (and what the counter leaves out),
#   then measured time.
#
# ## What you need
#
# * Sums, inner products, $(a+b)^2 = a^2 + 2ab + b^2$, and proof by induction; Python with a
#   little torch (tensors, `@` for matrix products).
# * The FM formula (0.1) and the one-hot design matrix of [chapter 00](00_index.ipynb).
# * Other sources use other letters. The SystemDS reference page [3] uses ours ($W$ for $w$).
#   The proximal-point blog post [4] writes $\sigma$ for $\hat y$, $w$ for the input $x$, $x$ for
#   all parameters together, $b_0, b_i$ for $w_0, w_i$ and $m$ for $n$.

# %%
import matplotlib.pyplot as plt
import sympy as sp
import torch

import fmedu
from fmedu import cost, symbolic, testing
from fmedu.exercises import EXERCISES, catch_table, every_check_catches, format_catch_table
from fmedu.figures import nb01
from fmedu.notebook import setup

setup()

# %% [markdown]
# ## A worked example: three users, four movies
#
# Three users (Ann, Bob, Cat) rate four movies (Alien, Brazil, Casablanca, Dune). An FM sees a
# rating as a feature vector $x$ with one entry per user and one per movie, $n = 7$ in all,
# and sets the entries of the rating's user and movie to 1 (**one-hot** encoding, the rows of
# the design matrix pictured in chapter 00). Ann rating Alien:

# %%
toy = testing.toy_ratings_fm()
toy.features, toy.x("Ann", "Alien")

# %% [markdown]
# The model has a global bias $w_0$, a weight $w_i$ per feature and a **latent vector**
# $v_i \in \mathbb R^k$ per feature, here with $k = 2$. Read the first factor as "likes science
# fiction" and the second as "likes classics": Ann is all science fiction, Bob all classics, Cat
# a bit of both.

# %%
print(f"w0 = {float(toy.w0)}")
for name, w_i, v_i in zip(toy.features, toy.w.tolist(), toy.V.tolist()):
    print(f"{name:<11} w = {w_i:+.2f}   v = {v_i}")

# %% [markdown]
# The FM predicts
#
# $$\hat y(x) = w_0 + \sum_{i=1}^n w_i x_i + \sum_{i=1}^{n}\sum_{j=i+1}^{n} \langle v_i, v_j\rangle\, x_i x_j .
# \tag{1.1}$$
#
# Here it is in plain torch, written exactly as the formula reads: a loop over all pairs
# $i < j$.


# %%
def fm_by_definition(x, w0, w, V):
    """ŷ(x) of (1.1): the linear part, then one pair (i, j) with i < j at a time."""
    n = x.shape[0]
    linear = sum(w[i] * x[i] for i in range(n))
    pairs = sum((V[i] @ V[j]) * x[i] * x[j] for i in range(n) for j in range(i + 1, n))
    return w0 + linear + pairs


# %% [markdown]
# **By hand.** For Ann and Alien only $x_{\text{Ann}}$ and $x_{\text{Alien}}$ are 1, so only
# one of the 21 pairs survives:
# $\hat y = w_0 + w_{\text{Ann}} + w_{\text{Alien}} + \langle v_{\text{Ann}}, v_{\text{Alien}}\rangle
# = 3 + 0.5 + 0.25 + (1\cdot 1 + 0\cdot(-0.5)) = 4.75.$ The code agrees exactly (all the
# numbers are multiples of 1/4, so float64 makes no rounding error):

# %%
float(fm_by_definition(toy.x("Ann", "Alien"), toy.w0, toy.w, toy.V)) == 4.75

# %% [markdown]
# All twelve predictions, users down and movies across:

# %%
table = torch.stack(
    [torch.stack([fm_by_definition(toy.x(u, m), toy.w0, toy.w, toy.V) for m in toy.movies]) for u in toy.users]
)
table

# %% [markdown]
# Each prediction is a bias part ($w_0 + w_u + w_m$) plus an interaction $\langle v_u, v_m\rangle$.
# So the whole table is the bias part plus $V_{\text{users}} V_{\text{movies}}^\top$, a matrix of
# rank at most $k = 2$: an FM on user and movie one-hots is matrix factorisation, written as a
# regression on features.

# %%
users, movies = slice(0, 3), slice(3, 7)
bias_part = toy.w0 + toy.w[users].unsqueeze(1) + toy.w[movies].unsqueeze(0)
interactions = toy.V[users] @ toy.V[movies].T
torch.equal(table, bias_part + interactions), int(torch.linalg.matrix_rank(interactions))

# %% [markdown]
# **Why vectors instead of one weight per pair?** The FM learns $v_{\text{Ann}}$ from all of
# Ann's ratings, so it can score Ann with a movie she has never rated; a free pair weight
# $w_{\text{Ann},\text{Dune}}$ would have no data at all. And the counts: with $n$ features,
# pair weights number $n(n-1)/2$, latent vectors $nk$. For the MovieLens data of chapter 07
# ($n = 2{,}728$, $k = 20$) and for a million features:

# %%
{n: {"pair weights": n * (n - 1) // 2, "FM latent numbers (k = 20)": n * 20} for n in (7, 2_728, 1_000_000)}

# %% [markdown]
# Storing $nk$ numbers is easy. But the loop above still *visits* all $n(n-1)/2$ pairs for
# every prediction, 21 here and half a trillion at a million features, even though on one-hot
# data all but one of them are zero. The rest of the chapter removes that cost.
#
# ## Rendle's identity: full square minus diagonal, halved
#
# **Claim** (Rendle [1], Lemma 3.1; restated for his libFM software in [2]). For every $x \in \mathbb R^n$ and $V \in \mathbb R^{n\times k}$,
# the pairwise part of (1.1) equals
# $\tfrac12\sum_{f=1}^{k}\big[(\sum_{i} v_{if} x_i)^2 - \sum_{i} v_{if}^2 x_i^2\big]$. The left
# side has $n(n-1)/2$ terms of $k$ products each; the right side needs, for each of the $k$
# factors, two sums over the $n$ features.
#
# **The idea in a picture.** Write $a_{ij} = \langle v_i, v_j\rangle x_i x_j$ for the term of
# the pair $(i, j)$ and lay the terms out as an $n\times n$ grid. The pairs $i<j$ are the
# upper triangle. The whole square is easy to sum (it factorises, as we will see); the
# diagonal is easy too; and because $a_{ij} = a_{ji}$, the lower triangle is a mirror copy of
# the upper one.

# %%
nb01.plot_pair_grid(nb01.pair_grid_rows())
plt.show()

# %% [markdown]
# Three grids for $n = 5$: all 25 cells; the same grid with the 5 diagonal cells struck out,
# leaving 20; and those 20 split into the 10 upper cells ($i<j$, kept) and their 10 mirror
# images (light), which the factor $\tfrac12$ removes.
#
# In symbols: for any numbers with $a_{ij} = a_{ji}$, the full square is the upper triangle,
# the lower triangle (equal to it) and the diagonal,
#
# $$\sum_{i=1}^n\sum_{j=1}^n a_{ij} \;=\; 2\sum_{i<j} a_{ij} + \sum_{i=1}^n a_{ii},
# \qquad\text{so}\qquad \sum_{i<j} a_{ij} = \tfrac12\Big[\sum_{i,j} a_{ij} - \sum_i a_{ii}\Big].
# \tag{1.2}$$
#
# **Derivation.** Start from the pairwise part of (1.1) and make one move per line:
#
# $$\begin{aligned}
# \sum_{i<j}\langle v_i,v_j\rangle x_ix_j
# &= \tfrac12\Big[\sum_{i=1}^n\sum_{j=1}^n \langle v_i,v_j\rangle x_ix_j - \sum_{i=1}^n \langle v_i,v_i\rangle x_i^2\Big]
# && \text{full square minus diagonal, halved: (1.2)}\\
# &= \tfrac12\Big[\sum_{i}\sum_{j}\sum_{f=1}^k v_{if}v_{jf}\, x_ix_j - \sum_{i}\sum_{f=1}^k v_{if}^2x_i^2\Big]
# && \text{expand } \langle v_i,v_j\rangle = \textstyle\sum_f v_{if}v_{jf}\\
# &= \tfrac12\sum_{f=1}^k\Big[\sum_{i}\sum_{j} (v_{if}x_i)(v_{jf}x_j) - \sum_{i} v_{if}^2x_i^2\Big]
# && \text{move } \textstyle\sum_f \text{ to the front (finite sums commute)}\\
# &= \tfrac12\sum_{f=1}^k\Big[\Big(\sum_{i} v_{if}x_i\Big)\Big(\sum_{j} v_{jf}x_j\Big) - \sum_{i} v_{if}^2x_i^2\Big]
# && \text{a double sum of products is a product of sums}\\
# &= \tfrac12\sum_{f=1}^k\Big[\Big(\sum_{i=1}^n v_{if}x_i\Big)^2 - \sum_{i=1}^n v_{if}^2x_i^2\Big]
# && \text{the two sums are the same sum.}
# \end{aligned}\tag{1.3}$$
#
# With $s_f = \sum_i v_{if}x_i$, one number per factor, the prediction becomes **Rendle's form**
#
# $$\hat y(x) = w_0 + \sum_{i=1}^n w_ix_i + \tfrac12\sum_{f=1}^k\Big[s_f^2 - \sum_{i=1}^n v_{if}^2x_i^2\Big].
# \tag{1.4}$$
#
# **Check, line by line.** Number the right-hand sides of (1.3) from 1 to 5. sympy [6] builds
# the left side and lines 1, 4 and 5 with symbols $x_i$ and $v_{if}$ for $n = 4$, $k = 3$
# ($n \ne k$, so that a swapped index could not cancel by accident), and expands the
# difference of each consecutive two to the zero polynomial. (Lines 2 and 3 only expand and
# reorder the same finite sum, which is what sympy's expansion does by itself, so the step
# from line 1 to line 4 covers them.)

# %%
xs, _, _, Vs = symbolic.fm_symbols(4, 3)
chain = symbolic.reformulation_chain(xs, Vs)  # the left side and lines 1, 4 and 5 of (1.3)
[(label, sp.expand(chain[step][1] - chain[step + 1][1])) for step, (label, _) in enumerate(chain[1:])]

# %% [markdown]
# Three exact zeros: each move is an identity, not an approximation. On the worked example,
# (1.4) reads $s = v_{\text{Ann}} + v_{\text{Alien}} = (2, -0.5)$ and
# $\tfrac12(\lVert s\rVert^2 - \lVert v_{\text{Ann}}\rVert^2 - \lVert v_{\text{Alien}}\rVert^2)
# = \tfrac12(4.25 - 1 - 1.25) = 1$, the inner product we computed by hand:

# %%
x = toy.x("Ann", "Alien")
s = x @ toy.V  # one number s_f per factor
rendle_pairs = 0.5 * (s @ s - (x * x) @ (toy.V * toy.V).sum(1))
s, bool(rendle_pairs == toy.V[0] @ toy.V[3])

# %% [markdown]
# The package implements both forms: the naive one (all pairs, through the $n\times n$ matrix
# of inner products $VV^\top$) and Rendle's form (1.4). On all twelve ratings both equal our
# loop exactly. You will write (1.4) yourself in Exercise 1.2.

# %%
all(
    fmedu.predict_naive(toy.x(u, m), toy.w0, toy.w, toy.V) == fm_by_definition(toy.x(u, m), toy.w0, toy.w, toy.V)
    and fmedu.predict(toy.x(u, m), toy.w0, toy.w, toy.V) == fm_by_definition(toy.x(u, m), toy.w0, toy.w, toy.V)
    for u in toy.users
    for m in toy.movies
)

# %% [markdown]
# > **Erratum R1 (Apache SystemDS, "Algorithms Reference: Factorization Machines" [3]).** The
# > page derives the same identity, but its two intermediate lines are garbled. In our notation
# > it writes $\tfrac12\sum_i\sum_j x_i x_j - \tfrac12\sum_i \langle v_i, v_j\rangle x_i x_i$ (no
# > $\langle v_i, v_j\rangle$ in the double sum, and $j$ unbound in the second sum), and then
# > $\tfrac12\big(\sum_i\sum_j\sum_f v_{if}v_{jf} - \sum_i\sum_f v_{if}v_{if}x_ix_i\big)$ (no
# > $x_i x_j$ in the triple sum). The correct lines are the first two of (1.3). The page's first
# > and last lines are right, so a test of the final formula, however thorough, passes; only a
# > check of every line finds the slip. Below, both printed lines (reading the unbound
# > $\langle v_i, v_j\rangle$ as $\langle v_i, v_i\rangle$) are compared with the pair sum.

# %%
[sp.expand(line - chain[0][1]) == 0 for _, line in symbolic.reference_page_steps(xs, Vs)]

# %% [markdown]
# Neither equals the pair sum. The smallest case shows why: with $n = 2$, $k = 1$ the pair sum is
# $v_{11}v_{21}x_1x_2$, while the first printed line has no $v$ in its double sum and the second
# no $x$ in its triple sum.

# %%
x2, _, _, V2 = symbolic.fm_symbols(2, 1)
{label: sp.factor(line) for label, line in symbolic.reference_page_steps(x2, V2)}

# %% [markdown]
# ## A proof for every $n$
#
# The check above used $n = 4$. To cover every $n$ at once, fix one factor $f$ (both sides of
# (1.3) are sums over $f$ of per-factor terms) and write $t_i = v_{if}x_i$. Let
# $P(n) = \sum_{j=2}^{n}\sum_{i=1}^{j-1} t_it_j$ be the pairs and
# $R(n) = \tfrac12\big[(\sum_{i\le n} t_i)^2 - \sum_{i\le n} t_i^2\big]$ Rendle's form, and
# $S_n = \sum_{i \le n} t_i$. We show $P(n) = R(n)$ by **induction on $n$**. Base:
# $P(1) = 0$ (no pairs) and $R(1) = \tfrac12(t_1^2 - t_1^2) = 0$. Step: adding feature $n+1$
# adds the pairs $(i, n+1)$ to $P$, and changes $R$ by
#
# $$\begin{aligned}
# P(n+1) - P(n) &= \sum_{i=1}^{n} t_i\,t_{n+1} = S_n\,t_{n+1}
# && \text{the new pairs are those with } j = n+1\\
# R(n+1) - R(n) &= \tfrac12\big[(S_n + t_{n+1})^2 - S_n^2 - t_{n+1}^2\big]
# && \text{split the last term off both sums}\\
# &= \tfrac12\big[S_n^2 + 2S_nt_{n+1} + t_{n+1}^2 - S_n^2 - t_{n+1}^2\big]
# && \text{expand the square}\\
# &= S_n\,t_{n+1}
# && \text{cancel.}
# \end{aligned}\tag{1.5}$$
#
# Both sides grow by the same amount, so $P(n) = R(n)$ for every $n \ge 1$; summing over $f$
# gives (1.3) for every $n$ and $k$. **Check**: sympy keeps $n$ as a symbol, with its `Sum`
# objects over $i = 1, \dots, n$, and simplifies (left side − right side) of the base, of the
# pair increment (first line of (1.5)) and of the step (all of (1.5)):

# %%
symbolic.rendle_induction()

# %% [markdown]
# All three are exactly 0, for a symbolic $n$: the identity holds for every size, not just the
# sizes we tried.
#
# ## Floating point: how far may the two forms differ?
#
# In exact arithmetic the two forms are equal; in float64 each rounds differently, so they
# differ by a little. How much is "a little"? A tolerance picked by eye ("$10^{-9}$ looks
# small") can hide a real mistake or fail on a correct computation. Instead we derive a bound
# from the standard model of floating-point arithmetic [5, §2.2]: every addition, subtraction
# and multiplication returns the exact result times $(1+\delta)$, with $|\delta| \le u$, the
# unit roundoff ($u = 2^{-53}$ in float64). Two facts follow [5, Lemma 3.1, §3.1]:
#
# * a product of $m$ such factors is $1 + \theta_m$ with $|\theta_m| \le \gamma_m = mu/(1-mu)$;
# * so if every term $t$ of a computed sum has passed through at most $m$ roundings on its way
#   to the result (its own products, then the additions along its path, in **any** order), the
#   result is $\sum t(1+\theta_m^{(t)})$, and it differs from the exact sum by at most
#   $\gamma_m\sum|t|$.
#
# Count the roundings of one term in each form, for one sample. The code computes
# $(w_0 + \sum_i w_ix_i) + \text{pairwise part}$, so a pairwise term meets one final addition:
#
# $$\begin{aligned}
# \text{Rendle's form (1.4):}\quad & \underbrace{n}_{s_f:\ 1 \text{ product},\ n-1 \text{ additions}}
#   \;+\; \underbrace{n + 1}_{\text{the other factor of } s_f^2, \text{ the squaring}}
#   \;+\; \underbrace{1}_{\text{minus the diagonal}} \;+\; \underbrace{k-1}_{\sum_f}
#   \;+\; \underbrace{1}_{\text{final addition}} \;=\; 2n + k + 2\\
# \text{naive form:}\quad & \underbrace{k}_{\langle v_i, v_j\rangle}
#   \;+\; \underbrace{n}_{\sum_i x_i\langle v_i,v_j\rangle} \;+\; \underbrace{1}_{\times x_j}
#   \;+\; \underbrace{n-1}_{\sum_j} \;+\; \underbrace{1}_{\text{final addition}} \;=\; 2n + k + 1 .
# \end{aligned}$$
#
# The other terms take fewer: a diagonal term $v_{if}^2x_i^2$ at most $n + k + 3$, a linear
# term $w_ix_i$ at most $n + 2$; and the factor $\tfrac12$ is exact in binary. So
# $m = 2n + k + 2$ covers every term of both forms. Expanding $s_f^2$ into
# its terms $v_{if}v_{jf}x_ix_j$, the absolute values of all terms add up to at most
#
# $$A = |w_0| + \sum_i |w_ix_i| + \tfrac12\sum_{f=1}^k\Big[\Big(\sum_i |v_{if}x_i|\Big)^2 + \sum_i v_{if}^2x_i^2\Big],$$
#
# the prediction computed with absolute values. Each form is within $\gamma_m A$ of the exact
# $\hat y$, so the two forms are within
#
# $$|\hat y_{\text{naive}} - \hat y_{\text{Rendle}}| \;\le\; 2\gamma_{2n+k+2}\,A,
# \qquad \gamma_m = \frac{mu}{1-mu},\ u = 2^{-53}. \tag{1.6}$$
#
# The sparse form of the next sections does the same operations on the nnz non-zero features
# only, so it needs fewer roundings, and (1.6) covers it too. In code:


# %%
def roundoff_bound(x, w0, w, V):
    """The bound (1.6) on |naive − Rendle| for every sample of the batch x."""
    n, k = V.shape
    u, m = 2.0**-53, 2 * n + k + 2
    A = w0.abs() + x.abs() @ w.abs() + 0.5 * (((x.abs() @ V.abs()) ** 2).sum(-1) + ((x * x) @ (V * V)).sum(-1))
    return 2 * m * u / (1 - m * u) * A


# %% [markdown]
# Sixty random cases ($2 \le n < 200$, $3 \le k < 12$, batches of 16) with dense, one-hot and
# multi-hot inputs; each compares the naive form with Rendle's form and with the sparse form,
# and records the largest ratio of observed difference to the bound (1.6):

# %%
gen = torch.Generator().manual_seed(2024)
ratios, cases = [], []
for trial in range(60):
    n, k = int(torch.randint(2, 200, (), generator=gen)), int(torch.randint(3, 12, (), generator=gen))
    x = testing.random_x(n, 16, ("dense", "one-hot", "multi-hot")[trial % 3], gen)
    w0, w, V = testing.random_fm(n, k, gen)
    naive, fast = fmedu.predict_naive(x, w0, w, V), fmedu.predict(x, w0, w, V)
    idx, val = fmedu.dense_to_sparse(x)  # the non-zeros of each sample, padded with −1
    sparse = fmedu.predict_sparse(idx, w0, w, V, val)
    bound = roundoff_bound(x, w0, w, V)
    ratios.append(float((torch.maximum((naive - fast).abs(), (naive - sparse).abs()) / bound).max()))
    cases.append((x, w0, w, V, naive, bound))
max(ratios) <= 1, len(ratios), f"largest observed difference / bound = {max(ratios):.2g}"

# %% [markdown]
# Every difference is within the bound. The bound is far from tight, as printed: it assumes
# every rounding errs in the same direction by the full $u$, while real errors partly cancel
# (Higham [5] explains why typical errors grow more like $\sqrt m\,u$ than $mu$). What it
# buys is a comparison that cannot fail on a correct computation, whatever the sizes.
#
# **It still catches a subtle mistake that the usual tolerance misses.** Suppose one small term
# is computed in single precision by accident (a tensor created without `dtype=float64`), here
# the diagonal sum $\sum_i v_{if}^2x_i^2$. That term is then wrong by a relative error of the
# order of single precision's unit roundoff, $2^{-24} \approx 6\cdot10^{-8}$.
# torch's default comparison (`torch.allclose`, relative tolerance $10^{-5}$) and the bound
# (1.6), over the same sixty cases:

# %%
caught_by_bound, caught_by_allclose, excess = 0, 0, []
for x, w0, w, V, naive, bound in cases:
    xv = x @ V
    diagonal_in_single = ((x * x).float() @ (V * V).float()).double()  # the mistake
    wrong = w0 + x @ w + 0.5 * (xv * xv - diagonal_in_single).sum(-1)
    caught_by_bound += bool(((wrong - naive).abs() > bound).any())
    caught_by_allclose += not torch.allclose(wrong, naive)
    excess.append(float(((wrong - naive).abs() / bound).max()))
caught_by_bound, caught_by_allclose, f"smallest error / bound = {min(excess):.2g}"

# %% [markdown]
# The bound flags the mistake in every case; the default tolerance in only the few printed. The
# chapters that follow compare floating-point results the same way: a bound derived from the
# rounding model, or a named safety factor on one.
#
# ## Cost, counted exactly
#
# Timings depend on the machine; operation counts do not. Count floating-point operations
# (flops) for a batch of $B$ samples, one multiply-add being 2 flops ($\odot$ is the entrywise
# product):
#
# $$\begin{aligned}
# \text{naive:}\quad & \underbrace{2n^2k}_{VV^\top,\ \text{once per batch}} + \underbrace{2Bn^2}_{\text{apply its upper triangle}} + \underbrace{2Bn}_{\text{linear part}}
# && = O(n^2k) \text{ once, then } O(n^2) \text{ per sample}\\
# \text{Rendle (1.4):}\quad & \underbrace{2Bnk}_{s = xV} + \underbrace{2Bnk}_{(x\odot x)(V\odot V)} + \underbrace{2Bn}_{\text{linear part}}
# && = O(nk) \text{ per sample,}
# \end{aligned}\tag{1.7}$$
#
# leaving out elementwise work (the triangle mask, $x\odot x$, $V\odot V$, the squares and the
# final sums): $O(n^2 + Bn)$ per batch for the naive form, $O(nk + Bn + Bk)$ for Rendle's, below
# the counts of the products. The naive form shares $VV^\top$ across the batch:
# per sample it costs $O(n^2)$ once $VV^\top$ is formed, and $O(n^2k)$ for a single sample; the
# loop of the worked example costs $O(n^2k)$ per sample.
#
# **Check.** torch's flop counter [7] records the products of matrices with matrices (2 flops
# per multiply-add); it records **0 for matrix–vector products**, so the linear part
# $\sum_i w_ix_i$ (a batch times the vector $w$) is invisible to it:

# %%
gen = torch.Generator().manual_seed(0)
xb, (w0, w, V) = testing.random_x(100, 64, "dense", gen), testing.random_fm(100, 16, gen)
cost.matmul_flops(lambda: xb @ w), cost.matmul_flops(lambda: xb @ V)

# %% [markdown]
# So the counter sees exactly the matrix–matrix terms of (1.7), and we add the linear part
# $2Bn$ ourselves. The totals equal (1.7) at four sizes:


# %%
def counted(n, k=16, batch=64):
    """Flops of (naive, Rendle) for a batch: the counter's matrix products plus the linear part 2Bn."""
    gen = torch.Generator().manual_seed(n)
    x, (w0, w, V) = testing.random_x(n, batch, "dense", gen), testing.random_fm(n, k, gen)
    linear = 2 * batch * n  # x @ w, a matrix–vector product the counter records as 0
    naive = cost.matmul_flops(fmedu.predict_naive, x, w0, w, V) + linear
    return naive, cost.matmul_flops(fmedu.predict, x, w0, w, V) + linear


all(
    counted(n) == (2 * n * n * 16 + 2 * 64 * n * n + 2 * 64 * n, 4 * 64 * n * 16 + 2 * 64 * n)
    for n in (100, 200, 400, 800)
)

# %% [markdown]
# Doubling $n$ multiplies the naive count by almost exactly 4 (the linear part grows only by 2)
# and Rendle's by exactly 2: the exponent of $n$ is 2 against 1.

# %%
(
    [round(counted(2 * n)[0] / counted(n)[0], 4) for n in (100, 400)],
    [counted(2 * n)[1] / counted(n)[1] for n in (100, 400)],
)

# %% [markdown]
# ## Cost, measured
#
# Now the clock: CPU seconds per batch of 64 dense samples, $k = 16$, one thread, best of
# seven rounds, for $n$ from about 1,400 to 5,800 in steps of $\sqrt2$. (Below that range the
# naive form's $n\times n$ matrix fits in the processor's cache and each entry costs less, which
# would bend the line.) The figure shows the measurement committed with the course; timings vary
# from machine to machine, and the course's `figures` command (chapter 00) re-measures on yours. The axes are
# logarithmic because a power law $t = c\,n^p$ is then a straight line of slope $p$.

# %%
dense_rows = nb01.committed("01_cost_vs_n")
nb01.plot_dense_cost(dense_rows)
plt.show()

# %% [markdown]
# Both measured lines run parallel to their dashed reference lines: the naive form's time grows
# with slope 2 (four times the time per doubling of $n$), Rendle's with slope 1. The fitted
# slopes:

# %% tags=["nbval-ignore-output"]
slopes = nb01.dense_slopes(dense_rows)
{form: round(slope, 3) for form, slope in slopes.items()}

# %% [markdown]
# As claims with a tolerance: the naive slope lies within 0.3 of 2, and Rendle's within 0.3 of
# 1. (Timings on a busy machine wander by tens of percent; a 30 % error at one end of a range
# that spans a factor 4 in $n$ moves a slope by $\log 1.3/\log 4 \approx 0.19$, so 0.3 leaves
# room.)

# %%
abs(slopes["naive"] - 2) <= 0.3, abs(slopes["rendle"] - 1) <= 0.3

# %% [markdown]
# ## Sparse inputs: the cost follows the non-zeros
#
# On one-hot data only nnz of the $n$ features are non-zero, and every zero $x_i$ drops out of
# both sums of (1.4). The sparse form takes, per sample, the indices of its non-zero features (a
# padded index matrix, $-1$ for padding) and gathers only those rows of $V$. Ann and Alien are
# features 0 and 3:

# %%
float(fmedu.predict_sparse(torch.tensor([0, 3]), toy.w0, toy.w, toy.V)) == 4.75

# %% [markdown]
# **Counted exactly.** The gathers and elementwise products of the sparse form are invisible to
# the flop counter, so we count differently: the number of tensor elements that the torch
# operations inside a call write (every product, sum and gather, views excluded), a
# machine-independent measure of work. For batches of 32 samples with nnz non-zeros each, at
# $n = 10^3$ and at $n = 10^6$:


# %%
def written(n, nnz, batch=32, k=16):
    gen = torch.Generator().manual_seed(0)
    w0, w, V = testing.random_fm(n, k, gen)
    idx = (torch.randint(0, n, (batch, 1), generator=gen) + torch.arange(nnz) * (n // nnz)) % n
    return cost.elements_written(fmedu.predict_sparse, idx, w0, w, V, check=False)


counts = {(n, nnz): written(n, nnz) for n in (1_000, 1_000_000) for nnz in (8, 16, 32)}
counts

# %% [markdown]
# The counts are the same at both $n$, and each doubling of nnz adds twice what the previous one
# added: the work is $a + b\cdot\text{nnz}$ exactly, independent of $n$. (The call skips input
# validation here; with it on, the package also reads all of $V$ once to reject NaN and
# infinite values, which is $O(nk)$, so a training loop validates once and then skips it.)

# %%
same_for_both_n = all(counts[1_000, m] == counts[1_000_000, m] for m in (8, 16, 32))
affine_in_nnz = counts[1_000, 32] - counts[1_000, 16] == 2 * (counts[1_000, 16] - counts[1_000, 8])
same_for_both_n, affine_in_nnz

# %% [markdown]
# **Measured.** CPU seconds per batch of 32 samples, $k = 16$, at $n = 10^3$ and $n = 10^6$
# (committed measurement; timings vary from machine to machine), on linear axes. At
# $n = 10^3$ a least-squares line $a + b\cdot\text{nnz}$ is drawn; at $n = 10^6$ the points are
# joined, for a reason the residuals below show.

# %%
sparse_rows = nb01.committed("01_sparse_cost")
nb01.plot_sparse_cost(sparse_rows)
plt.show()

# %% [markdown]
# Time grows with nnz at both sizes, from a fixed cost per call (the start-up of a dozen or so
# small torch operations). The relative residuals of a straight-line fit at each $n$, in percent, by nnz:

# %%
residuals = nb01.sparse_residuals(sparse_rows)
{n: [round(100 * r, 1) for r in res] for n, res in residuals.items()}

# %% [markdown]
# At $n = 10^3$ the residuals are small and without pattern: the straight line describes the
# measurement, as the exact count predicts. At $n = 10^6$ they are large and change sign
# twice (too slow at the ends, too fast in the middle): the points bend upward, so a straight
# line does not describe them, and we read nothing into its slope or intercept. The likely
# cause: the rows of $V$ ($10^6\times 16$ doubles, 128 MB) come from main memory instead of cache, and more of them
# miss the cache as nnz grows. What the measurement does support: time increases with nnz at
# both sizes, and a thousand times more features costs at most the factor printed below, not
# the thousandfold a dense form would pay.

# %%
ratios_n = nb01.sparse_n_ratios(sparse_rows)
times = {n: [r["seconds"] for r in sorted(sparse_rows, key=lambda r: r["nnz"]) if r["n"] == n] for n in residuals}
increasing = all(a < b for t in times.values() for a, b in zip(t, t[1:]))
(
    max(abs(r) for r in residuals[1_000]) <= 0.05,
    increasing,
    f"n = 10⁶ costs at most {max(ratios_n.values()):.2f}× n = 10³",
)

# %% [markdown]
# ## Key takeaways
#
# * An FM scores a pair of features by $\langle v_i, v_j\rangle$: $nk$ parameters instead of
#   $n(n-1)/2$, and pairs never seen together still get a score. On user and movie one-hots it
#   is matrix factorisation with biases.
# * Rendle's identity (1.3) is "full square minus diagonal, halved", then a double sum that
#   factorises into a square; induction (1.5) proves it for every $n$.
# * Cost (1.7): the naive form is $O(n^2k)$ to form $VV^\top$ and $O(n^2)$ per sample after
#   that; Rendle's form is $O(nk)$ per sample, and $O(\operatorname{nnz}\cdot k)$ on sparse data.
#   Exact counts show it; a counter that cannot see a term (here matrix–vector products) has to
#   be corrected by hand.
# * Two floating-point computations of one quantity are compared against a bound derived from
#   the rounding model (1.6): it never fails on a correct computation and still catches a
#   single-precision slip that the default tolerance lets through.
# * Published derivations can be wrong in their middle lines even when the result is right
#   (erratum R1): check every line.
#
# ## Exercises
#
# ### Exercise 1.1 (easy)
#
# Using the parameters printed in the worked example, compute by hand Bob's predicted rating of
# Dune. Then check your number with `fm_by_definition` and with `fmedu.predict`.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Only Bob's and Dune's weights and their one inner product remain. Bob is all "classics",
# Dune all "science fiction", so the inner product is 0 and Bob's negative weight pulls the
# prediction below the global bias.
x_bob_dune = toy.x("Bob", "Dune")
w0_, w_bob, w_dune, dot = 3, -0.5, 0, 0 * 1 + 1 * 0
by_hand = w0_ + w_bob + w_dune + dot
(
    by_hand,
    float(fm_by_definition(x_bob_dune, toy.w0, toy.w, toy.V))
    == by_hand
    == float(fmedu.predict(x_bob_dune, toy.w0, toy.w, toy.V)),
)

# %% [markdown]
# ### Exercise 1.2 (easy, your turn)
#
# Write Rendle's form (1.4) of the pairwise term yourself: a function of a batch `x` (shape
# `(batch, n)`) and `V` (shape `(n, k)`) that returns
# $\tfrac12\sum_f\big[(\sum_i v_{if}x_i)^2 - \sum_i v_{if}^2x_i^2\big]$ for every row, shape
# `(batch,)`, in $O(nk)$ per row: no loop over pairs, no $n\times n$ matrix.
# The cell after yours runs this chapter's evidence on your function (the pair-by-pair sum, within
# a rounding bound): it says whether it is right and, when it recognises the mistake (the
# $\tfrac12$ forgotten, the diagonal not subtracted, $x_i$ instead of $x_i^2$, ...), names it;
# `EXERCISES["rendle_pairwise"].hint()` gives a hint.


# %% fmedu={"stub": "def my_rendle_pairwise(x, V):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_rendle_pairwise(x, V):
    s = x @ V  # (batch, k): every s_f of every row
    diagonal = (x * x) @ (V * V)  # (batch, k)
    return 0.5 * (s * s - diagonal).sum(-1)


# %%
EXERCISES["rendle_pairwise"].check(my_rendle_pairwise).correct

# %% [markdown]
# A second check of the same function is the comparison of the section *Floating point: how far may
# the two forms differ?*: the pair sum on dense and on 0/1 batches, within twice the bound (1.6). A
# common slip, $x_i$ instead of $x_i^2$ in the diagonal, is right on 0/1 inputs only; both checks
# reject it (the first names it, the second says False), and the second accepts the form above (True):

# %%
slip_x = EXERCISES["rendle_pairwise"].variants["x-not-squared"].fn
(
    EXERCISES["rendle_pairwise"].check(slip_x).variant,
    testing.check_rendle_form(slip_x),
    testing.check_rendle_form(my_rendle_pairwise),
)

# %% [markdown]
# ### Exercise 1.3 (easy)
#
# **Predict before you run.** Double every latent vector ($V \to 2V$) and leave $w_0$ and $w$
# alone. Write the new table of twelve predictions as a formula in the old table and the bias
# part, then check your formula on all twelve entries.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The pairwise part is quadratic in V, so every interaction is multiplied by 4:
# new table = bias part + 4 * interactions = 4 * old table - 3 * bias part.
# (Exact in float64: every number is still a multiple of 1/4.)
doubled = torch.stack(
    [torch.stack([fmedu.predict(toy.x(u, m), toy.w0, toy.w, 2 * toy.V) for m in toy.movies]) for u in toy.users]
)
torch.equal(doubled, 4 * table - 3 * bias_part)

# %% [markdown]
# ### Exercise 1.4 (medium)
#
# **Predict before you run.** At $n = 400$ and a batch of 64, the factorisation dimension grows
# from $k = 16$ to $k = 32$. Does the naive form's flop count double? By what exact factor does
# each count of (1.7) grow? Check with `counted`.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# In (1.7) only the term that forms V V^T grows with k in the naive count; applying the n x n
# matrix to the batch and the linear part do not. Rendle's count grows in its two k-terms only.
n_, B = 400, 64
naive_factor = sp.Rational(2 * n_**2 * 32 + 2 * B * n_**2 + 2 * B * n_, 2 * n_**2 * 16 + 2 * B * n_**2 + 2 * B * n_)
rendle_factor = sp.Rational(4 * B * n_ * 32 + 2 * B * n_, 4 * B * n_ * 16 + 2 * B * n_)
(naive_16, rendle_16), (naive_32, rendle_32) = counted(400, k=16), counted(400, k=32)
(
    naive_factor,
    rendle_factor,
    sp.Rational(naive_32, naive_16) == naive_factor,
    sp.Rational(rendle_32, rendle_16) == rendle_factor,
)

# %% [markdown]
# ### Exercise 1.5 (medium)
#
# For a 0/1 input with non-zero set $S$ (one-hot or multi-hot data), show that the pairwise
# term equals $\tfrac12\big(\lVert\sum_{i\in S} v_i\rVert^2 - \sum_{i\in S}\lVert v_i\rVert^2\big)$.
# This is the form the proximal-point blog post [4] works with (chapters 05 and 06). Prove it
# with sympy for $|S| = 4$ features out of $n = 6$, $k = 3$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Put x_i = 1 on S and 0 elsewhere in (1.4): x_i and its square are both 1 on S, and summing
# the per-factor squares over f turns them into squared norms of vectors.
xs6, _, _, Vs6 = symbolic.fm_symbols(6, 3)
S = [0, 2, 3, 5]
x_binary = sp.Matrix([1 if i in S else 0 for i in range(6)])
sum_S = sum((Vs6.row(i) for i in S), sp.zeros(1, 3))
norm_form = sp.Rational(1, 2) * ((sum_S * sum_S.T)[0] - sum((Vs6.row(i) * Vs6.row(i).T)[0] for i in S))
sp.expand(symbolic.pairwise_double_sum(x_binary, Vs6) - norm_form)

# %% [markdown]
# ### Exercise 1.6 (hard)
#
# Rendle's paper [1] notes that higher-order FMs can also be computed in linear time. For one
# factor, write $a_i = v_{if}x_i$ and $p_r = \sum_i a_i^r$. Show that the sum over triples
# $\sum_{i<j<l} a_ia_ja_l$ equals $(p_1^3 - 3p_1p_2 + 2p_3)/6$, with sympy for $n = 5$. How many
# operations does the right side need, against the left?

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Expanding the cube of p1 gives every ordered triple (i, j, l): six times each triple of
# distinct indices, three times each term with one repeated index, and p3 for i = j = l.
# The terms with one repeated index add up to p1 * p2 - p3; solving for the distinct triples
# gives the formula. The left side has n(n-1)(n-2)/6 terms; the right side three sums over i.
a = sp.symbols("a1:6", real=True)
triples = sum(a[i] * a[j] * a[m] for i in range(5) for j in range(i + 1, 5) for m in range(j + 1, 5))
p1, p2, p3 = (sum(ai**r for ai in a) for r in (1, 2, 3))
repeated_once = sum(a[i] ** 2 * a[j] for i in range(5) for j in range(5) if i != j)
sp.expand(repeated_once - (p1 * p2 - p3)), sp.expand(triples - (p1**3 - 3 * p1 * p2 + 2 * p3) / 6)

# %% [markdown]
# ### Exercise 1.7 (easy, your turn)
#
# For a 0/1 sample given by the list `idx` of its non-zero features, return $\tfrac12(\lVert\sum_{i\in S}v_i\rVert^2 - \sum_{i\in S}\lVert v_i\rVert^2)$ as a scalar tensor, touching only the rows of $V$ in `idx`.
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["pairwise_one_hot"].hint()` gives a hint.


# %% fmedu={"stub": "def my_pairwise_one_hot(idx, V):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_pairwise_one_hot(idx, V):
    rows = V[torch.as_tensor(idx)]  # (d, k)
    total = rows.sum(0)
    return 0.5 * (total @ total - (rows * rows).sum())


# %%
EXERCISES["pairwise_one_hot"].check(my_pairwise_one_hot).correct

# %% [markdown]
# ### Every check of this chapter, caught
#
# A check that no wrong function can fail proves nothing. The table runs every check of this chapter
# that takes a function of yours (each exercise's check, and the chapter's other checks of the same
# function: the rounding-bound comparison of Exercise 1.2) on every wrong variant in the course's catalogue (the slips named above, and the errata
# that are code) and on the reference solution; "caught" means the check said wrong. The last line is
# True when every check catches at least one variant, every variant is caught by at least one check,
# and no check rejects a reference solution.

# %%
catch_rows = catch_table("01")
print(format_catch_table(catch_rows))
every_check_catches(catch_rows)

# %% [markdown]
# ## References
#
# 1. Steffen Rendle. "Factorization Machines." *Proceedings of the 10th IEEE International
#    Conference on Data Mining (ICDM)*, pp. 995–1000, 2010. doi:10.1109/ICDM.2010.127
# 2. Steffen Rendle. "Factorization Machines with libFM." *ACM Transactions on Intelligent
#    Systems and Technology* 3(3), article 57, 2012. doi:10.1145/2168752.2168771
# 3. Apache SystemDS. "Algorithms Reference: Factorization Machines." Project documentation,
#    https://apache.github.io/systemds/site/algorithms-factorization-machines (source:
#    `docs/site/algorithms-factorization-machines.md` in https://github.com/apache/systemds).
# 4. Alex Shtoff. "Proximal Point to the Extreme — Factorization Machines." Blog post,
#    14 April 2021, https://alexshtf.github.io/2021/04/14/ProximalPointFM.html
# 5. Nicholas J. Higham. *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002
#    (§2.2, the standard model of floating-point arithmetic; §3.1, Lemma 3.1, sums and inner
#    products).
# 6. Aaron Meurer et al. "SymPy: symbolic computing in Python." *PeerJ Computer Science* 3:e103,
#    2017.
# 7. Adam Paszke et al. "PyTorch: An Imperative Style, High-Performance Deep Learning Library."
#    *Advances in Neural Information Processing Systems 32 (NeurIPS)*, 2019.
#
# [← Previous: 00 · Course index](00_index.ipynb) · [Course index](00_index.ipynb) · [Next: 02 · The O(nk) gradient, checked three ways →](02_gradient.ipynb)
