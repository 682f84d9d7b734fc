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
# # 03 · What an FM can express
#
# A model with a free weight for every pair of features needs $n(n-1)/2$ interaction weights; an
# FM replaces them by inner products $\langle v_i, v_j\rangle$ of $n$ vectors with $k$ entries each.
# That is what makes FMs trainable on sparse data, but it is a restriction, and a practitioner
# should know exactly which one. Which tables of pairwise effects can an FM represent? How large
# must $k$ be before nothing is lost? And after training, which of the learned numbers mean
# something: is $V$ determined by the data, and does the usual penalty $\|V\|^2$ penalise the
# model's predictions or only an arbitrary choice among equivalent parameters? This chapter
# answers these questions with proofs whose every step is checked exactly, and corrects two
# claims of the source material on the way.
#
# Symbols follow the course [notation](../README.md#notation) table; the letters this chapter adds
# are listed below.

# %% [markdown]
# ## What you will learn
#
# * Why an FM only ever uses the **off-diagonal** of $VV^\top$, why with the diagonal left free every
#   symmetric interaction matrix $W$ is reachable, and why "every $W$ is some $VV^\top$" is false
#   (erratum E8).
# * How to choose the free diagonal: diagonal dominance needs absolute values (erratum E7), is
#   sufficient but not necessary, and can cost up to $n-1$ times more $\|V\|^2$ than needed.
# * How many columns $k$ are needed: always $k\le n-1$, lower bounds from blocks of $W$, and what
#   least-squares fits find.
#
# User–item data (exactly which tables a $k$-column FM produces) and what the predictions determine
# are the subject of [chapter 04](04_user_item.ipynb).
#
# ## What you need
#
# * Chapter 01: the FM $\hat y(x) = w_0 + \sum_i w_ix_i + \sum_{i<j}\langle v_i, v_j\rangle x_ix_j$,
#   with $v_i$ the $i$-th row of $V\in\mathbb R^{n\times k}$. Chapter 02 is not needed.
# * Rank: $\operatorname{rank}(XY)\le\min(\operatorname{rank}X, \operatorname{rank}Y)$ and
#   $\operatorname{rank}(X+Y)\le\operatorname{rank}X + \operatorname{rank}Y$.
# * A symmetric matrix $M$ is **positive semidefinite** (PSD) if $z^\top Mz\ge0$ for every vector $z$,
#   equivalently if all its eigenvalues are $\ge 0$; **positive definite** (PD) if $z^\top Mz>0$ for
#   every $z\ne0$ [4, ch. 7].
#
# **Symbols of this chapter** ($e_i$ is the $i$-th unit vector, $\mathbf 1$ the all-ones vector):
#
# | symbol | meaning |
# |---|---|
# | $W$ | the **interaction matrix**: symmetric $n\times n$, $W_{ij}$ the weight of the pair $i\ne j$; its diagonal is never used and is stored as 0 |
# | $M$ | any symmetric matrix in a general statement ("$M$ is PSD") |
# | $\Delta = \operatorname{diag}(\delta_1,\dots,\delta_n)$ | a diagonal we choose; $W+\Delta$ is a **completion** of $W$ |
# | $k^*$ | the smallest $k$ for which some $V\in\mathbb R^{n\times k}$ matches $W$ off the diagonal |
# | $L$, $D$ | the factors of $M = LDL^\top$: $L$ unit lower-triangular, $D$ diagonal (the pivots) |
# | $n_u$, $n_i$; $V_u$, $V_i$ | numbers of users and of items; the user rows and the item rows of $V$ |
# | $B$ | the $n_u\times n_i$ **user–item block**, $B_{ui} = W_{u,\,n_u+i}$ |
# | $a$, $b$ | a row effect $a\in\mathbb R^{n_u}$ and a column effect $b\in\mathbb R^{n_i}$ |
# | $J$ | the centring matrix $I - \mathbf 1\mathbf 1^\top/m$ of whatever size $m$ fits |
# | $\hat Y$ | the table of predictions, $\hat Y_{ui} = \hat y(e_u + e_{n_u+i})$ |
# | $Q$; $R$ | an orthogonal $k\times k$ matrix; an invertible one |
# | $s$, $t$ | shifts in $\mathbb R^k$ of the user vectors and of the item vectors |
#
# The research notes [3] write $M$ for our $W$, $n_f$ for $k$, $V^u, V^i$ for $V_u, V_i$. The SystemDS
# reference page [2] writes $W$ both for the linear weights (our $w$) and, in its paragraph on
# expressiveness, for the interaction matrix (our $W$).

