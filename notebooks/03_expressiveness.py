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
# must $k$ be before nothing is lost? This chapter answers both with short proofs you can redo
# with a pencil, checks each proof by exact computation (symbolic where the proof is general,
# exact rational instances where it is not), and corrects two claims of the source material on
# the way.
#
# Symbols follow the course [notation](../README.md#notation) table; the few this chapter adds are
# introduced where they first appear and collected at the end.

# %% [markdown]
# ## What you will learn
#
# * Why an FM only ever uses the **off-diagonal** of $VV^\top$, and why with the diagonal left free
#   every symmetric table of pairwise effects is reachable, although "every such table is some
#   $VV^\top$" is false (erratum E8).
# * How to choose the free diagonal: diagonal dominance needs absolute values (erratum E7), is
#   sufficient but not necessary, and can cost up to $n-1$ times more $\|V\|^2$ than needed.
# * How many columns $k$ are needed: never more than $n-1$, at least the rank of any off-diagonal
#   block, exactly $n-1$ when every pair clashes.
#
# User–item data, and which learned numbers the predictions determine, are the subject of
# [chapter 04](04_user_item.ipynb).
#
# ## What you need
#
# * Chapter 01, (1.1): the FM $\hat y(x) = w_0 + \sum_i w_ix_i + \sum_{i<j}\langle v_i, v_j\rangle x_ix_j$,
#   with $v_i$ the $i$-th row of $V\in\mathbb R^{n\times k}$. Chapter 02 is not needed.
# * Rank: $\operatorname{rank}(XY)\le\min(\operatorname{rank}X, \operatorname{rank}Y)$ and
#   $\operatorname{rank}(X+Y)\le\operatorname{rank}X + \operatorname{rank}Y$.
# * A symmetric matrix $M$ is **positive semidefinite** (PSD) if $z^\top Mz\ge0$ for every vector $z$,
#   equivalently if all its eigenvalues are $\ge 0$; **positive definite** (PD) if $z^\top Mz>0$ for
#   every $z\ne0$ [4, ch. 7].

# %%
import matplotlib.pyplot as plt
import sympy as sp

from fmedu import expressiveness as ex
from fmedu import symbolic
from fmedu.exercises import EXERCISES
from fmedu.figures import nb03
from fmedu.notebook import setup

setup()

# %% [markdown]
# ## 1 · A tiny example: three features that clash
#
# A pizza-rating model has three binary features: anchovies, pineapple, chili. Each topping alone
# is liked, but any two of them together lower the rating by one point: the interaction weight is
# $-1$ for each of the three pairs. Can an FM represent this with $k = 1$, one number $v_i$ per
# topping? We need $v_1v_2 = v_1v_3 = v_2v_3 = -1$. Multiply the three equations:
#
# $$
# \begin{aligned}
# (v_1v_2)(v_1v_3)(v_2v_3) &= (-1)^3 = -1 && \text{multiply the three equations}\\
# (v_1v_2)(v_1v_3)(v_2v_3) &= (v_1v_2v_3)^2 \ge 0 && \text{each } v_i \text{ appears twice}
# \end{aligned}
# \tag{3.1}
# $$
#
# A contradiction: **no** $k = 1$ FM represents three pairwise clashes. With $k = 2$, take three
# vectors of length $\sqrt2$ at angles $0$, $120°$ and $240°$, $v_i = \sqrt2\,(\cos\varphi_i, \sin\varphi_i)$.
# The inner product of two vectors is the product of their lengths and the cosine of the angle
# between them:
#
# $$
# \langle v_i, v_j\rangle = \sqrt2\cdot\sqrt2\cdot\cos(\varphi_i - \varphi_j) = 2\cos(\pm120°) = 2\cdot\bigl(-\tfrac12\bigr) = -1
# \qquad (i\ne j). \tag{3.2}
# $$
#
# The check, exact: the identity behind (3.1) for symbolic $v_i$ (0 means it holds), and all inner
# products of (3.2) computed from the coordinates, with $\sqrt2$ and $\cos120°$ as exact numbers:

# %%
v1, v2, v3 = sp.symbols("v1 v2 v3", real=True)
identity_31 = sp.expand((v1 * v2) * (v1 * v3) * (v2 * v3) - (v1 * v2 * v3) ** 2)
angles = [0, 2 * sp.pi / 3, 4 * sp.pi / 3]
V_120 = sp.Matrix([[sp.sqrt(2) * sp.cos(phi), sp.sqrt(2) * sp.sin(phi)] for phi in angles])
G_120 = (V_120 * V_120.T).applyfunc(sp.simplify)
identity_31, G_120

# %% [markdown]
# The picture: the three vectors, and the matrix $VV^\top$ whose off-diagonal is the table of
# pairwise effects.

# %%
nb03.plot_three_vectors(nb03.three_vector_rows())
plt.show()

