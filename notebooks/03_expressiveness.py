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
# # 03 · What $VV^\top$ can express
#
# An FM replaces a free interaction weight $W_{ij}$ for every pair of features by the inner
# product $\langle v_i, v_j\rangle = (VV^\top)_{ij}$. The research notes ask four questions about
# this, and the algorithms-reference seed makes one claim:
#
# 1. Can an FM represent *any* interaction matrix, and what does the diagonal have to do with it?
# 2. If the diagonal is free and we make it dominant, is that a minimum-norm choice? How large
#    must $k$ be?
# 3. For user–item data, where every sample has one user and one item, is the symmetric matrix
#    meaningful at all? How many parameters does each model have?
# 4. Is the model identifiable: can we recover the process that generated the data? Is
#    $\|V\|^2$ the right regulariser, or is $\sum_{u,i}(v_u\cdot v_i)^2$ more natural?
#
# The seed claims: for any positive definite $W$ there is a $V$ with $W = VV^\top$ when $k$ is
# large enough, "so an FM can express any interaction matrix".
#
# Each answer below is marked **proven** (an exact argument whose steps are checked by sympy
# or by exact rational arithmetic) or **observed** (numerical evidence: float64 fits from
# several seeds). The closing table collects them.
#
# **Notation.** As in `design.md`: $n$ features, $k$ factors, $V\in\mathbb R^{n\times k}$ with rows
# $v_i$, $w_0, w$. New here: $W$ a symmetric $n\times n$ interaction matrix, $G = VV^\top$ the Gram
# matrix, and for user–item data $n_u$ users (features $0\ldots n_u-1$), $n_i$ items (features
# $n_u\ldots n-1$), $V_u, V_i$ the two blocks of rows of $V$ and $B = V_uV_i^\top$ the
# $n_u\times n_i$ user–item block. The notes write $M$ for our $W$, $n_f$ for $k$,
# $V^u, V^i$ for $V_u, V_i$, $U$ and $I$ for the sets of users and items; the algorithms-reference
# seed uses $W$, $V$, $k$ as we do.

# %%
import itertools

import matplotlib.pyplot as plt
import sympy as sp
import torch

import fmedu
from fmedu import expressiveness as ex
from fmedu import symbolic
from fmedu.figures import nb03
from fmedu.notebook import setup

setup()
F64 = torch.float64
EPS = torch.finfo(F64).eps

# %% [markdown]
# ## 1 · The FM reads only the off-diagonal
#
# A model with a free symmetric interaction matrix predicts
# $w_0 + \sum_i w_ix_i + \sum_{i<j} W_{ij}x_ix_j$. The diagonal $W_{ii}$ never appears: the
# pair sum has $i<j$. With a symbolic symmetric $W$ ($n = 4$) the pairwise term's derivative with
# respect to every diagonal entry is exactly zero. For an FM, $W = VV^\top$, so the FM uses only
# the off-diagonal of $VV^\top$; its diagonal $\|v_i\|^2$ is a by-product.

# %%
n = 4
W_sym = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"W_{min(i, j) + 1}{max(i, j) + 1}", real=True))
x_sym, _, _, _ = symbolic.fm_symbols(n, 1)
pair_term = sum(W_sym[i, j] * x_sym[i] * x_sym[j] for i in range(n) for j in range(i + 1, n))
[sp.diff(pair_term, W_sym[i, i]) for i in range(n)]

# %% [markdown]
# So the question "which interaction matrices can an FM express?" really is: for which
# symmetric $W$ is there a $V$ with $(VV^\top)_{ij} = W_{ij}$ for all $i\ne j$? Any symmetric matrix
# agreeing with $W$ off the diagonal is a **completion** of $W$. Because every $VV^\top$ is
# positive semidefinite (PSD: $x^\top VV^\top x = \|V^\top x\|^2\ge 0$, the notes' Gram-matrix
# remark), $V$ with $k$ columns exists **iff $W$ has a PSD completion of rank $\le k$**.
#
# ## 2 · A free diagonal makes any off-diagonal expressible
#
# ### The notes' rule, as written, is not enough
#
# The notes say a symmetric matrix is positive definite if each diagonal entry exceeds the sum of
# the off-diagonal entries of its row. Without absolute values this is false:
# $\begin{pmatrix}1&-2\\-2&1\end{pmatrix}$ passes it ($1 > -2$) but has the eigenvalue $-1$.
# `notes_dominance_rule_exact` returns (rule as written holds, true dominance
# $W_{ii} > \sum_{j\ne i}|W_{ij}|$ holds, smallest eigenvalue), exactly:

# %%
ex.notes_dominance_rule_exact(sp.Matrix([[1, -2], [-2, 1]]))