# %%
import matplotlib.pyplot as plt
import sympy as sp

from fmedu import expressiveness as ex
from fmedu import symbolic
from fmedu import user_item as ui
from fmedu.exercises import EXERCISES
from fmedu.figures import nb03
from fmedu.notebook import setup

setup()

# %% [markdown]
# ## 1 · A tiny example: three users, four movies
#
# Three users (Ann, Ben, Cleo) rate four movies. Each rating is one sample with two one-hot
# features: $x = e_u + e_{3+i}$ for user $u\in\{0,1,2\}$ and movie $i\in\{0,\dots,3\}$, so $n = 7$.
# Here is an FM with $k = 1$: one number per user ("how much they like action") and one per movie
# ("how much action it has"), plus linear weights.

# %%
n_u, n_i = 3, 4
V_tiny = sp.Matrix([1, 2, -1, 2, 0, 1, -1])  # rows: Ann, Ben, Cleo, movie 0, 1, 2, 3; k = 1
w_tiny = sp.Matrix([0, 1, 3, 1, -2, 0, 2])
w0_tiny = 0
W_tiny = ex.offdiag(V_tiny * V_tiny.T)  # the interaction matrix this FM induces
W_tiny

# %% [markdown]
# $W_{ij} = \langle v_i, v_j\rangle$ for every pair, including user–user pairs like
# $W_{01} = 2$ (Ann–Ben). Now the 12 predictions, each computed from the FM's definition at its
# one-hot $x$, against $w_0 + w_u + w_{3+i} + W_{u,3+i}$:

# %%
Y_tiny = ui.user_item_table_exact(w0_tiny, w_tiny, V_tiny, n_u)
same = all(Y_tiny[u, i] == w0_tiny + w_tiny[u] + w_tiny[3 + i] + W_tiny[u, 3 + i] for u in range(3) for i in range(4))
Y_tiny, same

# %% [markdown]
# So only the $3\times4$ user–movie block of $W$ ever enters a prediction: no sample contains two
# users, so $W_{01}$ is multiplied by $x_0x_1 = 0$ every time.
#
# Now the other direction: **a $W$ you want.** Since only the user–movie block is ever used, a
# wish is a $3\times4$ table. Suppose a model with a free weight for every user–movie pair, and no
# linear terms, has learned the weights $B_{\text{want}}$ below, so that it predicts exactly this table:

# %%
B_want = sp.Matrix([[3, -2, 1, 1], [6, -1, 3, 1], [2, 1, 2, 6]])
block = V_tiny[:3, :] * V_tiny[3:, :].T  # the FM's user–movie block V_u V_iᵀ
B_want.rank(), block.rank(), Y_tiny == B_want

# %% [markdown]
# $B_{\text{want}}$ has rank 3, and the FM's user–movie block $V_uV_i^\top$ has rank 1, as it must
# with $k = 1$. Yet the FM above predicts exactly $B_{\text{want}}$: a rank-1 interaction block
# produced a rank-3 table. The linear terms add $w_u$ to a whole row and $w_{3+i}$ to a whole column,
# and such additions carry rank. Chapter 04 turns this into an exact criterion. Before that, the
# general questions this example raises:
#
# 1. Which interaction matrices $W$ can $VV^\top$ reach at all, given that the FM ignores parts of it? (§2)
# 2. How should its unused diagonal be chosen? (§3)
# 3. How large must $k$ be? (§4)
# 4. For user–item data, exactly which tables can a $k$-column FM produce? (chapter 04)
# 5. Which parameters do the predictions determine, and what does that mean for regularisation? (chapter 04)

# %% [markdown]
# ## 2 · The FM reads only the off-diagonal
#
# Write the model with a free symmetric interaction matrix as
# $\hat y = w_0 + \sum_i w_ix_i + \sum_{i<j}W_{ij}x_ix_j$. The pair sum has $i<j$, so no diagonal entry
# $W_{ii}$ appears. With a symbolic $W$ ($n = 4$), the derivative of the pairwise term with respect
# to each diagonal entry:

# %%
n = 4
W_sym = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"W_{min(i, j) + 1}{max(i, j) + 1}", real=True))
x_sym, _, _, _ = symbolic.fm_symbols(n, 1)
pair_term = sum(W_sym[i, j] * x_sym[i] * x_sym[j] for i in range(n) for j in range(i + 1, n))
[sp.diff(pair_term, W_sym[i, i]) for i in range(n)]