# %% [markdown]
# Left: three arrows of length $\sqrt2$, $120°$ apart; right: their $3\times3$ matrix of inner
# products, $-1$ off the diagonal and $2$ on it. The diagonal entries $\|v_i\|^2 = 2$ were not asked
# for and, as §2 shows, never enter a prediction. This example raises the chapter's questions:
#
# 1. Which tables of pairwise effects can $VV^\top$ reach at all, given that the FM ignores its diagonal? (§2)
# 2. How should the unused diagonal be chosen? (§3)
# 3. How large must $k$ be? Here 2; for $n$ features that all clash, $n-1$. (§4)

# %% [markdown]
# ## 2 · The FM reads only the off-diagonal
#
# Give the model a free weight $W_{ij}$ for each pair, collected in a symmetric $n\times n$ matrix
# $W$, the **interaction matrix**. The prediction is
#
# $$
# \hat y(x) = w_0 + \sum_i w_ix_i + \sum_{i<j}W_{ij}x_ix_j,
# \qquad\text{so}\qquad \frac{\partial\hat y}{\partial W_{ii}} = 0 \ \text{ for every } i, \tag{3.3}
# $$
#
# because the pair sum runs over $i<j$ and never contains $W_{ii}$. The derivatives, for a
# symbolic $W$ with $n = 4$:

# %%
n = 4
W_sym = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"W_{min(i, j) + 1}{max(i, j) + 1}", real=True))
x_sym, _, _, _ = symbolic.fm_symbols(n, 1)
pair_term = sum(W_sym[i, j] * x_sym[i] * x_sym[j] for i in range(n) for j in range(i + 1, n))
[sp.diff(pair_term, W_sym[i, i]) for i in range(n)]

# %% [markdown]
# An FM sets $W_{ij} = \langle v_i, v_j\rangle = (VV^\top)_{ij}$, so the question "which $W$ can an FM
# express?" is: **for which symmetric $W$ is there a $V$ with $(VV^\top)_{ij} = W_{ij}$ for all
# $i\ne j$?** Any symmetric matrix $W+\Delta$ that agrees with $W$ off the diagonal, with
# $\Delta = \operatorname{diag}(\delta_1,\dots,\delta_n)$ chosen freely, is a **completion** of $W$.
# From here on $W$ has zeros on its diagonal.
#
# Three facts about $VV^\top$. It is PSD, because for every $z$
#
# $$
# z^\top VV^\top z = (V^\top z)^\top(V^\top z) = \|V^\top z\|^2 = \sum_{f=1}^k\Bigl(\sum_{i=1}^n V_{if}z_i\Bigr)^2 \ge 0 . \tag{3.4}
# $$
#
# Its trace is the squared size of $V$:
#
# $$
# \operatorname{trace}(VV^\top) = \sum_{i}(VV^\top)_{ii} = \sum_i\langle v_i, v_i\rangle = \sum_i\sum_f V_{if}^2 = \|V\|_F^2 . \tag{3.5}
# $$
#
# And its rank is at most $k$ (a product through $k$ columns). Both identities, exact for a
# symbolic $V$ with $n = 4$, $k = 3$ (each prints 0):

# %%
z = sp.Matrix(sp.symbols("z_1:5", real=True))
_, _, _, V43 = symbolic.fm_symbols(4, 3)
sp.expand((z.T * V43 * V43.T * z)[0] - sum((V43.T * z)[f] ** 2 for f in range(3))), ex.trace_identity(4, 3)

# %% [markdown]
# Conversely, a PSD matrix of rank $r$ is $VV^\top$ for a $V$ with $r$ columns (§4 builds one
# exactly). So:
#
# > **A $V$ with $k$ columns matches $W$ off the diagonal iff some completion $W+\Delta$ is PSD of
# > rank $\le k$.**
#
# ### The diagonal shift: every $W$ is reachable
#
# Take the simplest completion, the same number $c$ on the whole diagonal: $W + cI$. If
# $Wu = \lambda u$, then
#
# $$
# (W + cI)\,u = Wu + cu = (\lambda + c)\,u, \tag{3.6}
# $$
#
# so $W+cI$ has the eigenvalues of $W$ shifted by $c$, with the same eigenvectors. Choose
# $c = -\lambda_{\min}(W)$: every shifted eigenvalue is $\ge0$, so $W + cI$ is PSD, and the
# eigenvector of $\lambda_{\min}$ now has eigenvalue 0, so the rank is at most $n-1$:
#
# > **Every symmetric $W$ ($n\ge2$) agrees off the diagonal with $VV^\top$ for some $V$ with at most
# > $n-1$ columns.**
#
# The check of (3.6) for a general symmetric $3\times3$ matrix: the characteristic polynomial of
# $W + cI$ at $\mu$ equals that of $W$ at $\mu - c$, for symbolic entries and symbolic $c$, $\mu$.
# Then the tiny example: $W = I - \mathbf 1\mathbf 1^\top$ (every pair $-1$; $\mathbf 1$ is the
# all-ones vector) has $\lambda_{\min} = -2$, and $W + 2I$ is PSD of rank 2 and equals the
# $VV^\top$ of §1:

# %%
a_, b_, c_, d_, e_, f_, c, mu = sp.symbols("a b c d e f c mu", real=True)
W_gen = sp.Matrix([[a_, b_, c_], [b_, d_, e_], [c_, e_, f_]])
shift_ok = sp.expand((W_gen + c * sp.eye(3) - mu * sp.eye(3)).det() - (W_gen - (mu - c) * sp.eye(3)).det()) == 0
W_clash = ex.ones_offdiag(3, -1)
shifted = W_clash - min(W_clash.eigenvals()) * sp.eye(3)
shift_ok, min(W_clash.eigenvals()), shifted.eigenvals(), shifted.rank(), (shifted - G_120).is_zero_matrix

# %% [markdown]
# For a general $W$ the eigenvalues are irrational, so §4 gives a second construction of the same
# bound in exact rational arithmetic.
#
# ### Not every $W$ is $VV^\top$, and it need not be
#
# > **Erratum E8 (Rendle's paper [1], §III-A, repeated by the SystemDS reference page [2]).** The
# > argument: for every positive definite $W$ there is a $V$ with $W = VV^\top$ when $k$ is large
# > enough, so "an FM can express any interaction matrix $W$". The first half is true, and the
# > conclusion is true in the sense an FM needs: every symmetric $W$ agrees *off the diagonal*
# > with some $VV^\top$ (3.6). The gap is in the argument: an interaction matrix need not be
# > positive definite, and a $W\ne0$ with trace 0, such as $\begin{pmatrix}0&1\\1&0\end{pmatrix}$,
# > equals $VV^\top$ for **no** $V$ of any width; the step that makes the argument work is the free
# > diagonal, which it never mentions. A test of the conclusion on FMs passes; only the statement
# > "$W = VV^\top$" fails.
#
# The reason is (3.5): $\operatorname{trace}(VV^\top) = 0$ forces $\|V\|_F = 0$, so $VV^\top = 0$. The
# matrix $W_2 = \begin{pmatrix}0&1\\1&0\end{pmatrix}$ has trace 0 but is not 0 (it even has the
# eigenvalue $-1$), so it is no $VV^\top$. Its off-diagonal, however, is that of $V = (1, 1)^\top$:
# the largest off-diagonal mismatch $\max_{i\ne j}\lvert(VV^\top)_{ij} - W_{ij}\rvert$ (last number) is 0:

# %%
W2 = sp.Matrix([[0, 1], [1, 0]])
W2.trace(), min(W2.eigenvals()), ex.offdiag_error(sp.Matrix([[1], [1]]), W2)

# %% [markdown]
# ## 3 · Choosing the free diagonal
#
# The shift (3.6) needs the smallest eigenvalue. The research notes propose instead making each
# diagonal entry large compared with the rest of its row, which needs only additions.
#
# > **Erratum E7 (research notes "Factorisation machines" [3]).** The notes state that a symmetric
# > matrix is positive definite if each diagonal entry exceeds the sum of the off-diagonal entries
# > of its row, $M_{ii} > \sum_{j\ne i}M_{ij}$. Without absolute values this is false:
# > $\begin{pmatrix}1&-2\\-2&1\end{pmatrix}$ satisfies it ($1 > -2$) and has the eigenvalue $-1$.
# > With absolute values, $M_{ii} > \sum_{j\ne i}\lvert M_{ij}\rvert$ (**strict diagonal
# > dominance**), the statement is true (derived below as (3.8)), but only sufficient. A test on
# > matrices with non-negative entries only would not catch the missing absolute values.
#
# The rule as written, strict dominance, and the smallest eigenvalue, exact:

# %%
ex.notes_dominance_rule_exact(sp.Matrix([[1, -2], [-2, 1]]))

# %% [markdown]
# ### With absolute values: an explicit $V$
#
# Choose $\delta_i = \sum_{j\ne i}\lvert W_{ij}\rvert$, the **dominant completion** $W + \Delta_{\text{dom}}$.
# Instead of quoting a theorem, we write it as a sum of PSD pieces. For a pair $i<j$ let
# $\sigma = \operatorname{sign}(W_{ij})$ and $u = e_i + \sigma e_j$ ($e_i$ is the $i$-th unit vector).
# Since $\sigma^2 = 1$ and $\sigma\lvert W_{ij}\rvert = W_{ij}$,
#
# $$
# \begin{aligned}
# \lvert W_{ij}\rvert\,uu^\top &= \lvert W_{ij}\rvert\bigl(e_ie_i^\top + e_je_j^\top\bigr) + \sigma\lvert W_{ij}\rvert\bigl(e_ie_j^\top + e_je_i^\top\bigr) && \text{expand } (e_i + \sigma e_j)(e_i + \sigma e_j)^\top\\
# &= \lvert W_{ij}\rvert\bigl(e_ie_i^\top + e_je_j^\top\bigr) + W_{ij}\bigl(e_ie_j^\top + e_je_i^\top\bigr) && \sigma\lvert W_{ij}\rvert = W_{ij}\\
# \sum_{i<j}\lvert W_{ij}\rvert\,uu^\top &= \Delta_{\text{dom}} + W && \text{entry } (i,i) \text{ collects } \textstyle\sum_{j\ne i}\lvert W_{ij}\rvert
# \end{aligned}
# \tag{3.7}
# $$
#
# Each piece is PSD (by (3.4) with one column), so their sum is, and $V$ with one column
# $\sqrt{\lvert W_{ij}\rvert}\,u$ per pair gives $VV^\top = W + \Delta_{\text{dom}}$. The check for a
# $3\times3$ $W$ with symbolic entries (so for every real $W$ of that size; the zero matrix means
# equal), then a rational $5\times5$ example:

# %%
alpha, beta, gamma = sp.symbols("alpha beta gamma", real=True)
W3 = sp.Matrix([[0, alpha, beta], [alpha, 0, gamma], [beta, gamma, 0]])
V3 = ex.pair_factor(W3)
sp.simplify(V3 * V3.T - ex.dominant_completion(W3))

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
# One column per non-zero pair (here 8); §4 brings the number down.
#
# **Strict dominance implies positive definite.** If $M_{ii} > \sum_{j\ne i}\lvert M_{ij}\rvert$, write
# $M$ as the dominant completion of its off-diagonal plus what is left on the diagonal,
# $D_+ = \operatorname{diag}(d_i)$ with every $d_i = M_{ii} - \sum_{j\ne i}\lvert M_{ij}\rvert > 0$. For
# $z\ne0$, by (3.7) and (3.4),
#
# $$
# z^\top Mz = \|V^\top z\|^2 + \sum_i d_iz_i^2 \;\ge\; \min_i d_i\,\|z\|^2 \;>\; 0 . \tag{3.8}
# $$
#
# The exact check: symmetric Gaussian elimination (§4) on $W_5$'s dominant completion plus
# $\tfrac1{10}$ on the diagonal finds 5 positive pivots, i.e. a $V$ with 5 columns, which certifies PD:

# %%
V5n = ex.ldl_factor_exact(ex.dominant_completion(W5, sp.Rational(1, 10)))
V5n.shape, ex.offdiag_error(V5n, W5)

# %% [markdown]
# ### Dominance is sufficient, not necessary
#
# The notes worry that a Gram matrix $VV^\top$ would have to satisfy
# $\|v_i\|^2 > \sum_{j\ne i}\lvert\langle v_i, v_j\rangle\rvert$, which "sounds impossible". It need
# not: the matrix with unit diagonal and $3/5$ off it fails both rules, yet its eigenvalues are
# $11/5$ and $2/5$ (twice), all positive:

# %%
M06 = sp.Matrix(3, 3, lambda i, j: 1 if i == j else sp.Rational(3, 5))
ex.notes_dominance_rule_exact(M06), M06.eigenvals()

# %% [markdown]
# ### What does the diagonal cost?
#
# The usual regulariser is $\|V\|_F^2$, and by (3.5) $\|V\|_F^2 = \operatorname{trace}(W+\Delta)$, the
# sum of the chosen diagonal. A lower bound for every PSD completion $M = W+\Delta$: for a pair $i<j$
# with $\sigma = \operatorname{sign}(W_{ij})$ ($\sigma = 1$ when $W_{ij} = 0$), test PSD with
# $z = e_i - \sigma e_j$ and sum over all pairs, in which each $\delta_i$ occurs once for each of the
# $n-1$ other indices:
#
# $$
# \begin{aligned}
# 0 \le (e_i - \sigma e_j)^\top M\,(e_i - \sigma e_j) &= \delta_i + \delta_j - 2\sigma W_{ij} = \delta_i + \delta_j - 2\lvert W_{ij}\rvert && \text{PSD; } \sigma W_{ij} = \lvert W_{ij}\rvert\\
# 0 \le \sum_{i<j}\bigl(\delta_i + \delta_j - 2\lvert W_{ij}\rvert\bigr) &= (n-1)\operatorname{trace}(W + \Delta) - 2\sum_{i<j}\lvert W_{ij}\rvert && \text{sum over pairs}
# \end{aligned}
# \tag{3.9}
# $$
#
# so $\operatorname{trace}(W+\Delta)\ge 2\sum_{i<j}\lvert W_{ij}\rvert/(n-1)$. The summed identity, exact for
# $W_5$ with a symbolic diagonal (0 means the two sides agree):

# %%
delta = sp.symbols("delta_1:6", real=True)
M5 = W5 + sp.diag(*delta)
pair_sum = 0
for i in range(5):
    for j in range(i + 1, 5):
        e = sp.zeros(5, 1)
        e[i], e[j] = 1, -1 if W5[i, j] >= 0 else 1  # the test vector e_i - sigma e_j
        pair_sum += (e.T * M5 * e)[0]