# %% [markdown]
# ### The dominant completion is a Gram matrix: an explicit $V$
#
# With absolute values the idea is right. Set the diagonal to $D_{ii} = \sum_{j\ne i}|W_{ij}|$ and
# call the result $A$. Instead of citing Gershgorin we write $A = VV^\top$ directly: give every pair
# $i<j$ with $W_{ij}\ne 0$ one column $\sqrt{|W_{ij}|}\,(e_i + \operatorname{sign}(W_{ij})\,e_j)$. Its
# outer product puts $|W_{ij}|$ at $(i,i)$ and $(j,j)$ and $W_{ij}$ at $(i,j)$, $(j,i)$; summed over
# pairs this is exactly $A$. `pair_factor` builds it. First for a **symbolic** $3\times 3$ $W$
# (every real $W$ of that size at once):

# %%
a, b, c = sp.symbols("a b c", real=True)
W3 = sp.Matrix([[0, a, b], [a, 0, c], [b, c, 0]])
V3 = ex.pair_factor(W3)
sp.simplify(V3 * V3.T - ex.dominant_completion(W3))

# %% [markdown]
# The argument is the same for every $n$ (a sum of rank-one PSD terms, one per pair). A rational
# $5\times5$ example, exact:

# %%
W5 = sp.Matrix(
    [
        [0, 2, -1, sp.Rational(1, 2), 0],
        [2, 0, 3, 0, -sp.Rational(3, 4)],
        [-1, 3, 0, -4, 1],
        [sp.Rational(1, 2), 0, -4, 0, 2],
        [0, -sp.Rational(3, 4), 1, 2, 0],
    ]
)
V5 = ex.pair_factor(W5)
V5.shape, (V5 * V5.T - ex.dominant_completion(W5)).applyfunc(sp.simplify).is_zero_matrix, ex.offdiag_error(V5, W5)

# %% [markdown]
# That $V$ has one column per pair (here 8). **$k = n$ suffices:** with a strictly dominant diagonal
# (add $\varepsilon = 1/10$) the completion is positive definite, and an exact $LDL^\top$
# factorisation has only positive rational pivots, an exact certificate. $V = L\sqrt D$ then has
# $n$ columns and $VV^\top$ equals the completion exactly:

# %%
A5 = ex.dominant_completion(W5, sp.Rational(1, 10))
V5n = ex.ldl_factor_exact(A5)
V5n.shape, (V5n * V5n.T - A5).applyfunc(sp.simplify).is_zero_matrix, ex.offdiag_error(V5n, W5)

# %% [markdown]
# The same in float64 for a random $W$ with $n = 200$: the dominant completion, factored through
# its eigendecomposition. An eigensolver's backward error is a modest multiple of
# $n\,\varepsilon\,\|A\|_2$; we allow $10\,n\,\varepsilon\,\|A\|_2$.

# %%
gen = torch.Generator().manual_seed(0)
R = torch.randn(200, 200, dtype=F64, generator=gen)
W200 = (R + R.T) / 2
A200 = ex.dominant_completion(W200)
V200 = ex.psd_factor(A200)
bound = 10 * 200 * EPS * torch.linalg.matrix_norm(A200, 2)
V200.shape, bool(ex.offdiag_error(V200, W200) <= bound)

# %% [markdown]
# **Proven:** for every symmetric $W$ there is a $V$ with $n$ columns (indeed $n-1$, see §3)
# whose $VV^\top$ has $W$'s off-diagonal.
#
# ### A zero (or small) diagonal is impossible
#
# Could we keep the diagonal at zero? $\operatorname{trace}(VV^\top) = \sum_{i,f} v_{if}^2$ exactly:

# %%
ex.trace_identity(4, 3)

# %% [markdown]
# So a zero diagonal forces $\sum_{i,f}v_{if}^2 = 0$, i.e. $V = 0$, i.e. $W = 0$ off the diagonal
# too. More precisely each $2\times2$ principal minor of $VV^\top$ is a sum of squares (Lagrange's
# identity), so the diagonal must satisfy $G_{ii}G_{jj}\ge G_{ij}^2$: a large $|W_{ij}|$ forces large
# $\|v_i\|^2\|v_j\|^2$. Exact for $k = 3$:

# %%
_, _, _, Vs = symbolic.fm_symbols(2, 3)
G = Vs * Vs.T
lagrange = sum((Vs[0, f] * Vs[1, g] - Vs[0, g] * Vs[1, f]) ** 2 for f, g in itertools.combinations(range(3), 2))
sp.expand(G[0, 0] * G[1, 1] - G[0, 1] ** 2 - lagrange)

# %% [markdown]
# ### Dominance is sufficient, not necessary
#
# The notes worry that a Gram matrix would have to satisfy $\|v_i\|^2 > \sum_j |v_i\cdot v_j|$, which
# "sounds impossible". It need not: dominance is one sufficient way to pick the diagonal, and most
# Gram matrices are not dominant. $V = \mathbf 1\in\mathbb R^{4\times1}$ gives $VV^\top = \mathbf 1\mathbf 1^\top$,
# PSD (smallest eigenvalue 0) but far from dominant ($1 < 3$):