# %% [markdown]
# All zero: the diagonal is invisible. An FM sets $W_{ij} = \langle v_i, v_j\rangle = (VV^\top)_{ij}$,
# so the question "which $W$ can an FM express?" is: **for which symmetric $W$ is there a $V$ with
# $(VV^\top)_{ij} = W_{ij}$ for all $i\ne j$?** The diagonal of $VV^\top$, $\|v_i\|^2$, is a
# by-product that no prediction uses. Any symmetric matrix that agrees with $W$ off the diagonal,
# $W + \Delta$, is a **completion** of $W$.
#
# Two facts about $VV^\top$ turn this into a question about completions. First, $VV^\top$ is
# always PSD, because $z^\top VV^\top z = \|V^\top z\|^2$. Exact, for a symbolic $V$ ($n = 3$, $k = 2$):

# %%
z = sp.Matrix(sp.symbols("z_1:4", real=True))
_, _, _, V32 = symbolic.fm_symbols(3, 2)
sp.expand((z.T * V32 * V32.T * z)[0] - sum((V32.T * z)[f] ** 2 for f in range(2)))

# %% [markdown]
# Second, $VV^\top$ has rank at most $k$ (a product through $k$ columns). Conversely, a PSD matrix of
# rank $r$ can be written as $VV^\top$ with $r$ columns (§4 builds such a $V$ exactly). So:
#
# > **A $V$ with $k$ columns matches $W$ off the diagonal iff some completion $W+\Delta$ is PSD of
# > rank $\le k$.**
#
# ### Not every $W$ is $VV^\top$, and it need not be
#
# > **Erratum E8 (Rendle's paper [1], §III-A, repeated by the SystemDS reference page [2]).** The
# > argument: for every positive definite $W$ there is a $V$ with $W = VV^\top$ when $k$ is large
# > enough, so "an FM can express any interaction matrix $W$". The first half is true ($k = n$
# > suffices, §3), and the conclusion is true in the sense an FM needs: every symmetric $W$ agrees
# > *off the diagonal* with some $VV^\top$ (§3). The gap is in the argument: an interaction matrix
# > need not be positive definite, and a $W\ne0$ with trace 0, such as
# > $\begin{pmatrix}0&1\\1&0\end{pmatrix}$, equals $VV^\top$ for **no** $V$ of any width; the step
# > that makes the argument work is the free diagonal, which it never mentions. A test of the
# > conclusion on FMs passes; only the statement "$W = VV^\top$" fails. The checks follow.
#
# The reason: the trace of $VV^\top$ is the sum of the squares of all entries of $V$. Exact for a
# symbolic $V$ with $n = 4$, $k = 3$:

# %%
ex.trace_identity(4, 3)

# %% [markdown]
# So $\operatorname{trace}(VV^\top) = 0$ forces $V = 0$ and hence $VV^\top = 0$. The matrix
# $W_2 = \begin{pmatrix}0&1\\1&0\end{pmatrix}$ has trace 0 but is not 0 (it even has the eigenvalue
# $-1$), so it is no $VV^\top$. Its off-diagonal, however, is that of $V = (1, 1)^\top$, with $k = 1$
# (`offdiag_error` is $\max_{i\ne j}\lvert(VV^\top)_{ij} - W_{ij}\rvert$, exact):

# %%
W2 = sp.Matrix([[0, 1], [1, 0]])
W2.trace(), min(W2.eigenvals()), ex.offdiag_error(sp.Matrix([[1], [1]]), W2)

# %% [markdown]
# ## 3 · Choosing the free diagonal
#
# We need, for any symmetric $W$, a diagonal $\Delta$ that makes $W+\Delta$ PSD. The research notes
# propose making the diagonal large compared with the rest of its row.
#
# > **Erratum E7 (research notes "Factorisation machines" [3]).** The notes state that a symmetric
# > matrix is positive definite if each diagonal entry exceeds the sum of the off-diagonal entries
# > of its row, $M_{ii} > \sum_{j\ne i}M_{ij}$. Without absolute values this is false:
# > $\begin{pmatrix}1&-2\\-2&1\end{pmatrix}$ satisfies it ($1 > -2$) and has the eigenvalue $-1$.
# > With absolute values, $M_{ii} > \sum_{j\ne i}\lvert M_{ij}\rvert$ (**strict diagonal
# > dominance**), the statement is true [4, ch. 6], but only sufficient: the $3\times3$ matrix with
# > 1 on the diagonal and $0.6$ everywhere else is positive definite (eigenvalues $11/5, 2/5, 2/5$)
# > and not dominant ($1 < 1.2$). The checks follow.
#
# `notes_dominance_rule_exact(M)` returns (the rule as written holds, strict dominance holds, the
# smallest eigenvalue), all exact:

# %%
ex.notes_dominance_rule_exact(sp.Matrix([[1, -2], [-2, 1]]))

# %% [markdown]
# The rule as written accepts a matrix with a negative eigenvalue, so it cannot certify PSD.
#
# ### With absolute values: an explicit $V$
#
# Choose $\delta_i = \sum_{j\ne i}\lvert W_{ij}\rvert$, the **dominant completion**. Rather than
# quoting a theorem, we write it as $VV^\top$ directly. Give every pair $i<j$ one column
# $\sqrt{\lvert W_{ij}\rvert}\,(e_i + \operatorname{sign}(W_{ij})\,e_j)$. Its outer product puts
# $\lvert W_{ij}\rvert$ at $(i,i)$ and $(j,j)$ and $W_{ij}$ at $(i,j)$ and $(j,i)$; summed over all
# pairs, the diagonal collects exactly $\sum_{j\ne i}\lvert W_{ij}\rvert$. `pair_factor` builds
# this $V$. For a $3\times3$ $W$ with **symbolic** entries (so for every real $W$ of that size):

# %%
alpha, beta, gamma = sp.symbols("alpha beta gamma", real=True)
W3 = sp.Matrix([[0, alpha, beta], [alpha, 0, gamma], [beta, gamma, 0]])
V3 = ex.pair_factor(W3)
sp.simplify(V3 * V3.T - ex.dominant_completion(W3))

# %% [markdown]
# The zero matrix: $VV^\top$ is the dominant completion, so that completion is PSD. The argument
# (a sum of PSD pieces, one per pair) works for every $n$. A rational $5\times5$ example, exact:

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
# **Every symmetric $W$ is expressible by an FM**, with one column per non-zero pair (here 8). §4
# brings the number of columns down.
#
# ### Dominance is sufficient, not necessary
#
# The notes also worry that a Gram matrix $VV^\top$ would have to satisfy
# $\|v_i\|^2 > \sum_{j\ne i}\lvert\langle v_i, v_j\rangle\rvert$, which "sounds impossible". It need
# not: most PSD matrices are not dominant. The matrix with unit diagonal and $3/5$ off it fails both
# rules, yet all its eigenvalues are positive:

# %%
M06 = sp.Matrix(3, 3, lambda i, j: 1 if i == j else sp.Rational(3, 5))
ex.notes_dominance_rule_exact(M06), M06.eigenvals()

# %% [markdown]
# So it is positive definite (eigenvalue $11/5$ once, $2/5$ twice) without being dominant.
# Being positive definite, it is $VV^\top$ for a $V$ with $n = 3$ columns, the true half of E8;
# `ldl_factor_exact` (explained in §4) finds that $V$ exactly:

# %%
V06 = ex.ldl_factor_exact(M06)
V06.shape, (V06 * V06.T - M06).applyfunc(sp.simplify).is_zero_matrix

# %% [markdown]
# ### What does the diagonal cost?
#
# The notes ask whether the dominant choice is a minimum-norm solution. The FM's usual regulariser
# is $\|V\|_F^2$, and by the trace identity of §2, $\|V\|_F^2 = \operatorname{trace}(VV^\top)$: the sum
# of the chosen diagonal. So "minimum norm" means the PSD completion with the smallest trace.
#
# A lower bound for any PSD completion $M = W+\Delta$: for a pair $i<j$ with $\sigma = \operatorname{sign}(W_{ij})$,
# $(e_i - \sigma e_j)^\top M\,(e_i - \sigma e_j) = \delta_i + \delta_j - 2\lvert W_{ij}\rvert\ge0$. Summing over
# all pairs counts each $\delta_i$ exactly $n-1$ times:
#
# $$(n-1)\operatorname{trace}(W+\Delta)\;\ge\;2\sum_{i<j}\lvert W_{ij}\rvert .$$
#
# The identity behind it, exact for $W_5$ with a symbolic diagonal:

# %%
delta = sp.symbols("delta_1:6", real=True)
M5 = W5 + sp.diag(*delta)
pair_sum = 0
for i in range(5):
    for j in range(i + 1, 5):
        e = sp.zeros(5, 1)
        e[i], e[j] = 1, -1 if W5[i, j] >= 0 else 1  # e_i − σ e_j with σ = sign(W_ij), σ = 1 for a zero entry
        pair_sum += (e.T * M5 * e)[0]
abs_sum = sum(abs(W5[i, j]) for i in range(5) for j in range(i + 1, 5))
sp.expand(pair_sum - (4 * M5.trace() - 2 * abs_sum))

# %% [markdown]
# The dominant completion's trace is $2\sum_{i<j}\lvert W_{ij}\rvert$, exactly $n-1$ times this
# bound, so it never costs more than $n-1$ times the minimum. It can cost that much: for
# $W = \mathbf 1\mathbf 1^\top - I$ (every pair $+1$, $n = 6$) the bound is 6, the dominant trace is
# 30, and $V = \mathbf 1$ (one column of ones, $VV^\top = \mathbf 1\mathbf 1^\top$) reaches the bound:

# %%
W_plus = ex.ones_offdiag(6, 1)
ones6 = sp.ones(6, 1)
(
    ex.trace_lower_bound_exact(W_plus),
    ex.dominant_completion(W_plus).trace(),
    (ones6 * ones6.T).trace(),
    ex.offdiag_error(ones6, W_plus),
)

# %% [markdown]
# So the dominant diagonal is a safe construction, not a cheap one: here it carries five times the
# $\|V\|^2$ that the same off-diagonal needs. (Exercise 3.5 shows a pattern where dominance is the
# cheapest choice.)

# %% [markdown]
# ## 4 · How many columns?
#
# Let $k^*(W)$ be the smallest $k$ for which some $V\in\mathbb R^{n\times k}$ matches $W$ off the
# diagonal, i.e. the smallest rank of a PSD completion.
#
# ### Upper bounds: $n$, then $n-1$
#
# **The tool.** Symmetric Gaussian elimination writes a symmetric $M$ as $M = LDL^\top$, $L$ unit
# lower-triangular and $D$ diagonal [5, §4.1]. Its entries are exact rationals when $M$ is
# rational. If every pivot $D_{pp}\ge0$, then $V = L\sqrt D$ (keeping the columns with $D_{pp}>0$)
# gives $VV^\top = M$ with one column per positive pivot. `ldl_factor_exact` does this and refuses a
# negative pivot, so a returned $V$ is an exact certificate that $M$ is PSD.
#
# **$k\le n$.** Add $\frac1{10}$ to the dominant diagonal. The completion is then strictly dominant,
# hence positive definite, all $n$ pivots are positive, and $V$ has $n$ columns:

# %%
V5n = ex.ldl_factor_exact(ex.dominant_completion(W5, sp.Rational(1, 10)))
V5n.shape, ex.offdiag_error(V5n, W5)

# %% [markdown]
# **$k\le n-1$.** Make the first $n-1$ diagonal entries dominant plus 1, so that the leading
# $(n-1)\times(n-1)$ block $M_1$ is positive definite, and choose the last one as
# $\delta_n = g^\top M_1^{-1}g$, with $g$ the last column of $W$ above the diagonal. Elimination then
# ends with the pivot $\delta_n - g^\top M_1^{-1}g = 0$: the completion is PSD of rank $n-1$
# (`schur_completion_exact`; $\delta_n - g^\top M_1^{-1} g$ is the "Schur complement" [5, §4.2]).
# For $W_5$ and for a random $\pm1$ pattern with $n = 8$:

# %%
results = []
for W in (W5, ex.random_sign_offdiag(8, seed=0)):
    V_low = ex.ldl_factor_exact(ex.schur_completion_exact(W))
    results.append((W.rows, V_low.shape[1], ex.offdiag_error(V_low, W)))
results