abs_sum = sum(abs(W5[i, j]) for i in range(5) for j in range(i + 1, 5))
sp.expand(pair_sum - (4 * M5.trace() - 2 * abs_sum))

# %% [markdown]
# The dominant completion's trace is $2\sum_{i<j}\lvert W_{ij}\rvert$, exactly $n-1$ times the bound,
# so it never costs more than $n-1$ times the cheapest completion. It can cost that much: for
# $W = \mathbf 1\mathbf 1^\top - I$ (every pair $+1$, $n = 6$) the bound, the dominant trace, and the
# trace of $V = \mathbf 1$ (one column of ones; its off-diagonal mismatch is the last number):

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
# $\|V\|^2$ that the same off-diagonal needs. (Exercise 3.3 shows a pattern where dominance is the
# cheapest choice.)

# %% [markdown]
# ## 4 · How many columns?
#
# Let $k^*(W)$ be the smallest $k$ for which some $V\in\mathbb R^{n\times k}$ matches $W$ off the
# diagonal, i.e. the smallest rank of a PSD completion.
#
# ### Upper bound $n-1$, in rational arithmetic
#
# **The tool.** Symmetric Gaussian elimination writes a symmetric $M$ as $M = LDL^\top$, $L$ unit
# lower-triangular and $D$ diagonal (the pivots) [5, §4.1]; its entries are exact rationals when
# $M$ is rational. If every pivot is $\ge0$, then $V = L\sqrt D$, keeping the columns with a
# positive pivot, gives $VV^\top = M$ with one column per positive pivot: an exact certificate of
# PSD and of the rank.
#
# **One zero pivot on purpose.** Split a completion into its leading $(n-1)\times(n-1)$ block $M_1$,
# the last column $g$ above the diagonal, and the last diagonal entry $\delta$. Choose the first
# $n-1$ diagonal entries dominant plus 1, so $M_1$ is PD by (3.8); one step of block elimination
# (the "Schur complement" [5, §4.2]) gives
#
# $$
# \begin{pmatrix}M_1 & g\\ g^\top & \delta\end{pmatrix}
# = \begin{pmatrix}I\\ g^\top M_1^{-1}\end{pmatrix} M_1 \begin{pmatrix}I & M_1^{-1}g\end{pmatrix}
# + \begin{pmatrix}0&0\\0&\delta - g^\top M_1^{-1}g\end{pmatrix}. \tag{3.10}
# $$
#
# With $\delta = g^\top M_1^{-1}g$ the second term vanishes; writing the PD $M_1 = V_1V_1^\top$
# ($n-1$ positive pivots), the completion is $CV_1(CV_1)^\top$ with $C = \begin{pmatrix}I\\ g^\top M_1^{-1}\end{pmatrix}$:
# PSD, $n-1$ columns, all rational. The check of (3.10) with a **symbolic** symmetric $M_1$
# ($3\times3$, so $n = 4$), symbolic $g$ and $\delta$:

# %%
m = sp.symbols("m11 m12 m13 m22 m23 m33", real=True)
M1 = sp.Matrix([[m[0], m[1], m[2]], [m[1], m[3], m[4]], [m[2], m[4], m[5]]])
g = sp.Matrix(sp.symbols("g_1:4", real=True))
delta_n = sp.Symbol("delta", real=True)
C = sp.eye(3).col_join(g.T * M1.inv())
lhs = M1.row_join(g).col_join(g.T.row_join(sp.Matrix([[delta_n]])))
rhs = C * M1 * C.T + sp.diag(0, 0, 0, delta_n - (g.T * M1.inv() * g)[0])
(lhs - rhs).applyfunc(sp.simplify).is_zero_matrix

# %% [markdown]
# And the construction carried out exactly on a random $\pm1$ pattern and a planted rank-3 pattern
# for every $n = 2,\dots,8$: do all exact factors have at most $n-1$ columns (counted, not assumed)
# and no off-diagonal mismatch? Then the last two rows $(n, \text{columns}, \text{mismatch})$:

# %%
schur_rows = []
for n_ in range(2, 9):
    for W in (ex.random_sign_offdiag(n_, seed=n_), ex.planted_offdiag(n_, 3, seed=n_)[0]):
        V_low = ex.ldl_factor_exact(ex.schur_completion_exact(W))
        schur_rows.append((n_, V_low.shape[1], ex.offdiag_error(V_low, W)))
all(cols <= n_ - 1 and err == 0 for n_, cols, err in schur_rows), schur_rows[-2:]