# %%
ex.notes_dominance_rule_exact(sp.ones(4, 4))

# %% [markdown]
# ### The algorithms-reference seed's claim
#
# The seed argues: every positive definite $W$ is $VV^\top$ for $k$ large enough, hence an FM can
# express any interaction matrix. The first half is true ($k = n$ by Cholesky; for a positive
# definite $W$ also $k\ge n$ is needed, since $\operatorname{rank}VV^\top\le k$). The "hence" does not
# follow: an interaction matrix need not be positive definite. $\begin{pmatrix}0&1\\1&0\end{pmatrix}$
# has trace $0$, so by the trace identity it equals $VV^\top$ only for $V = 0$, which it is not:
# it is **not** $VV^\top$ for any $k$. What is true, and what the FM needs, is the off-diagonal
# statement: here $V = (1, 1)^\top$ with $k = 1$.

# %%
W2 = sp.Matrix([[0, 1], [1, 0]])
V2 = sp.Matrix([[1], [1]])
W2.trace(), min(W2.eigenvals()), ex.offdiag_error(V2, W2)

# %% [markdown]
# ### Is the dominant completion a minimum-norm solution?
#
# The notes ask this. The FM's usual regulariser is $\|V\|_F^2 = \operatorname{trace}(VV^\top)$, so
# the question is which PSD completion has the smallest trace. The dominant one is in general
# **not** it. For $W = \mathbf 1\mathbf 1^\top - I$ ($n = 6$, every pair $+1$) the dominant
# completion has trace $n(n-1) = 30$, while $A = \mathbf 1\mathbf 1^\top$ is a completion with trace
# $n = 6$ and rank 1. And $6$ is the minimum: $Y = \frac{n}{n-1}(I - \mathbf 1\mathbf 1^\top/n)$ is PSD
# with unit diagonal, and for any PSD completion $A$, $0\le\langle A, Y\rangle
# = \operatorname{trace}A + \sum_{i\ne j}W_{ij}Y_{ij}$, so
# $\operatorname{trace}A\ge -\sum_{i\ne j}W_{ij}Y_{ij}$. Exact:

# %%
n = 6
W_plus = ex.ones_offdiag(n, 1)
Y = sp.Rational(n, n - 1) * (sp.eye(n) - sp.ones(n, n) / n)
certificate = -sum(W_plus[i, j] * Y[i, j] for i in range(n) for j in range(n) if i != j)
(
    ex.dominant_completion(W_plus).trace(),
    sp.ones(n, n).trace(),
    certificate,
    min(Y.eigenvals()) >= 0,
    all(Y[i, i] == 1 for i in range(n)),
)

# %% [markdown]
# **Proven:** the dominant completion is not minimum-norm in general; finding the minimum-trace
# completion is a semidefinite program (the certificate above is its dual).
#
# ## 3 · How large must $k$ be?
#
# Let $k^*(W)$ be the smallest $k$ for which some $V\in\mathbb R^{n\times k}$ matches $W$ off the
# diagonal, i.e. the smallest rank of a PSD completion. What we can prove:
#
# * **Upper bound $k^*\le n-1$** ($n\ge2$). Let $W_0$ be $W$ with zero diagonal. Then
#   $A = W_0 - \lambda_{\min}(W_0)I$ is a PSD completion (its diagonal $-\lambda_{\min}\ge0$ since
#   $\operatorname{trace}W_0 = 0$) with the eigenvalue $0$, so $\operatorname{rank}A\le n-1$.
# * **Block lower bound.** For disjoint index sets $I, J$ every entry of $W_{IJ}$ is off-diagonal, so
#   $W_{IJ} = V_IV_J^\top$, a product through $k$ columns: $k^*\ge\operatorname{rank}W_{IJ}$.
# * **A rank lower bound for negative off-diagonals.** If $W = -(\mathbf 1\mathbf 1^\top - I)$ off
#   the diagonal, every completion is $A = \operatorname{diag}(a+1) - \mathbf 1\mathbf 1^\top$ (checked
#   symbolically below). PSD forces $a_i\ge0$, so $\operatorname{diag}(a+1)$ has rank $n$, and
#   $n\le\operatorname{rank}A + \operatorname{rank}\mathbf 1\mathbf 1^\top$ gives $k^*\ge n-1$.
# * **Almost every $W$ needs many columns.** $V$ has $nk$ entries, but $VQ$ gives the same $VV^\top$
#   for every orthogonal $Q$, so the reachable off-diagonals form the image of a space of dimension
#   $nk - k(k-1)/2$. Below $n(n-1)/2$ that image has measure zero (Sard), so for almost every real $W$,
#   $k^*\ge$ `dimension_count_k(n)`.
#
# The shift completion in float64 ($n = 200$, the $W$ from above): rank $n-1$, matching $W$'s
# off-diagonal within the eigensolver bound.