# %% [markdown]
# **Proven: $k^*\le n-1$ for every $W$ with $n\ge2$.** The rational arithmetic makes each
# instance exact; the argument (a positive definite block plus one zero pivot) holds for every $W$.
#
# ### Lower bounds
#
# **Blocks.** For disjoint index sets $I$, $J$ every entry of the block $W_{IJ}$ is off the diagonal,
# so $W_{IJ} = V_IV_J^\top$, a product through $k$ columns: $k^*\ge\operatorname{rank}W_{IJ}$
# (`block_rank_exact`).
#
# **Sign patterns matter.** All pairs $+1$ need one column ($V = \mathbf 1$, above). All pairs $-1$
# need $n-1$: every completion of $-(\mathbf 1\mathbf 1^\top - I)$ is
# $\operatorname{diag}(\delta_1+1,\dots,\delta_n+1) - \mathbf 1\mathbf 1^\top$; a PSD matrix has a
# non-negative diagonal, so every $\delta_i\ge0$, the diagonal part has rank $n$, and
# $n\le\operatorname{rank}(W+\Delta) + \operatorname{rank}(\mathbf 1\mathbf 1^\top)$ gives
# $\operatorname{rank}(W+\Delta)\ge n-1$. The identity with a symbolic diagonal, and a $V$ with
# $n-1 = 5$ columns:

# %%
W_minus = ex.ones_offdiag(6, -1)
d6 = sp.symbols("delta_1:7", real=True)
identity = (W_minus + sp.diag(*d6) - (sp.diag(*[di + 1 for di in d6]) - sp.ones(6, 6))).is_zero_matrix
V_minus = ex.ldl_factor_exact(ex.schur_completion_exact(W_minus))
identity, V_minus.shape[1], ex.offdiag_error(V_minus, W_minus)

# %% [markdown]
# So $k^* = 1$ for all $+1$ and $k^* = n-1$ for all $-1$: entries of the same size, opposite
# signs, and the widest possible gap.
#
# **Almost every $W$ needs many columns.** $V$ has $nk$ entries, but $V$ and $VQ$ (any orthogonal
# $Q$, §6) give the same $VV^\top$, which leaves $nk - k(k-1)/2$ free numbers to match
# $n(n-1)/2$ off-diagonal entries. With fewer free numbers than entries, the reachable
# off-diagonals form a set of volume zero (Sard's theorem [6]), so a $W$ drawn from any continuous
# distribution almost never lies in it. `dimension_count_k(n)` is the smallest $k$ with enough
# free numbers; we check its definition exactly (enough at $k$, too few at $k-1$) and that it
# respects the proven upper bound $n-1$:

# %%
counts = {n: ex.dimension_count_k(n) for n in (4, 10, 20, 50, 100, 1000)}


def free(n, k):
    return n * k - k * (k - 1) // 2


