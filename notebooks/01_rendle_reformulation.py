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
# # 01 · Rendle's reformulation of the pairwise term
#
# A second-order factorization machine (FM) predicts
#
# $$\hat y(x) = w_0 + \sum_{i=1}^n w_i x_i + \sum_{i=1}^{n}\sum_{j=i+1}^{n} \langle v_i, v_j\rangle\, x_i x_j ,$$
#
# with $w_0\in\mathbb R$, $w\in\mathbb R^n$ and $V\in\mathbb R^{n\times k}$ whose row $v_i$ is the
# latent vector of feature $i$. Summed pair by pair, the last term costs $O(n^2 k)$. Rendle showed
# it equals
#
# $$\frac12 \sum_{f=1}^{k}\Big[\Big(\sum_{i=1}^n v_{if} x_i\Big)^2 - \sum_{i=1}^n v_{if}^2 x_i^2\Big],$$
#
# which costs $O(nk)$. This notebook derives the identity step by step, proves it exactly with
# sympy (for concrete sizes and for symbolic $n$), checks it in floating point, and measures the
# cost of both forms.
#
# **Notation.** We use the symbols of `design.md` throughout. The algorithms-reference seed uses
# the same letters ($w_0$, $W$ for $w$, $V$, $n$, $k$); the blog writes $b_0, b$ for $w_0, w$;
# the gradient note writes $P\in\mathbb R^{k\times d}$ for $V^\top$, $X$ for $x$ and $d$ for $n$.

# %%
import matplotlib.pyplot as plt
import sympy as sp
import torch

import fmedu
from fmedu import cost, symbolic
from fmedu.figures import nb01
from fmedu.notebook import setup

setup()

# %% [markdown]
# ## The model, computed the slow way
#
# `fmedu.predict_naive` forms every inner product $\langle v_i, v_j\rangle$ and sums the pairs
# $i<j$. A tiny example with $n = 5$ features and $k = 3$ factors:

# %%
gen = torch.Generator().manual_seed(1)
n, k = 5, 3
w0 = torch.tensor(0.5, dtype=torch.float64)
w = torch.randn(n, dtype=torch.float64, generator=gen)
V = torch.randn(n, k, dtype=torch.float64, generator=gen)
x = torch.randn(n, dtype=torch.float64, generator=gen)
fmedu.predict_naive(x, w0, w, V)

# %% [markdown]
# ## The derivation, one step at a time
#
# We build the four expressions of the chain symbolically for $n = 4$, $k = 3$ (with $n \ne k$,
# so that a swapped index would show) and check that each equals the next.
#
# 1. **Symmetry.** $\langle v_i, v_j\rangle x_i x_j$ is symmetric in $(i, j)$, so the full double
#    sum counts each pair twice plus the diagonal $i = j$ once:
#    $\sum_{i<j} = \tfrac12\sum_i\sum_j - \tfrac12\sum_i \langle v_i, v_i\rangle x_i^2$.
# 2. **Expand the inner product** $\langle v_i, v_j\rangle = \sum_f v_{if}v_{jf}$ and move the
#    sum over $f$ outside: for each $f$ the double sum factorises into
#    $(\sum_i v_{if}x_i)(\sum_j v_{jf}x_j)$.
# 3. **The two factors are the same sum**, so their product is a square.

# %%
xs, _, _, Vs = symbolic.fm_symbols(4, 3)
chain = symbolic.reformulation_chain(xs, Vs)
for label, _ in chain:
    print(label)

# %%
step_differences = [sp.expand(chain[s][1] - chain[s + 1][1]) for s in range(len(chain) - 1)]
step_differences

# %% [markdown]
# All three consecutive differences are exactly `0`: each step is an identity, not an
# approximation.
#
# ### The seed's displayed steps
#
# The algorithms-reference seed prints the same chain, but its two intermediate lines are
# garbled: the first drops $\langle v_i, v_j\rangle$ from the double sum, the second drops
# $x_i x_j$ from the triple sum. Read literally, neither equals the pair sum (its end result is
# right). `symbolic.seed_displayed_steps` writes both lines down; compared with the pair sum:

# %%
[sp.expand(line - chain[0][1]) == 0 for _, line in symbolic.seed_displayed_steps(xs, Vs)]

# %% [markdown]
# The smallest case already shows what goes wrong: with $n = 2$, $k = 1$ the pair sum is
# $v_{11}v_{21}x_1x_2$, while the seed's second line has no $x$ in its first term.

# %%
x2, _, _, V2 = symbolic.fm_symbols(2, 1)
{label: sp.factor(line) for label, line in symbolic.seed_displayed_steps(x2, V2)}

# %% [markdown]
# ## Proof for concrete sizes
#
# For fixed $n$ and $k$ both sides are polynomials in $x_i$ and $v_{if}$; expanding their
# difference gives the zero polynomial exactly when they agree for *all* inputs. We check a range
# of shapes, including $k = 1$, $n < k$ and $n > k$:

# %%
shapes = [(1, 3), (2, 3), (3, 1), (3, 5), (4, 3), (5, 3), (6, 4), (7, 5), (8, 3)]
{shape: symbolic.rendle_identity_difference(*shape) for shape in shapes}

# %% [markdown]
# ## Proof for symbolic $n$
#
# Concrete sizes do not cover every $n$. Both sides are sums over $f$ of per-factor terms, so it
# suffices to fix one $f$ and argue by induction on $n$ with
# $P(n) = \sum_{j=2}^{n}\sum_{i=1}^{j-1} v_{if}v_{jf}x_ix_j$ and
# $R(n) = \tfrac12[(\sum_{i\le n} v_{if}x_i)^2 - \sum_{i\le n} v_{if}^2x_i^2]$:
#
# * **base**: $P(1) = 0 = R(1)$;
# * **pair increment**: peeling $j = n+1$ off the outer sum, $P(n+1) - P(n) = \sum_{i\le n} v_{if}v_{n+1,f}x_ix_{n+1}$;
# * **step**: $R(n+1) - R(n)$, with the last term peeled off both sums and the square expanded, is
#   that same increment.
#
# sympy manipulates the `Sum` objects with $n$ left symbolic; each entry below is
# (left side − right side) of one claim, simplified:

# %%
induction = symbolic.rendle_induction()
induction

# %%
all(difference == 0 for difference in induction.values())

# %% [markdown]
# ## Floating point: both forms agree
#
# The two forms round differently, so we compare them against an error bound instead of
# demanding equality. Each form sums $O(n^2)$ products; a safe bound on the difference is
# $c\,n\,\varepsilon$ times the sum of the absolute values of all the terms, with
# $\varepsilon$ the float64 unit roundoff. We draw random shapes with dense real-valued inputs,
# one-hot inputs and multi-hot inputs, and check the sparse (index) form too.


# %%
def roundoff_bound(x, w0, w, V):
    """c·n·eps × (sum of |terms| of ŷ), per sample: a generous float64 error bound."""
    n = V.shape[0]
    absolute = w0.abs() + x.abs() @ w.abs() + 0.5 * ((x.abs() @ V.abs()) ** 2).sum(-1)
    return 8 * n * torch.finfo(torch.float64).eps * (absolute + 1)


def random_case(n, k, batch, kind, gen):
    w0 = torch.randn((), dtype=torch.float64, generator=gen)
    w = torch.randn(n, dtype=torch.float64, generator=gen)
    V = torch.randn(n, k, dtype=torch.float64, generator=gen)
    if kind == "dense":
        x = torch.randn(batch, n, dtype=torch.float64, generator=gen)
    else:  # one-hot (one non-zero) or multi-hot (several ones)
        nnz = 1 if kind == "one-hot" else min(n, 4)
        x = torch.zeros(batch, n, dtype=torch.float64)
        for row in range(batch):
            x[row, torch.randperm(n, generator=gen)[:nnz]] = 1.0
    return x, w0, w, V