# %%
A_shift = ex.shift_completion(W200)
V_shift = ex.psd_factor(A_shift)
V_shift.shape[1], bool(ex.offdiag_error(V_shift, W200) <= 10 * 200 * EPS * torch.linalg.matrix_norm(A_shift, 2))

# %% [markdown]
# The completion identity of the rank lower bound, with a symbolic diagonal $a$, and the exact
# factor with $n-1$ columns from the shift completion $nI - \mathbf 1\mathbf 1^\top$ ($n = 6$; its
# $LDL^\top$ has one zero pivot, which we drop):

# %%
a_sym = sp.symbols("a_1:7", real=True)
W_minus = ex.ones_offdiag(6, -1)
completion = W_minus + sp.diag(*a_sym)
V_minus = ex.ldl_factor_exact(6 * sp.eye(6) - sp.ones(6, 6))
(
    (completion - (sp.diag(*[ai + 1 for ai in a_sym]) - sp.ones(6, 6))).is_zero_matrix,
    V_minus.shape,
    ex.offdiag_error(V_minus, W_minus),
)

# %% [markdown]
# So $k^*\big(-(\mathbf 1\mathbf 1^\top - I)\big) = n-1$ exactly, while $k^*(\mathbf 1\mathbf 1^\top - I) = 1$:
# the sign pattern, not the size of the entries, decides. The dimension count for a few $n$:

# %%
{n: ex.dimension_count_k(n) for n in (4, 10, 20, 50, 100, 1000)}

# %% [markdown]
# For $n = 1000$ almost every $W$ needs $k\ge 956$. A small $k$ works only for special
# off-diagonals, such as those of a low-rank $V_0V_0^\top$.
#
# ### Numerical exploration
#
# Four off-diagonals with $n = 10$, each with its proven bounds
# (`k_examples`): planted $V_0V_0^\top$ with integer $V_0\in\mathbb Z^{10\times3}$ (block lower bound
# 3, upper bound 3 from $V_0$ itself: $k^* = 3$); all $+1$ ($k^*=1$); all $-1$ ($k^* = 9$); random
# $\pm1$ (block lower bound, upper $n-1$):

# %%
examples = ex.k_examples(10)
{name: (lower, upper) for name, (_, lower, upper) in examples.items()}

# %% [markdown]
# For each $k = 1\ldots10$ we fit $V\in\mathbb R^{10\times k}$ to the off-diagonal by least squares
# (L-BFGS, best of four random starts) and record the relative error
# $\|\mathrm{off}(VV^\top - W)\|_F/\|\mathrm{off}(W)\|_F$. This is evidence, not proof: a fit can
# miss a solution that exists.

# %%
scan = ex.k_scan_rows()
nb03.plot_k_scan(scan)
plt.show()

# %% [markdown]
# The smallest $k$ whose best fit reaches relative error $10^{-8}$, per example:

# %%
observed = ex.observed_k(scan)
observed

# %% [markdown]
# Where the bounds meet, the fits find exactly the proven $k^*$; for random signs the observed value
# lies within the proven bounds (above the dimension count, which for $n = 10$ is 6 but applies to
# almost every real $W$, not to $\pm1$ matrices):

# %%
(
    all(observed[name] == lower for name, (_, lower, upper) in examples.items() if lower == upper),
    examples["random ±1"][1] <= observed["random ±1"] <= examples["random ±1"][2],
)

# %% [markdown]
# ## 4 · User–item data: only one block matters
#
# When every sample has exactly one user $u$ and one item $i$, $x = e_u + e_{n_u+i}$ and the pair
# sum has a single term, $W_{u,\,n_u+i}$. With a symbolic symmetric $W$ ($n_u = 2$, $n_i = 3$), for
# every pair:

# %%
n_u, n_i = 2, 3
n = n_u + n_i
W_ui = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"W_{min(i, j)}_{max(i, j)}", real=True))


def one_hot_pair(u, i):
    return [1 if f in (u, n_u + i) else 0 for f in range(n)]


all(
    sp.expand(sum(W_ui[p, q] * x[p] * x[q] for p in range(n) for q in range(p + 1, n)) - W_ui[u, n_u + i]) == 0
    for u in range(n_u)
    for i in range(n_i)
    for x in [one_hot_pair(u, i)]
)

# %% [markdown]
# So the user–user block, the item–item block and the diagonal are all free; only
# $B = W_{\text{users},\,\text{items}}$ is fixed. The FM's user–item block is $V_uV_i^\top$, an
# unconstrained product of two *different* matrices: no symmetry, no PSD condition. Any $B$ of
# rank $r$ factors with $k = r$, and $k\ge r$ is necessary ($\operatorname{rank}V_uV_i^\top\le k$).
# **Proven:** for user–item data $k^* = \operatorname{rank}B$.
#
# Exactly, with a rational $4\times5$ block of rank 2 and the rank factorisation $B = CF$ (pivot
# columns times the reduced row echelon form, no square roots): we compare the FM's prediction,
# computed from its definition with symbolic one-hot $x$, with the full model's on all 20 pairs.

