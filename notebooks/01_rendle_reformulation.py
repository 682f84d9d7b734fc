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
# would need n²/2 weights, trillions of them, and would see almost none of the pairs in
# training. A factorization machine (FM) gives every feature a short vector of k numbers and
# scores a pair by the inner product of its two vectors. **Why can such a model be trained on
# millions of features at all?** This chapter answers the half of the question that is
# arithmetic: an identity due to Rendle turns the sum over all n²/2 pairs into k sums over the
# features, so one prediction costs O(nk) instead of O(n²k), and O(nnz·k) when only nnz of the
# n features are non-zero.
#
# Symbols follow the course's [notation](../README.md#notation) table.
#
# ## What you will learn
#
# * what an FM computes, on a worked example with three users and four movies;
# * Rendle's identity, derived in three short steps, each checked exactly;
# * how to prove an identity for every n with sympy, and how to compare two floating-point
#   computations honestly (with a rounding bound, not "close enough");
# * what the two forms cost: exact operation counts first, then measured time;
# * how to catch a mistake in a published derivation (erratum R1).
#
# ## What you need
#
# * Sums, inner products, and $(a+b)^2 = a^2 + 2ab + b^2$; Python with a little torch (tensors, `@`).
# * [Chapter 00](00_index.ipynb) for how the course works.
# * Other sources use other letters. The SystemDS reference page [3] uses ours ($W$ for $w$).
#   The proximal-point blog post [4] writes $\sigma$ for $\hat y$, $w$ for the input $x$, $x$ for
#   all parameters together, $b_0, b_i$ for $w_0, w_i$ and $m$ for $n$.

# %%
import matplotlib.pyplot as plt
import sympy as sp
import torch

import fmedu
from fmedu import cost, symbolic, testing
from fmedu.figures import nb01
from fmedu.notebook import setup

setup()

# %% [markdown]
# ## A worked example: three users, four movies
#
# Three users (Ann, Bob, Cat) rate four movies (Alien, Brazil, Casablanca, Dune). An FM sees a
# rating as a feature vector $x$ with one entry per user and one per movie, $n = 7$ in all,
# and sets the entries of the rating's user and movie to 1 (**one-hot** encoding). Ann rating
# Alien:

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
# $$\hat y(x) = w_0 + \sum_{i=1}^n w_i x_i + \sum_{i=1}^{n}\sum_{j=i+1}^{n} \langle v_i, v_j\rangle\, x_i x_j .$$
#
# Here it is in plain torch, written exactly as the formula reads: a loop over all pairs
# $i < j$.


# %%
def fm_by_definition(x, w0, w, V):
    """ŷ(x) = w0 + Σ_i w_i x_i + Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j, one pair at a time."""
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
# **Why vectors instead of one weight per pair?** Two reasons. The FM learns $v_{\text{Ann}}$ from
# all of Ann's ratings, so it can score Ann with a movie she has never rated; a free pair
# weight $w_{\text{Ann},\text{Dune}}$ would have no data at all. And the counts: with $n$
# features, pair weights number $n(n-1)/2$, latent vectors $nk$. For the MovieLens data of
# chapter 07 ($n = 2{,}728$, $k = 20$) and for a million features:

# %%
{n: {"pair weights": n * (n - 1) // 2, "FM latent numbers (k = 20)": n * 20} for n in (7, 2_728, 1_000_000)}

# %% [markdown]
# Storing $nk$ numbers is easy. But `fm_by_definition` still *visits* all $n(n-1)/2$ pairs for
# every prediction, 21 here and half a trillion at a million features, even though on one-hot
# data all but one of them are zero. The rest of the chapter removes that cost.
#
# ## Rendle's identity
#
# **Claim** (Rendle [1], Lemma 3.1). For every $x$ and $V$,
#
# $$\sum_{i<j} \langle v_i, v_j\rangle\, x_i x_j \;=\; \frac12 \sum_{f=1}^{k}\Big[\Big(\sum_{i=1}^n v_{if} x_i\Big)^2 - \sum_{i=1}^n v_{if}^2 x_i^2\Big].$$
#
# The left side has $n(n-1)/2$ terms of $k$ products each: $O(n^2k)$. The right side needs, for
# each of the $k$ factors, two sums over the $n$ features: $O(nk)$.
#
# We derive it in three steps. sympy builds each line of the chain for $n = 4$, $k = 3$
# (with $n \ne k$, so that a swapped index could not cancel by accident), and each step is
# checked by expanding the difference of consecutive lines to the zero polynomial.

# %%
xs, _, _, Vs = symbolic.fm_symbols(4, 3)
chain = symbolic.reformulation_chain(xs, Vs)
[label for label, _ in chain]

# %% [markdown]
# **Step 1: symmetry.** The term $\langle v_i, v_j\rangle x_i x_j$ is symmetric in $i$ and $j$.
# The full double sum over all $(i, j)$ counts each pair $i<j$ twice and adds the diagonal
# $i = j$ once, so
# $\sum_{i<j} = \tfrac12\sum_i\sum_j \langle v_i, v_j\rangle x_i x_j - \tfrac12\sum_i \langle v_i, v_i\rangle x_i^2$.

# %%
sp.expand(chain[0][1] - chain[1][1]) == 0

# %% [markdown]
# **Step 2: expand the inner product** $\langle v_i, v_j\rangle = \sum_f v_{if} v_{jf}$ and
# move the sum over $f$ to the front. For a fixed $f$, the double sum
# $\sum_i\sum_j v_{if}x_i\, v_{jf}x_j$ is a product of two single sums.

# %%
sp.expand(chain[1][1] - chain[2][1]) == 0

# %% [markdown]
# **Step 3: the two sums are the same sum**, so their product is a square.

# %%
sp.expand(chain[2][1] - chain[3][1]) == 0

# %% [markdown]
# Three exact zeros: each step is an identity, not an approximation. On the worked example the
# right side reads $s = v_{\text{Ann}} + v_{\text{Alien}} = (2, -0.5)$ and
# $\tfrac12(\lVert s\rVert^2 - \lVert v_{\text{Ann}}\rVert^2 - \lVert v_{\text{Alien}}\rVert^2)
# = \tfrac12(4.25 - 1 - 1.25) = 1$, the inner product we computed by hand:

# %%
x = toy.x("Ann", "Alien")
s = x @ toy.V  # s_f = Σ_i v_if x_i, one number per factor
rendle_pairs = 0.5 * (s @ s - (x * x) @ (toy.V * toy.V).sum(1))
s, bool(rendle_pairs == toy.V[0] @ toy.V[3])

# %% [markdown]
# The package implements both forms: `fmedu.predict_naive` (all pairs, through the $n\times n$
# matrix of inner products) and `fmedu.predict` (Rendle's form). On all twelve ratings both
# equal our loop exactly:

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
# > $x_i x_j$ in the triple sum). The correct lines are those of steps 1 and 2 above:
# > $\tfrac12\sum_i\sum_j\langle v_i, v_j\rangle x_i x_j - \tfrac12\sum_i\langle v_i, v_i\rangle x_i^2$
# > and $\tfrac12\big(\sum_i\sum_j\sum_f v_{if}v_{jf}x_ix_j - \sum_i\sum_f v_{if}^2x_i^2\big)$.
# > The page's first and last lines are right. Below, both printed lines (reading the unbound
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
# ## A proof for every size
#
# The chain above was checked for $n = 4$, $k = 3$. For other fixed sizes the same expansion
# works: both sides are polynomials in the $x_i$ and $v_{if}$, and their difference expands to
# the zero polynomial. Some shapes, including $k = 1$, $n < k$ and $n > k$:

# %%
shapes = [(1, 3), (2, 3), (3, 1), (3, 5), (4, 3), (5, 3), (6, 4), (7, 5), (8, 3)]
{shape: symbolic.rendle_identity_difference(*shape) for shape in shapes}

# %% [markdown]
# Finitely many sizes are not every size. Both sides are sums over $f$ of per-factor terms, so
# fix one $f$ and argue by **induction on $n$**, with
# $P(n) = \sum_{j=2}^{n}\sum_{i=1}^{j-1} v_{if}v_{jf}x_ix_j$ (the pairs) and
# $R(n) = \tfrac12[(\sum_{i\le n} v_{if}x_i)^2 - \sum_{i\le n} v_{if}^2x_i^2]$ (Rendle's form):
#
# * **base**: $P(1) = 0 = R(1)$;
# * **pairs added by feature $n+1$**: $P(n+1) - P(n) = \sum_{i\le n} v_{if}v_{n+1,f}x_ix_{n+1}$;
# * **step**: $R(n+1) - R(n)$, with the last term split off both sums and the square expanded, is
#   that same increment.
#
# sympy keeps $n$ symbolic (its `Sum` objects); each entry is (left side − right side) of one
# claim, simplified:

# %%
symbolic.rendle_induction()

# %% [markdown]
# All three are exactly 0, so $P(n) = R(n)$ for every $n \ge 1$, and summing over $f$ gives the
# identity for every $n$ and $k$.
#
# ## Floating point: the forms agree within a rounding bound
#
# In exact arithmetic the two forms are equal; in float64 they round differently, so we compare
# them against a bound instead of demanding equality:
#
# * adding up $m$ numbers in float64 can move the result by about $m\,\varepsilon$ times the sum
#   of their absolute values, with $\varepsilon = 2^{-52} \approx 2.2\cdot10^{-16}$ [5];
# * let $A = |w_0| + \sum_i |w_i x_i| + \tfrac12\sum_f(\sum_i |v_{if}x_i|)^2$ be $\hat y$
#   computed with absolute values;
# * we allow $8\,n\,\varepsilon\,(A + 1)$ per sample (`fmedu.testing.prediction_roundoff_bound`).
#
# Sixty random cases with dense, one-hot and multi-hot inputs, also through the sparse form
# `fmedu.predict_sparse` (used below):

# %%
gen = torch.Generator().manual_seed(2024)
agree = []
for trial in range(60):
    n, k = int(torch.randint(2, 200, (), generator=gen)), int(torch.randint(3, 12, (), generator=gen))
    x = testing.random_x(n, 16, ("dense", "one-hot", "multi-hot")[trial % 3], gen)
    w0, w, V = testing.random_fm(n, k, gen)
    naive, fast = fmedu.predict_naive(x, w0, w, V), fmedu.predict(x, w0, w, V)
    idx, val = fmedu.dense_to_sparse(x)  # the non-zeros of each sample, padded with −1
    sparse = fmedu.predict_sparse(idx, w0, w, V, val)
    bound = testing.prediction_roundoff_bound(x, w0, w, V)
    agree.append(bool(((naive - fast).abs() <= bound).all() and ((naive - sparse).abs() <= bound).all()))
all(agree), len(agree)

# %% [markdown]
# The bound is tight enough to catch a real mistake: forgetting the $\tfrac12$ (summing ordered
# pairs $i \ne j$) misses it on the last case.

# %%
wrong = w0 + x @ w + 2 * fmedu.pairwise_rendle(x, V)
bool(((naive - wrong).abs() > bound).any())

# %% [markdown]
# ## Cost, counted exactly
#
# Timings depend on the machine; operation counts do not. torch's flop counter counts 2 per
# multiply-add inside matrix products (`fmedu.cost.matmul_flops`), which is where both forms do
# their work. For a batch of $B$ samples the naive form builds the $n\times n$ matrix $VV^\top$
# ($2n^2k$) and applies its upper triangle to the batch ($2Bn^2$); Rendle's form needs two
# $(B\times n)(n\times k)$ products ($4Bnk$). The counts equal these formulas exactly:


# %%
def counted(n, k=16, batch=64):
    gen = torch.Generator().manual_seed(n)
    x, (w0, w, V) = testing.random_x(n, batch, "dense", gen), testing.random_fm(n, k, gen)
    return cost.matmul_flops(fmedu.predict_naive, x, w0, w, V), cost.matmul_flops(fmedu.predict, x, w0, w, V)


all(counted(n) == (2 * n * n * 16 + 2 * 64 * n * n, 4 * 64 * n * 16) for n in (100, 200, 400, 800))

# %% [markdown]
# Doubling $n$ multiplies the naive count by exactly 4 and Rendle's by exactly 2: the exponent
# of $n$ is 2 against 1.

# %%
[counted(2 * n)[0] / counted(n)[0] for n in (100, 400)], [counted(2 * n)[1] / counted(n)[1] for n in (100, 400)]

# %% [markdown]
# ## Cost, measured
#
# Now the clock: CPU seconds per batch of 64 dense samples, $k = 16$, one thread, best of
# seven rounds, for $n$ from about 1,400 to 5,800 in steps of $\sqrt2$. (Below that range the
# naive form's $n\times n$ matrix fits in the processor's cache and each entry costs less, which
# would bend the line.) The figure shows the measurement committed with the course,
# `figures/01_cost_vs_n.png` and its CSV; timings vary from machine to machine, and
# `nb01.measure_dense_cost()` re-measures on yours. The axes are logarithmic because a power law
# $t = c\,n^p$ is then a straight line of slope $p$.

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
# As claims with stated tolerances: the naive slope lies within 0.3 of 2, and Rendle's within
# 0.3 of 1.

# %%
1.7 <= slopes["naive"] <= 2.3, 0.7 <= slopes["rendle"] <= 1.3

# %% [markdown]
# ## Sparse inputs: the cost follows the non-zeros
#
# On one-hot data only nnz of the $n$ features are non-zero, and every zero $x_i$ drops out of
# both sums of Rendle's form. `fmedu.predict_sparse` takes, per sample, the indices of its
# non-zero features (a padded index matrix, $-1$ for padding) and gathers only those rows of
# $V$. Ann and Alien are features 0 and 3:

# %%
float(fmedu.predict_sparse(torch.tensor([0, 3]), toy.w0, toy.w, toy.V)) == 4.75

# %% [markdown]
# **Counted exactly.** `fmedu.cost.elements_written` counts the tensor elements that the torch
# operations inside a call write (every product, sum and gather, views excluded): a
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
# added: the work is $a + b\cdot\text{nnz}$, independent of $n$.

# %%
same_for_both_n = all(counts[1_000, m] == counts[1_000_000, m] for m in (8, 16, 32))
affine_in_nnz = counts[1_000, 32] - counts[1_000, 16] == 2 * (counts[1_000, 16] - counts[1_000, 8])
same_for_both_n, affine_in_nnz

# %% [markdown]
# (`check=False` skips input validation. With it on, the default, fmedu also reads all of $V$
# once to reject NaN and infinite values, which is $O(nk)$; a training loop validates once and
# then passes `check=False`.)
#
# **Measured.** CPU seconds per batch of 32 samples, $k = 16$, at $n = 10^3$ and
# $n = 10^6$, plotted on linear axes with the fitted lines $a + b\cdot\text{nnz}$
# (`figures/01_sparse_cost.png`, committed measurement; timings vary from machine to machine):

# %%
sparse_rows = nb01.committed("01_sparse_cost")
nb01.plot_sparse_cost(sparse_rows)
plt.show()

# %% [markdown]
# Time grows with nnz at both sizes, from a fixed cost per call (about fifteen small torch
# operations). At $n = 10^3$ the points lie on a straight line. At $n = 10^6$ each non-zero is
# dearer and the curve bends upward: the rows of a 128 MB $V$ come from main memory instead of
# cache, and more of them miss the cache as nnz grows. But a thousand times more features
# costs nowhere near a thousand times more time, which is what a dense form would pay. As claims:
# at $n = 10^3$ every time lies within 25 % of its fitted line; at both sizes the fitted cost
# per non-zero is positive; and $n = 10^6$ costs at most 10 times $n = 10^3$ at every nnz.

# %%
lines, ratios = nb01.sparse_lines(sparse_rows), nb01.sparse_n_ratios(sparse_rows)
(
    lines[1_000]["max_deviation"] <= 0.25,
    all(line["b"] > 0 for line in lines.values()),
    max(ratios.values()) <= 10,
)

# %% [markdown]
# ## Key takeaways
#
# * An FM scores a pair of features by $\langle v_i, v_j\rangle$: $nk$ parameters instead of
#   $n(n-1)/2$, and pairs never seen together still get a score. On user and movie one-hots it
#   is matrix factorisation with biases.
# * Rendle's identity $\sum_{i<j}\langle v_i, v_j\rangle x_ix_j = \tfrac12\sum_f[(\sum_i v_{if}x_i)^2 - \sum_i v_{if}^2x_i^2]$
#   follows from symmetry, expanding the inner product, and recognising a square; sympy proves
#   it for every $n$.
# * Cost per sample: $O(n^2k)$ for the pair sum, $O(nk)$ for Rendle's form, $O(\text{nnz}\cdot k)$
#   on sparse data; exact counts show exponents 2 and 1, and measured times follow them.
# * Two floating-point computations of the same quantity are compared against a rounding bound
#   that a real mistake would violate.
# * Published derivations can be wrong in their middle lines even when the result is right
#   (erratum R1): check every step.
#
# ## Exercises
#
# ### Exercise 1.1 (easy)
#
# Using the parameters printed in the worked example, compute by hand Bob's predicted rating of
# Dune. Then check your number with `fm_by_definition` and with `fmedu.predict`.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# By hand: w0 + w_Bob + w_Dune + <v_Bob, v_Dune> = 3 − 0.5 + 0 + (0·1 + 1·0) = 2.5.
# Bob likes classics, Dune is pure science fiction: the interaction contributes nothing,
# and Bob's negative bias pulls the prediction below w0.
x_bob_dune = toy.x("Bob", "Dune")
by_hand = 3 - 0.5 + 0 + (0 * 1 + 1 * 0)
float(fm_by_definition(x_bob_dune, toy.w0, toy.w, toy.V)) == by_hand == float(
    fmedu.predict(x_bob_dune, toy.w0, toy.w, toy.V)
)

# %% [markdown]
# ### Exercise 1.2 (easy)
#
# **Predict before you run.** Double every latent vector ($V \to 2V$) and leave $w_0$ and $w$
# alone. Write the new table of twelve predictions as a formula in the old table and the bias
# part, then check your formula on all twelve entries.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Each interaction <2v_u, 2v_m> = 4 <v_u, v_m>: the pairwise part is quadratic in V.
# New table = bias part + 4 · interactions = 4 · old table − 3 · bias part.
# (Exact in float64: every number is still a multiple of 1/4.)
doubled = torch.stack(
    [torch.stack([fmedu.predict(toy.x(u, m), toy.w0, toy.w, 2 * toy.V) for m in toy.movies]) for u in toy.users]
)
torch.equal(doubled, 4 * table - 3 * bias_part)

# %% [markdown]
# ### Exercise 1.3 (medium)
#
# **Predict before you run.** At $n = 400$ and a batch of 64, the factorisation dimension grows
# from $k = 16$ to $k = 32$. Does the naive form's flop count double? By what exact factor does
# each count grow? Check with `cost.matmul_flops`.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Naive: 2n²k + 2Bn². Only the first term (forming VVᵀ) grows with k; applying the n × n
# matrix to the batch does not. Factor (2·400²·32 + 2·64·400²) / (2·400²·16 + 2·64·400²)
# = (64 + 128) / (32 + 128) = 6/5. Rendle: 4Bnk, exactly linear in k: factor 2.
naive_16, rendle_16 = counted(400, k=16)
naive_32, rendle_32 = counted(400, k=32)
5 * naive_32 == 6 * naive_16, rendle_32 == 2 * rendle_16

# %% [markdown]
# ### Exercise 1.4 (medium)
#
# For a 0/1 input with non-zero set $S$ (one-hot or multi-hot data), show that the pairwise
# term equals $\tfrac12\big(\lVert\sum_{i\in S} v_i\rVert^2 - \sum_{i\in S}\lVert v_i\rVert^2\big)$.
# This is the form the proximal-point blog post [4] works with (chapters 05 and 06). Prove it
# with sympy for $|S| = 4$ features out of $n = 6$, $k = 3$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# With x_i = 1 on S and 0 elsewhere, Rendle's form becomes ½ Σ_f [(Σ_{i∈S} v_if)² − Σ_{i∈S} v_if²],
# and summing over f turns the squares into squared norms.
xs6, _, _, Vs6 = symbolic.fm_symbols(6, 3)
S = [0, 2, 3, 5]
x_binary = sp.Matrix([1 if i in S else 0 for i in range(6)])
sum_S = sum((Vs6.row(i) for i in S), sp.zeros(1, 3))
norm_form = sp.Rational(1, 2) * ((sum_S * sum_S.T)[0] - sum((Vs6.row(i) * Vs6.row(i).T)[0] for i in S))
sp.expand(symbolic.pairwise_double_sum(x_binary, Vs6) - norm_form)

# %% [markdown]
# ### Exercise 1.5 (hard)
#
# Rendle's paper [1] notes that higher-order FMs can also be computed in linear time. For one
# factor, write $a_i = v_{if}x_i$ and $p_r = \sum_i a_i^r$. Show that the sum over triples
# $\sum_{i<j<l} a_ia_ja_l$ equals $(p_1^3 - 3p_1p_2 + 2p_3)/6$, with sympy for $n = 5$. How many
# operations does the right side need, against the left?

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Expanding p1³ = (Σ a_i)³ gives every ordered triple: 6 × (distinct triples) + 3 × (terms
# a_i² a_j, i ≠ j) + p3. The terms a_i² a_j make up p1·p2 − p3. Solving for the distinct
# triples gives (p1³ − 3 p1 p2 + 2 p3) / 6. The left side has n(n−1)(n−2)/6 terms, O(n³);
# the right side needs three sums over i, O(n), per factor.
a = sp.symbols("a1:6", real=True)
triples = sum(a[i] * a[j] * a[m] for i in range(5) for j in range(i + 1, 5) for m in range(j + 1, 5))
p1, p2, p3 = (sum(ai**r for ai in a) for r in (1, 2, 3))
sp.expand(triples - (p1**3 - 3 * p1 * p2 + 2 * p3) / 6)

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
#    Corrected here: erratum R1.
# 4. Alex Shtoff. "Proximal Point to the Extreme — Factorization Machines." Blog post,
#    14 April 2021, https://alexshtf.github.io/2021/04/14/ProximalPointFM.html
# 5. Nicholas J. Higham. *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002
#    (chapter 4, summation).
# 6. Aaron Meurer et al. "SymPy: symbolic computing in Python." *PeerJ Computer Science* 3:e103,
#    2017.
#
# [← Previous: 00 · Course index](00_index.ipynb) · [Course index](00_index.ipynb) · [Next: 02 · The O(nk) gradient, checked three ways →](02_gradient.ipynb)