# %% [markdown]
# So $k^*\le n-1$ for every $W$ with $n\ge2$: proven by (3.6) and again by (3.10), and
# certified exactly on each instance.
#
# ### Lower bounds
#
# **Blocks.** For disjoint index sets $I$, $J$ every entry of the block $W_{IJ}$ is off the
# diagonal, so
#
# $$
# W_{IJ} = V_IV_J^\top \quad\Longrightarrow\quad \operatorname{rank}W_{IJ}\le k, \qquad\text{so } k^*\ge\operatorname{rank}W_{IJ}. \tag{3.11}
# $$
#
# **Every pair clashing needs at least $n-1$.** Generalise §1 to $W = -(\mathbf 1\mathbf 1^\top - I)$.
# Every completion is $P - \mathbf 1\mathbf 1^\top$ with $P = \operatorname{diag}(p_i)$, $p_i = \delta_i + 1$.
# A PSD matrix has a non-negative diagonal ($e_i^\top Me_i\ge0$), so $\delta_i\ge0$ and $p_i\ge1$:
#
# $$
# \begin{aligned}
# n = \operatorname{rank}P &= \operatorname{rank}\bigl((P - \mathbf 1\mathbf 1^\top) + \mathbf 1\mathbf 1^\top\bigr) && \text{every } p_i\ge1\\
# &\le \operatorname{rank}(W + \Delta) + \operatorname{rank}(\mathbf 1\mathbf 1^\top) = \operatorname{rank}(W + \Delta) + 1 && \text{rank of a sum}
# \end{aligned}
# \tag{3.12}
# $$
#
# so every PSD completion has rank $\ge n-1$: the pattern needs **at least** $n-1$ columns. And
# $n-1$ suffice: the vectors $v_i = \sqrt n\,(e_i - \tfrac1n\mathbf 1)$ have, for $i\ne j$,
#
# $$
# \langle v_i, v_j\rangle = n\Bigl(\langle e_i, e_j\rangle - \tfrac1n\langle e_i,\mathbf 1\rangle - \tfrac1n\langle\mathbf 1, e_j\rangle + \tfrac1{n^2}\langle\mathbf 1,\mathbf 1\rangle\Bigr)
# = n\Bigl(0 - \tfrac1n - \tfrac1n + \tfrac n{n^2}\Bigr) = -1, \tag{3.13}
# $$
#
# and all lie in the $(n-1)$-dimensional space orthogonal to $\mathbf 1$. They are the corners of a
# regular simplex; for $n = 3$ they are §1's three vectors at $120°$ (length $\sqrt{n-1} = \sqrt2$),
# in other coordinates. The checks: the last step of (3.13) with symbolic $n$; then, for
# $n = 2,\dots,8$, the lower bound computed from the ranks in (3.12) (with symbolic $p_i>0$) against
# the number of columns of an exact factor of the simplex's matrix $nI - \mathbf 1\mathbf 1^\top$,
# and its off-diagonal mismatch:

# %%
n_s = sp.Symbol("n", positive=True)
step_313 = sp.simplify(n_s * (0 - 1 / n_s - 1 / n_s + n_s / n_s**2))
bounds_meet = []
for n_ in range(2, 9):
    V_simplex = ex.simplex_factor(n_)
    mismatch = ex.offdiag_error(V_simplex, ex.ones_offdiag(n_, -1))
    bounds_meet.append((n_, ex.all_minus_one_lower_bound(n_), V_simplex.shape[1], mismatch))
step_313, all(low == cols == n_ - 1 and err == 0 for n_, low, cols, err in bounds_meet)

# %% [markdown]
# So $k^* = 1$ when every pair is $+1$ ($V = \mathbf 1$) and $k^* = n-1$ when every pair is $-1$:
# entries of the same size, opposite signs, and the widest possible gap.
#
# **Almost every $W$ needs at least many columns (cited, not proven here).** $V$ has $nk$ entries, but $V$
# and $VQ$ (any orthogonal $Q$, chapter 04) give the same $VV^\top$, which leaves $nk - k(k-1)/2$
# free numbers to match $n(n-1)/2$ off-diagonal entries. When there are fewer free numbers than
# entries, the reachable off-diagonals form a set of volume zero; this is a consequence of Sard's
# theorem [6], which we quote rather than prove. A $W$ drawn from any continuous distribution then
# almost never lies in the set, so it needs **at least** the smallest $k$ with enough free numbers.
# That $k$, checked against its definition (enough at $k$, too few at $k-1$) and against $n-1$:

# %%
counts = {n_: ex.dimension_count_k(n_) for n_ in (4, 10, 20, 50, 100, 1000)}


def free(n_, k):
    return n_ * k - k * (k - 1) // 2