# %%
n_u, n_i = 4, 5
n = n_u + n_i
B_exact = sp.Matrix([[1, 2], [-1, sp.Rational(1, 3)], [0, 3], [2, -1]]) * sp.Matrix(
    [[1, 0, -2, sp.Rational(1, 2), 3], [2, 1, 0, -1, sp.Rational(2, 5)]]
)
V_u, V_i = ex.rank_factor_exact(B_exact)
V_exact = V_u.col_join(V_i)
w0_exact = sp.Rational(1, 7)
w_exact = sp.Matrix([sp.Rational(j - 4, 3) for j in range(n)])


def fm_exact(x):
    x = sp.Matrix(x)
    return w0_exact + (w_exact.T * x)[0] + symbolic.pairwise_double_sum(x, V_exact)


def full_exact(u, i):
    return w0_exact + w_exact[u] + w_exact[n_u + i] + B_exact[u, i]


(
    V_exact.shape,
    B_exact.rank(),
    all(
        fm_exact([1 if f in (u, n_u + i) else 0 for f in range(n)]) == full_exact(u, i)
        for u in range(n_u)
        for i in range(n_i)
    ),
)

# %% [markdown]
# In float64, with `fmedu.predict_sparse` on the index batch `[u, n_u + i]` for all pairs: a random
# rank-5 block with $n_u = 30$, $n_i = 40$, factored by the SVD ($V_u = U\sqrt\Sigma$,
# $V_i = W\sqrt\Sigma$, so $k = 5$). The error bound is $64\max(n_u,n_i)\,\varepsilon$ times the
# size of the terms.

# %%
gen = torch.Generator().manual_seed(5)
n_u, n_i, r = 30, 40, 5
B = torch.randn(n_u, r, dtype=F64, generator=gen) @ torch.randn(r, n_i, dtype=F64, generator=gen)
w0 = torch.randn((), dtype=F64, generator=gen)
w = torch.randn(n_u + n_i, dtype=F64, generator=gen)
V_u, V_i = ex.svd_factor(B)
V = torch.cat([V_u, V_i])
idx = ex.user_item_idx(n_u, n_i)
err = (fmedu.predict_sparse(idx, w0, w, V) - ex.full_interaction_predict(w0, w, B)).abs().max()
scale = w0.abs() + 2 * w.abs().max() + torch.linalg.matrix_norm(B, 2)
tuple(V.shape), idx.shape[0], bool(err <= 64 * max(n_u, n_i) * EPS * scale)

# %% [markdown]
# ### Parameter counts
#
# On user–item data the full model has $1 + n_u + n_i + n_un_i$ effective parameters (the notes'
# count), the FM $1 + n + nk$ with $n = n_u + n_i$. Exact integers for a small case, MovieLens 100k
# sizes ($943$ users, $1682$ movies, $k = 20$) and a large catalogue:

# %%
[ex.param_counts(*sizes) for sizes in ((10, 12, 3), (943, 1682, 20), (100_000, 10_000, 64))]

# %% [markdown]
# The FM is smaller exactly when $nk < n_un_i$; at MovieLens sizes by a factor of about 29. It can
# match the full model only for blocks of rank $\le k$.
#
# ## 5 · Identifiability
#
# ### Rotations: $V$ and $VQ$ give identical predictions
#
# For orthogonal $Q$, $(VQ)(VQ)^\top = VQQ^\top V^\top = VV^\top$. We take an exactly orthogonal
# rational $Q$ from the Cayley transform $Q = (I-S)(I+S)^{-1}$ of a skew-symmetric $S$, and a fully
# symbolic $V$ ($n = 4$, $k = 3$): $Q^\top Q = I$, the Gram matrices agree, Rendle's pairwise term
# agrees for symbolic $x$, and both regularisers are unchanged ($n_u = 2$ users, 2 items).

# %%
S = sp.Matrix([[0, 1, 2], [-1, 0, sp.Rational(1, 3)], [-2, -sp.Rational(1, 3), 0]])
Q = ex.cayley_exact(S)
x_sym, _, _, V_sym = symbolic.fm_symbols(4, 3)
VQ = V_sym * Q
Q, (Q.T * Q - sp.eye(3)).is_zero_matrix

# %%
(
    sp.expand(VQ * VQ.T - V_sym * V_sym.T).is_zero_matrix,
    [
        sp.expand(e)
        for e in (
            symbolic.pairwise_rendle(x_sym, VQ) - symbolic.pairwise_rendle(x_sym, V_sym),
            ex.frobenius_sq(VQ) - ex.frobenius_sq(V_sym),
            ex.pair_interaction_sq(VQ, 2) - ex.pair_interaction_sq(V_sym, 2),
        )
    ],
)