gen = torch.Generator().manual_seed(2024)
agree = []
for trial in range(60):
    n = int(torch.randint(2, 200, (), generator=gen))
    k = int(torch.randint(3, 12, (), generator=gen))
    kind = ("dense", "one-hot", "multi-hot")[trial % 3]
    x, w0, w, V = random_case(n, k, 16, kind, gen)
    naive = fmedu.predict_naive(x, w0, w, V)
    fast = fmedu.predict(x, w0, w, V)
    idx, val = fmedu.dense_to_sparse(x)
    sparse = fmedu.predict_sparse(idx, w0, w, V, val)
    bound = roundoff_bound(x, w0, w, V)
    agree.append(bool(((naive - fast).abs() <= bound).all() and ((naive - sparse).abs() <= bound).all()))
all(agree), len(agree)

# %% [markdown]
# ## Cost: counted exactly
#
# torch's flop counter counts the multiply-adds of every matrix product, which is where both
# forms spend their work. For a batch of $B$ samples the naive form builds $VV^\top$
# ($2n^2k$ flops) and applies its upper triangle to the batch ($2Bn^2$); Rendle's form needs two
# $(B\times n)(n\times k)$ products ($4Bnk$). The counts match these formulas exactly:


# %%
def counted(n, k=16, batch=64):
    x, w0, w, V = random_case(n, k, batch, "dense", torch.Generator().manual_seed(n))
    return cost.matmul_flops(fmedu.predict_naive, x, w0, w, V), cost.matmul_flops(fmedu.predict, x, w0, w, V)


all(counted(n) == (2 * n * n * 16 + 2 * 64 * n * n, 4 * 64 * n * 16) for n in (100, 200, 400, 800))

# %% [markdown]
# Doubling $n$ multiplies the naive count by 4 and Rendle's by 2: quadratic against linear.

# %%
[counted(2 * n)[0] // counted(n)[0] for n in (100, 400)], [counted(2 * n)[1] // counted(n)[1] for n in (100, 400)]

# %% [markdown]
# ## Cost: measured
#
# Now the wall clock (one thread, a batch of 64 dense samples, $k = 16$). On a log-log plot the
# fitted slopes should be close to 2 for the naive form and close to 1 for Rendle's.
# (Timings vary from machine to machine, so this cell's output is not compared by nbval.
# `make figures` writes the same plot to `figures/01_cost_vs_n.png` with its CSV.)

# %% tags=["nbval-ignore-output"]
dense_rows = nb01.measure_dense_cost()
nb01.dense_slopes(dense_rows)

# %%
nb01.plot_dense_cost(dense_rows)
plt.show()

# %% [markdown]
# ## Sparse inputs: the cost follows the non-zeros
#
# For one-hot and multi-hot data almost every $x_i$ is zero. `fmedu.predict_sparse` takes a
# padded index matrix (the non-zero feature indices of each sample, padded with −1) and gathers
# only those rows of $V$, so a sample costs $O(\mathrm{nnz}\cdot k)$ whatever $n$ is. Below,
# a thousandfold larger $n$ ($10^3$ against $10^6$) changes the time by a small factor only
# (gathering rows from a 128 MB $V$ misses the cache more often), where a dense form would pay
# the full factor of 1000; the time grows with nnz (`figures/01_sparse_cost.png`). At small
# nnz a fixed per-call overhead dominates, so the slopes are fitted for nnz ≥ 8.

# %% tags=["nbval-ignore-output"]
sparse_rows = nb01.measure_sparse_cost()
nb01.sparse_slopes(sparse_rows)

# %%
nb01.plot_sparse_cost(sparse_rows)
plt.show()

# %% [markdown]
# The sparse form computes the same numbers as the dense one, which the agreement check above
# already covered (`idx, val = fmedu.dense_to_sparse(x)`).
#
# ## Summary
#
# * The correct chain: symmetry → expand $\langle v_i, v_j\rangle$ → factor per $f$ → square. Each
#   step is exact (sympy `0`); the seed's displayed intermediate lines are not.
# * The identity is proven for concrete shapes and, by induction with sympy `Sum`s, for every $n$.
# * In float64 the naive, fast and sparse forms agree within a roundoff bound.
# * Cost: exact flop counts $2n^2k + 2Bn^2$ against $4Bnk$; measured slopes ≈ 2 and ≈ 1; the
#   sparse form depends on nnz, not $n$.
#
# Next: notebook 02 differentiates the fast form and gets the whole gradient in $O(nk)$.