checks = all(free(n_, k) >= n_ * (n_ - 1) // 2 > free(n_, k - 1) and k <= n_ - 1 for n_, k in counts.items())
counts, checks

# %% [markdown]
# For $n = 1000$ features a generic $W$ needs at least 956 columns. A small $k$ works only for
# special off-diagonals, such as those of a low-rank $V_0V_0^\top$, which is exactly what an FM
# assumes about the data.

# %% [markdown]
# ### What least-squares fits find
#
# Four off-diagonals with $n = 10$: a planted $V_0V_0^\top$ with an integer
# $V_0\in\mathbb Z^{10\times3}$, all $+1$, all $-1$, and random $\pm1$. Each comes with a proven lower
# bound (an exact block rank (3.11), or (3.12)) and a proven upper bound, certified by an exact $V$
# with that many columns (the planted $V_0$, $V = \mathbf 1$, the simplex (3.13), or the Schur
# completion (3.10)); both bounds are computed, and each certificate is checked here:

# %%
examples = ex.k_examples(10)
certified = {}
for name, (W, lower, upper, V_cert) in examples.items():
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
# number. For random signs the fits first match exactly at 7 columns, inside the proven range 5 to 9; the dimension
# count (6 for $n = 10$) does not apply there, since a $\pm1$ pattern is not drawn from a continuous
# distribution.

# %% [markdown]
# ## Key takeaways
#
# * An FM uses only the off-diagonal of $VV^\top$ (3.3). With the diagonal free, **every** symmetric
#   $W$ is reachable with at most $n-1$ columns (3.6, 3.10); "every $W$ is $VV^\top$" is false,
#   because $\operatorname{trace}(VV^\top) = \|V\|_F^2$ (3.5) (E8).
# * Diagonal dominance needs absolute values (E7); it gives an explicit $V$ (3.7) and is sufficient
#   for PD (3.8), not necessary; its $\|V\|^2$ is at most $n-1$ times the lower bound (3.9), and for
#   all $+1$ pairs, where the bound is reached, exactly that.
# * Blocks give lower bounds (3.11); the sign pattern decides: $k^* = 1$ for all $+1$, $n-1$ for all
#   $-1$ (3.12, 3.13: the simplex, three vectors at $120°$ for $n = 3$); almost every $W$ needs at
#   least the smallest $k$ with $nk - k(k-1)/2\ge n(n-1)/2$ (956 for $n = 1000$).

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
# The derivation is in the cell below; this cell checks it.
tau = sp.Symbol("tau", real=True)
thresholds = {}
for sign in (1, -1):
    eigenvalues = (ex.ones_offdiag(4, sign) + tau * sp.eye(4)).eigenvals()
    thresholds[sign] = max(sp.solve(sp.Eq(ev, 0), tau)[0] for ev in eigenvalues)  # the last one to reach 0
thresholds == {1: 1, -1: 3}

# %% [markdown] tags=["solution-text"]
# <details>
# <summary>Worked solution (click to read it)</summary>
#
# The matrix $\mathbf 1\mathbf 1^\top$ has eigenvalue
# $n$ on $\mathbf 1$ and $0$ on the $n-1$ directions orthogonal to it, so
#
# $$
# \pm(\mathbf 1\mathbf 1^\top - I):\quad \text{eigenvalues } \pm(n-1)\ \text{(once)},\ \mp1\ \text{($n-1$ times)};
# \qquad \lambda_{\min} = \begin{cases}-1 & (+)\\ -(n-1) & (-)\end{cases}
# $$
#
# By (3.6), $W + \tau I$ is PSD iff $\tau\ge-\lambda_{\min}$: $\tau\ge1$ for all $+1$ (dominance asks
# for 3) and $\tau\ge n-1 = 3$ for all $-1$, exactly the dominant value.
#
# </details>

# %% [markdown]
# ### Exercise 3.2 (medium)
#
# Three features with $W_{12} = W_{13} = +1$ and $W_{23} = -1$. **Predict before running:** does
# $k = 1$ suffice? If not, build an exact $V$ with $k = 2$ from §1's three vectors.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The derivation is in the cell below; this cell checks it.
W_mixed = sp.Matrix([[0, 1, 1], [1, 0, -1], [1, -1, 0]])
V_flip = sp.diag(-1, 1, 1) * V_120  # v_1 reversed
sign_product = W_mixed[0, 1] * W_mixed[0, 2] * W_mixed[1, 2]
sign_product, V_flip.shape[1], ex.offdiag_error(V_flip, W_mixed)

# %% [markdown] tags=["solution-text"]
# <details>
# <summary>Worked solution (click to read it)</summary>
#
# With $k = 1$ the argument of (3.1) gives
#
# $$
# (v_1v_2v_3)^2 = (v_1v_2)(v_1v_3)(v_2v_3) = (+1)(+1)(-1) = -1 < 0,
# $$
#
# impossible, so $k^*\ge2$. Reversing one vector flips the sign of its row and column of
# $VV^\top$: with $v_1\to-v_1$ in the $120°$ configuration,
# $\langle -v_1, v_2\rangle = \langle -v_1, v_3\rangle = +1$ and $\langle v_2, v_3\rangle = -1$. In general a
# $k = 1$ FM needs the product of the signs around every triangle of non-zero entries to be positive.
#
# </details>

# %% [markdown]
# ### Exercise 3.3 (hard)
#
# §3 showed that the dominant diagonal can cost $n-1$ times the minimum trace. Show that for all
# pairs $-1$ it is the cheapest: every PSD completion of $-(\mathbf 1\mathbf 1^\top - I)$ has trace
# $\ge n(n-1)$, the dominant completion's trace. Hint: write the completion as
# $P - \mathbf 1\mathbf 1^\top$ as in (3.12), and test PSD with $z_i = 1/p_i$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The derivation is in the cell below; this cell checks its two identities for n = 4.
nn = 4
ps = sp.symbols("p_1:5", positive=True)
zp = sp.Matrix([1 / pi for pi in ps])
S = sum(1 / pi for pi in ps)
step1 = sp.simplify((zp.T * (sp.diag(*ps) - sp.ones(nn, nn)) * zp)[0] - (S - S**2)) == 0
amhm = sum((ps[i] - ps[j]) ** 2 / (ps[i] * ps[j]) for i in range(nn) for j in range(i + 1, nn))
step2 = sp.simplify(sum(ps) * S - nn**2 - amhm) == 0
dominant = ex.dominant_completion(ex.ones_offdiag(nn, -1))
step1, step2, dominant.trace() == nn * (nn - 1), min(dominant.eigenvals()) >= 0

# %% [markdown] tags=["solution-text"]
# <details>
# <summary>Worked solution (click to read it)</summary>
#
# Let $S = \sum_i 1/p_i$. Testing PSD with $z_i = 1/p_i$:
#
# $$
# 0 \le z^\top(P - \mathbf 1\mathbf 1^\top)z = \sum_i p_i\frac1{p_i^2} - \Bigl(\sum_i\frac1{p_i}\Bigr)^2 = S - S^2
# \quad\Longrightarrow\quad S\le1 .
# $$
#
# Arithmetic against harmonic mean: expanding the product,
#
# $$
# \Bigl(\sum_ip_i\Bigr)\Bigl(\sum_i\frac1{p_i}\Bigr) - n^2 = \sum_{i<j}\Bigl(\frac{p_i}{p_j} + \frac{p_j}{p_i} - 2\Bigr) = \sum_{i<j}\frac{(p_i - p_j)^2}{p_ip_j}\ \ge 0,
# $$
#
# so $\sum_ip_i\ge n^2/S\ge n^2$ and $\operatorname{trace}(W+\Delta) = \sum_i(p_i - 1)\ge n^2 - n$.
# The dominant completion has every $p_i = n$: equality.
#
# </details>

# %% [markdown]
# ### Exercise 3.4 (easy, your turn)
#
# Write the test of strict diagonal dominance for a symmetric tensor `M`: return `True` when $M_{ii} > \sum_{j\ne i}\lvert M_{ij}\rvert$ for every row, else `False`.
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["is_dominant"].hint()` gives a hint.


# %% fmedu={"stub": "def my_is_dominant(M):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_is_dominant(M):
    off = M.abs().sum(1) - M.diagonal().abs()
    return bool((M.diagonal() > off).all())


# %%
EXERCISES["is_dominant"].check(my_is_dominant).correct

# %% [markdown]
# ### Exercise 3.5 (medium, your turn)
#
# Write the lower bound (3.9) on the trace of every PSD completion: for a symmetric sympy matrix `W`,
# return $2\sum_{i<j}\lvert W_{ij}\rvert/(n-1)$ as an exact sympy number (the diagonal of `W` is ignored).
# The cell after yours checks it on four exact matrices and names the mistake when it recognises it;
# `EXERCISES["trace_lower_bound"].hint()` gives a hint.


# %% fmedu={"stub": "def my_trace_lower_bound(W):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_trace_lower_bound(W):
    n = W.rows
    return 2 * sum(abs(W[i, j]) for i in range(n) for j in range(i + 1, n)) / (n - 1)


# %%
EXERCISES["trace_lower_bound"].check(my_trace_lower_bound).correct

# %% [markdown]
# ## Going further (optional)
#
# * **The cheapest completion in general.** The PSD completion of smallest trace is a semidefinite
#   program, an optimisation over PSD matrices with linear constraints [7]; (3.9) is a simple lower
#   bound on its value.
# * **Sard's theorem** [6] says that the image of the points where a smooth map's derivative is not
#   onto has volume zero; it is what makes the dimension count of §4 a statement about almost
#   every $W$.
#
# ## Symbols of this chapter
#
# | symbol | meaning |
# |---|---|
# | $W$ | the interaction matrix: symmetric, $W_{ij}$ the weight of the pair $i\ne j$, zero diagonal |
# | $\Delta$, $W+\Delta$ | a diagonal we choose; a completion of $W$ |
# | $k^*$ | the fewest columns of a $V$ that matches $W$ off the diagonal |
# | $e_i$, $\mathbf 1$ | the $i$-th unit vector; the all-ones vector |
#
# The research notes [3] write $M$ for our $W$ and $n_f$ for $k$; the SystemDS reference page [2]
# writes $W$ both for the linear weights (our $w$) and, in its paragraph on expressiveness, for the
# interaction matrix.

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

catch_rows = catch_table("03")
print(format_catch_table(catch_rows))
every_check_catches(catch_rows)

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