# %% [markdown]
# In float64 with a random orthogonal $Q$ ($n = 50$, $k = 8$, dense inputs):

# %%
gen = torch.Generator().manual_seed(7)
x = torch.randn(32, 50, dtype=F64, generator=gen)
w0, w, V = (
    torch.tensor(0.3, dtype=F64),
    torch.randn(50, dtype=F64, generator=gen),
    torch.randn(50, 8, dtype=F64, generator=gen),
)
Qf = ex.random_orthogonal(8, gen)
diff = (fmedu.predict(x, w0, w, V @ Qf) - fmedu.predict(x, w0, w, V)).abs().max()
bound = 16 * 50 * EPS * (1 + 0.5 * ((x.abs() @ V.abs()) ** 2).sum(-1).max())
bool(diff <= bound)

# %% [markdown]
# ### The two regularisers are different functions
#
# Both $\|V\|_F^2$ and the notes' $\sum_{u,i}(v_u\cdot v_i)^2 = \|V_uV_i^\top\|_F^2 = \|B\|_F^2$ are
# rotation-invariant, but neither determines the other. One user and one item, $k = 2$, exact:
# equal $\|V\|^2$ with different $\sum(v_u\cdot v_i)^2$, then the reverse.

# %%
pairs_of_models = {
    "same ‖V‖², different Σ(v_u·v_i)²": (sp.Matrix([[1, 0], [1, 0]]), sp.Matrix([[1, 0], [0, 1]])),
    "same Σ(v_u·v_i)², different ‖V‖²": (sp.Matrix([[1, 0], [1, 0]]), sp.Matrix([[2, 0], [sp.Rational(1, 2), 0]])),
}
{name: [(ex.frobenius_sq(M), ex.pair_interaction_sq(M, 1)) for M in models] for name, models in pairs_of_models.items()}

# %% [markdown]
# The notes' regulariser depends on the predictions only (it is $\|B\|_F^2$); $\|V\|^2$ also depends on
# *how* $B$ is factored. For user–item data there are many more factorisations than rotations:
# for any invertible $A$, $(V_uA)(V_iA^{-\top})^\top = V_uV_i^\top$. Exact, with a non-orthogonal
# rational $A$:

# %%
Vu_s, Vi_s = V_sym[:2, :], V_sym[2:, :]
A_gauge = sp.Matrix([[2, 1, 0], [0, 1, 0], [sp.Rational(1, 3), 0, 1]])
sp.expand((Vu_s * A_gauge) * (Vi_s * A_gauge.inv().T).T - Vu_s * Vi_s.T).is_zero_matrix

# %% [markdown]
# Along such a family $\|V\|^2$ changes while the predictions and $\|B\|_F^2$ do not. Its minimum is
# $2\|B\|_*$ (the nuclear norm), reached by the balanced SVD factor: for any $B = XY^\top$ with
# $B = U\Sigma W^\top$, $\|B\|_* = \operatorname{trace}(U^\top XY^\top W) = \langle X^\top U, Y^\top W\rangle
# \le\|X\|_F\|Y\|_F\le\tfrac12(\|X\|_F^2 + \|Y\|_F^2)$ (Cauchy–Schwarz, orthonormal columns, AM–GM),
# with equality at $X = U\sqrt\Sigma$, $Y = W\sqrt\Sigma$. So at its best factorisation,
# $\lambda\|V\|^2$ penalises $2\lambda\|B\|_*$, a low-rank-promoting penalty, while the notes'
# regulariser penalises $\|B\|_F^2$, which does not favour low rank. Along $V_uA_t, V_iA_t^{-\top}$
# with $A_t = \operatorname{diag}(t, 1/t, 1)$:

# %%
gauge = ex.gauge_rows()
nb03.plot_regularisers(gauge)
plt.show()

# %%
balanced = min(gauge, key=lambda row: abs(row["t"] - 1))
(
    all(r["frobenius_sq"] >= r["two_nuclear_norm"] * (1 - 1e-12) for r in gauge),
    abs(balanced["frobenius_sq"] - balanced["two_nuclear_norm"]) <= 1e-12 * balanced["two_nuclear_norm"],
    max(r["max_B_change"] for r in gauge) <= 1e-12 * balanced["two_nuclear_norm"],
    max(r["pair_interaction_sq"] for r in gauge) - min(r["pair_interaction_sq"] for r in gauge)
    <= 1e-10 * balanced["pair_interaction_sq"],
)