checks = all(free(n, k) >= n * (n - 1) // 2 > free(n, k - 1) and k <= n - 1 for n, k in counts.items())
counts, checks

# %% [markdown]
# For $n = 1000$ features, a generic $W$ needs at least 956 columns. A small $k$ works only for
# special off-diagonals, such as those of a low-rank $V_0V_0^\top$, which is exactly what an FM
# assumes about the data.
#
# ### What least-squares fits find
#
# Four off-diagonals with $n = 10$ (`k_examples`): a planted $V_0V_0^\top$ with an integer
# $V_0\in\mathbb Z^{10\times3}$, all $+1$, all $-1$, and random $\pm1$. Each comes with a proven lower
# bound (an exact block rank, or the argument above) and a proven upper bound. We certify every
# upper bound by an exact $V$ with that many columns (the planted $V_0$, $V = \mathbf 1$, or the
# Schur completion):

# %%
examples = ex.k_examples(10)
certified = {}
for name, (W, lower, upper, V_cert) in examples.items():
    V_cert = ex.ldl_factor_exact(ex.schur_completion_exact(W)) if V_cert is None else V_cert
    certified[name] = (lower, upper, V_cert.shape[1] == upper and ex.offdiag_error(V_cert, W) == 0)
certified

# %% [markdown]
# For $k = 1,\dots,10$ we fit $V\in\mathbb R^{10\times k}$ to each off-diagonal by least squares
# (L-BFGS, best of four random starts) and record the relative error
# $\|\mathrm{off}(VV^\top - W)\|_F/\|\mathrm{off}(W)\|_F$, where $\mathrm{off}$ zeroes the diagonal.
# This is evidence, not proof: a fit can miss a solution that exists. The errors span 17 orders of
# magnitude, hence the log scale.

# %%
scan = ex.k_scan_rows()
nb03.plot_k_scan(scan)
plt.show()

# %% [markdown]
# Each panel shows one example: the blue curve is the best relative error for each $k$, the green
# band the proven range of $k^*$, the dashed line the threshold $10^{-8}$ below which we count a fit
# as exact, and the red ring the first $k$ below it. Each curve falls off a cliff: below the
# observed $k^*$ the best fit leaves at least 10 % of the off-diagonal unexplained, from it on the
# error is at rounding level (below $10^{-14}$). The observed $k^*$ against the proven range, and
# the cliff:

# %%
observed = ex.observed_k(scan)
cliff = all(r["rel_error"] >= 0.1 if r["k"] < observed[r["example"]] else r["rel_error"] <= 1e-14 for r in scan)
in_range = {
    name: (lower, observed[name], upper, lower <= observed[name] <= upper)
    for name, (lower, upper, _) in certified.items()
}
in_range, cliff

# %% [markdown]
# Every observed value lies in its proven range, and equals it where the range is a single
# number. For random signs the fits need 7 columns, inside the proven range 5 to 9; the dimension
# count (6 for $n = 10$) does not apply there, since a $\pm1$ pattern is not drawn from a continuous
# distribution.

# %% [markdown]
# ## Key takeaways
#
# * An FM uses only the off-diagonal of $VV^\top$. With the diagonal free, **every** symmetric $W$ is
#   reachable (explicit $V$ from the dominant completion); "every $W$ is $VV^\top$" is false (E8).
# * Diagonal dominance needs absolute values (E7) and is sufficient, not necessary; it can cost up
#   to $n-1$ times the $\|V\|^2$ that the off-diagonal needs.
# * $k^*\le n-1$ always; blocks give lower bounds; the sign pattern decides ($k^* = 1$ for all $+1$,
#   $n-1$ for all $-1$); almost every $W$ needs the smallest $k$ with $nk - k(k-1)/2\ge n(n-1)/2$
#   (956 for $n = 1000$).

# %% [markdown]
# ## Exercises
#
# ### Exercise 3.1 (easy)
#
# Take $W = +(\mathbf 1\mathbf 1^\top - I)$ and $W = -(\mathbf 1\mathbf 1^\top - I)$ with $n = 4$ and the same
# diagonal $\tau$ everywhere. **Before running anything, predict:** which sign needs the larger
# $\tau$ for $W + \tau I$ to be PSD, and how does each compare with the dominant choice $\tau = 3$?
# Then find both thresholds exactly.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# W + τI has the eigenvalues of W shifted by τ. For ±(11ᵀ − I) the eigenvalues are ±(n − 1) (eigenvector 1)
# and ∓1 (the n − 1 directions orthogonal to 1). PSD means the smallest shifted eigenvalue is ≥ 0.
tau = sp.Symbol("tau", real=True)
thresholds = {}
for sign in (1, -1):
    eigenvalues = (ex.ones_offdiag(4, sign) + tau * sp.eye(4)).eigenvals()
    thresholds[sign] = max(sp.solve(sp.Eq(ev, 0), tau)[0] for ev in eigenvalues)  # the last one to reach 0
# All +1 needs only τ ≥ 1 (dominance asks for 3); all −1 needs τ ≥ 3, exactly the dominant value.
thresholds == {1: 1, -1: 3}

# %% [markdown]
# ### Exercise 3.2 (medium)
#
# For $n = 3$ and every pair $-1$, the block bound gives only $k^*\ge1$ (the largest off-diagonal
# block is $1\times2$). Show that $k = 1$ is impossible, and give an exact $V$ with $k = 2$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# With k = 1, V = (v1, v2, v3)ᵀ and we need v1·v2 = v1·v3 = v2·v3 = −1. The product of the three
# equations is (v1 v2)(v1 v3)(v2 v3) = (v1 v2 v3)² ≥ 0, but the right-hand sides multiply to −1.
v1, v2, v3 = sp.symbols("v1 v2 v3", real=True)
product_identity = sp.expand((v1 * v2) * (v1 * v3) * (v2 * v3) - (v1 * v2 * v3) ** 2) == 0
# With k = 2: three vectors of length √2 at 120° to each other have inner products 2·cos(120°) = −1.
angles = [0, 2 * sp.pi / 3, 4 * sp.pi / 3]
V_120 = sp.Matrix([[sp.sqrt(2) * sp.cos(th), sp.sqrt(2) * sp.sin(th)] for th in angles])
product_identity, V_120.shape[1], ex.offdiag_error(V_120, ex.ones_offdiag(3, -1))

# %% [markdown]
# ### Exercise 3.3 (hard)
#
# §3 showed that the dominant diagonal can cost $n-1$ times the minimum trace. Show that for all
# pairs $-1$ it is the cheapest: every PSD completion of $-(\mathbf 1\mathbf 1^\top - I)$ has trace
# $\ge n(n-1)$, the dominant completion's trace. Hint: write the completion as
# $P - \mathbf 1\mathbf 1^\top$ with $P = \operatorname{diag}(p_1,\dots,p_n)$, $p_i = \delta_i + 1\ge1$, and test
# PSD with $z_i = 1/p_i$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Step 1: zᵀ(P − 11ᵀ)z with z_i = 1/p_i equals S − S², S = Σ 1/p_i. PSD needs S − S² ≥ 0, so S ≤ 1.
# Step 2 (arithmetic vs harmonic mean): (Σ p_i)(Σ 1/p_i) − n² = Σ_{i<j} (p_i − p_j)²/(p_i p_j) ≥ 0,
# so Σ p_i ≥ n²/S ≥ n², and trace = Σ (p_i − 1) ≥ n² − n. The dominant completion has p_i = n: equality.
nn = 4
ps = sp.symbols("p_1:5", positive=True)
zp = sp.Matrix([1 / pi for pi in ps])
S = sum(1 / pi for pi in ps)
step1 = sp.simplify((zp.T * (sp.diag(*ps) - sp.ones(nn, nn)) * zp)[0] - (S - S**2)) == 0
amhm = sum((ps[i] - ps[j]) ** 2 / (ps[i] * ps[j]) for i in range(nn) for j in range(i + 1, nn))
step2 = sp.simplify(sum(ps) * S - nn**2 - amhm) == 0
dominant = ex.dominant_completion(ex.ones_offdiag(nn, -1))
step1, step2, dominant.trace() == nn * (nn - 1), min(dominant.eigenvals()) >= 0

# %% [markdown]
# ## Going further (optional)
#
# * **The cheapest completion in general.** The PSD completion of smallest trace is a semidefinite
#   program, an optimisation over PSD matrices with linear constraints [7]; the bound of §3 is a
#   simple lower bound on its value.
# * **Sard's theorem** [6] says that the image of the points where a smooth map's derivative is not
#   onto has volume zero; it is what makes the dimension count of §4 a statement about almost
#   every $W$.

# %% [markdown]
# ### Exercise 3.4 (easy, your turn)
#
# Write the test of strict diagonal dominance for a symmetric tensor `M`: return `True` when $M_{ii} > \sum_{j\ne i}\lvert M_{ij}\rvert$ for every row, else `False`.
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["is_dominant"].hint()` gives a hint.


# %% jupyter={"source_hidden": true} tags=["your-turn"] fmedu={"stub": "def my_is_dominant(M):\n    raise NotImplementedError  # your code here\n"}
def my_is_dominant(M):
    off = M.abs().sum(1) - M.diagonal().abs()
    return bool((M.diagonal() > off).all())


# %%
EXERCISES["is_dominant"].check(my_is_dominant).correct

# %% [markdown]
# ## References
#
# 1. S. Rendle, "Factorization Machines," in *Proc. IEEE International Conference on Data Mining
#    (ICDM)*, pp. 995–1000, 2010.
# 2. Apache SystemDS, "Algorithms Reference: Factorization Machines," SystemDS documentation,
#    https://apache.github.io/systemds/site/algorithms-factorization-machines.html (accessed 2025).
#    Source of erratum E8.
# 3. "Factorisation machines," unpublished research notes on whether $VV^\top$ can represent any
#    interaction matrix (free diagonal, diagonal dominance, user–item blocks, identifiability,
#    regularisation), undated. Source of erratum E7.
# 4. R. A. Horn and C. R. Johnson, *Matrix Analysis*, 2nd ed., Cambridge University Press, 2013
#    (ch. 6: Gershgorin discs and diagonal dominance; ch. 7: positive semidefinite and Gram matrices).
# 5. G. H. Golub and C. F. Van Loan, *Matrix Computations*, 4th ed., Johns Hopkins University Press,
#    2013 (§4.1: $LDL^\top$; §4.2: positive definite systems).
# 6. J. W. Milnor, *Topology from the Differentiable Viewpoint*, University Press of Virginia, 1965
#    (§2–3: Sard's theorem).
# 7. L. Vandenberghe and S. Boyd, "Semidefinite Programming," *SIAM Review* 38(1), pp. 49–95, 1996.

# %% [markdown]
# [← Previous: 02 · The O(nk) gradient, checked three ways](02_gradient.ipynb) · [Course index](00_index.ipynb) · [Next: 04 · User–item data and identifiability →](04_user_item.ipynb)