# %% [markdown]
# ### Translations: the linear terms absorb part of the interactions
#
# There is one more symmetry, and it matters in practice. Shift every user vector by $c$ and every
# item vector by $d$: $(v_u+c)\cdot(v_i+d) = v_u\cdot v_i + v_u\cdot d + c\cdot v_i + c\cdot d$. The
# extra terms depend on the user alone, the item alone, or neither, so $w_u - v_u\cdot d$,
# $w_{n_u+i} - c\cdot v_i$, $w_0 - c\cdot d$ absorb them. Exact, symbolic, for all $2\times2$ pairs:

# %%
n_u = n_i = 2
x_s, w0_s, w_s, V_s = symbolic.fm_symbols(4, 3)
c_s = sp.Matrix([sp.symbols("c_1:4", real=True)])
d_s = sp.Matrix([sp.symbols("d_1:4", real=True)])
V_t = V_s.copy()
w_t = w_s.copy()
for u in range(n_u):
    V_t[u, :] = V_s[u, :] + c_s
    w_t[u] = w_s[u] - (V_s[u, :] * d_s.T)[0]
for i in range(n_i):
    V_t[n_u + i, :] = V_s[n_u + i, :] + d_s
    w_t[n_u + i] = w_s[n_u + i] - (c_s * V_s[n_u + i, :].T)[0]
w0_t = w0_s - (c_s * d_s.T)[0]


def fm_sym(x, w0_, w_, V_):
    x = sp.Matrix(x)
    return w0_ + (w_.T * x)[0] + symbolic.pairwise_double_sum(x, V_)


all(
    sp.expand(fm_sym(x, w0_t, w_t, V_t) - fm_sym(x, w0_s, w_s, V_s)) == 0
    for u in range(n_u)
    for i in range(n_i)
    for x in [[1 if f in (u, n_u + i) else 0 for f in range(4)]]
)

# %% [markdown]
# So $B$ itself is **not** identifiable from user–item predictions: it changes by $a\mathbf 1^\top +
# \mathbf 1b^\top$ + const. What is identifiable is everything the prediction table
# $Y_{ui} = w_0 + w_u + w_{n_u+i} + B_{ui}$ determines, in particular the doubly-centred block
# $J B J$ ($J = I - \mathbf 1\mathbf 1^\top/m$ removes row and column constants): $JYJ = JBJ$ exactly.

# %%
Bs = sp.Matrix(3, 4, lambda u, i: sp.Symbol(f"B_{u}{i}", real=True))
ws = sp.symbols("w_0:8", real=True)
Y_table = sp.Matrix(3, 4, lambda u, i: ws[0] + ws[1 + u] + ws[4 + i] + Bs[u, i])
sp.simplify(ex.double_centre(Y_table) - ex.double_centre(Bs))

# %% [markdown]
# The same happens for general one-hot data whenever **every sample has the same number $d$ of
# non-zeros**: $V\mapsto V + \mathbf 1c^\top$ changes the pairwise term by
# $(d-1)\sum_{a\in S}v_a\cdot c + \binom d2\|c\|^2$, absorbed by $w_a - (d-1)v_a\cdot c$ and
# $w_0 - \binom d2\|c\|^2$. Exact for $n = 5$, every support of size $d = 2$ and $d = 3$:


# %%
def translated(d):
    x_, w0_, w_, V_ = symbolic.fm_symbols(5, 3)
    Vc = V_ + sp.ones(5, 1) * c_s
    wc = sp.Matrix([w_[a] - (d - 1) * (V_[a, :] * c_s.T)[0] for a in range(5)])
    w0c = w0_ - sp.binomial(d, 2) * (c_s * c_s.T)[0]
    return all(
        sp.expand(fm_sym(x, w0c, wc, Vc) - fm_sym(x, w0_, w_, V_)) == 0
        for S in itertools.combinations(range(5), d)
        for x in [[1 if f in S else 0 for f in range(5)]]
    )


translated(2), translated(3)

# %% [markdown]
# The correction depends on $d$, so data mixing samples with different numbers of non-zeros breaks
# this symmetry, leaving only the rotations. If the off-diagonal of a rank-$k$ $G = VV^\top$ is known,
# its diagonal is pinned whenever, for each $i$, some $k\times k$ block $G_{IJ}$ off the diagonal
# ($i\notin I\cup J$, $I\cap J = \emptyset$) is invertible: the $(k+1)$-minor on $\{i\}\cup I$,
# $\{i\}\cup J$ vanishes and is affine in $G_{ii}$ with coefficient $\det G_{IJ}\ne0$. Then $G$ is
# determined and $V$ is determined up to $V\mapsto VQ$. Exact for an integer $V_0$ with $n = 7$,
# $k = 3$:

# %%
_, V0_int = ex.planted_offdiag(7, 3, seed=1)
ex.diagonal_pinned_exact(V0_int * V0_int.T, 3)

# %% [markdown]
# ### What a fit recovers from a planted FM
#
# We plant an FM ($k = 3$), compute its noiseless predictions, fit a fresh FM ($k = 3$, float64,
# full-batch L-BFGS, seeds 0, 1, 2) and compare, in three data settings:
#
# * **user-item**: all $10\times12$ user–item pairs;
# * **pairs**: all pairs of $n = 10$ features (every sample has $d = 2$);
# * **pairs+triples**: all pairs and all triples (samples with $d = 2$ and $d = 3$).
#
# Quantities: the predictions; $V$ raw and after the best orthogonal alignment (orthogonal
# Procrustes); $w$; for user–item also $B$, $JBJ$ and the balanced SVD factor of $JBJ$ after
# Procrustes. Threshold for "recovered": max abs error $\le10^{-6}$.

# %%
recovery = nb03.recovery_rows()
nb03.plot_recovery(recovery)
plt.show()


# %%
def recovered(setting, quantity, threshold=1e-6):
    """True if every seed recovered the quantity, False if none did (None if mixed)."""
    hits = {r["max_abs_error"] <= threshold for r in recovery if r["setting"] == setting and r["quantity"] == quantity}
    return hits.pop() if len(hits) == 1 else None


{
    setting: {
        q: recovered(setting, q) for q in dict.fromkeys(r["quantity"] for r in recovery if r["setting"] == setting)
    }
    for setting in nb03.RECOVERY_SETTINGS
}

# %% [markdown]
# **Observed**, consistently with the proofs: every fit reproduces the predictions. With user–item
# data, $B$, $w$ and $V$ (even after rotation) are not recovered; $JBJ$ and its balanced factor up to
# rotation are. With pairs only (fixed $d$), $V$ is not recovered even up to rotation (the
# translation symmetry). Once samples of different sizes pin the interactions, $w$ and $V$ up to a
# rotation are recovered, and raw $V$ still is not.
#
# ## Summary: the notes' questions
#
# | question (notes / seed) | answer | status |
# |---|---|---|
# | Can an FM represent any interaction matrix? | Yes, off the diagonal (all it uses): for every symmetric $W$ some $V$ matches it there. Not as $W = VV^\top$ itself: a trace-zero $W\ne0$ is never $VV^\top$ | proven (explicit pair factor, symbolic; exact $LDL^\top$; trace identity) |
# | Can the diagonal be made dominant to get a PD matrix? | Yes with absolute values, $D_{ii} > \sum_{j\ne i}\lvert W_{ij}\rvert$; the rule as written (no absolute values) fails on $\begin{psmallmatrix}1&-2\\-2&1\end{psmallmatrix}$ | proven (exact) |
# | Seed: "any PD $W = VV^\top$ for large $k$, so an FM expresses any interaction matrix" | First half true ($k = n$ needed and enough); conclusion needs the free diagonal; trace-zero $W$ is no $VV^\top$ | proven (exact) |
# | Does a Gram matrix have to be diagonally dominant ("sounds impossible")? | No: dominance is sufficient, not necessary ($\mathbf 1\mathbf 1^\top$) | proven (exact) |
# | Is the dominant completion minimum-norm? | No: for $\mathbf 1\mathbf 1^\top - I$ trace $n(n-1)$ vs the minimum $n$ (dual certificate) | proven (exact) |
# | How large must $k$ be? | $k^*\le n-1$; $k^*\ge$ rank of any off-diagonal block; $k^* = n-1$ for all $-1$, $1$ for all $+1$, $r$ for planted rank $r$ (with a rank-$r$ block); almost every $W$ needs $k\ge$ `dimension_count_k(n)` | proven (exact ranks, symbolic identity; Sard for the count) |
# | ... on examples | fits find $k^*$ = 3, 1, 9 for those examples and 7 for random $\pm1$ ($n=10$; proven range 5–9) | observed |
# | User–item: is the symmetric matrix meaningful? | Only the block $B$ enters; $V_uV_i^\top$ has no symmetry/PSD constraint; $k^* = \operatorname{rank}B$; FM with $k = r$ reproduces the full model on all pairs | proven (symbolic, exact rational; float64 within bound) |
# | Parameter counts | full $1+n_u+n_i+n_un_i$ vs FM $1+n+nk$ (MovieLens: 1,588,752 vs 55,126) | exact integers |
# | Identifiable? | $V$ only up to symmetries: rotations always; for user–item any $A\in GL(k)$ and translations (so not even $B$, only $JBJ$); translations whenever every sample has the same nnz; with mixed nnz and pinned interactions, $V$ up to rotation | proven (symbolic) |
# | ... by fitting | predictions always; $JBJ$ (user–item); $V$ up to rotation and $w$ only with mixed sample sizes | observed |
# | $\lVert V\rVert^2$ vs $\sum_{u,i}(v_u\cdot v_i)^2$ | both rotation-invariant, neither determines the other; the latter is $\lVert B\rVert_F^2$; the former's minimum over factorisations is $2\lVert B\rVert_*$ (low-rank promoting) | proven (exact examples; short inequality proof), checked in float64 |
