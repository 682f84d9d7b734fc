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
# # 04 · User–item data and identifiability
#
# Recommender data has a special shape: every sample is one user and one item. Chapter 03 asked
# which interaction matrices $VV^\top$ can reach in general; this chapter asks the sharper question
# for user–item data (exactly which tables of predictions can a $k$-column FM produce?) and then
# which of the learned numbers the predictions determine at all: is $V$ determined by the data, and
# does the usual penalty $\|V\|^2$ penalise the model's predictions or only an arbitrary choice among
# equivalent parameters?
#
# Symbols follow the course [notation](../README.md#notation) table and chapter 03's table.

# %% [markdown]
# ## What you will learn
#
# * For user–item data: a $k$-column FM reproduces a full interaction table $B$ exactly **iff**
#   $\min_{a,b}\operatorname{rank}(B - a\mathbf 1^\top - \mathbf 1b^\top)\le k$, because the linear
#   terms absorb row and column effects.
# * What the predictions determine: $V$ only up to rotations (and more for user–item data), so
#   neither $\|V\|_F^2$ nor $\|B\|_F^2$ is a function of the predictions, while $JBJ$ is.
#
# ## What you need
#
# * Chapter 03, §1 (the tiny example: three users, four movies, $k = 1$) and its symbols: $n_u$, $n_i$,
#   $V_u$, $V_i$, the user–item block $B$, row and column effects $a$, $b$, the centring matrix $J$.
# * Rank inequalities and positive semidefinite matrices, as in chapter 03.

# %%
import matplotlib.pyplot as plt
import sympy as sp
import torch

import fmedu
from fmedu import expressiveness as ex
from fmedu import symbolic
from fmedu import user_item as ui
from fmedu.exercises import EXERCISES
from fmedu.figures import nb04
from fmedu.notebook import setup
from fmedu.testing import EPS64, F64

setup()

# %% [markdown]
# The tiny example of chapter 03 again: three users, four movies, one-hot samples $x = e_u + e_{3+i}$,
# an FM with $k = 1$, and the rank-3 table $B_{\text{want}}$ it reproduces.

# %%
n_u, n_i = 3, 4
V_tiny = sp.Matrix([1, 2, -1, 2, 0, 1, -1])  # rows: Ann, Ben, Cleo, movie 0, 1, 2, 3; k = 1
w_tiny = sp.Matrix([0, 1, 3, 1, -2, 0, 2])
w0_tiny = 0
Y_tiny = ui.user_item_table_exact(w0_tiny, w_tiny, V_tiny, n_u)  # its 3 × 4 table of predictions
Y_tiny

# %%
B_want = sp.Matrix([[3, -2, 1, 1], [6, -1, 3, 1], [2, 1, 2, 6]])
block = V_tiny[:3, :] * V_tiny[3:, :].T  # the FM's user–movie block V_u V_iᵀ
B_want.rank(), block.rank(), Y_tiny == B_want

# %% [markdown]
# ## 1 · User–item data: exactly which tables?
#
# Back to the data of chapter 03, §1: every sample is $x = e_u + e_{n_u+i}$, one user and one item. Users are
# features $0,\dots,n_u-1$, items $n_u,\dots,n-1$.
#
# ### Only the user–item block matters
#
# With a symbolic symmetric $W$ ($n_u = 2$, $n_i = 3$), the pairwise term at every user–item sample
# equals the single entry $W_{u,\,n_u+i}$:

# %%
n_u, n_i = 2, 3
W_ui = sp.Matrix(5, 5, lambda i, j: sp.Symbol(f"W_{min(i, j)}_{max(i, j)}", real=True))
all(
    sp.expand(sum(W_ui[f, g] * x[f] * x[g] for f in range(5) for g in range(f + 1, 5)) - W_ui[u, n_u + i]) == 0
    for u in range(n_u)
    for i in range(n_i)
    for x in [ui.one_hot_pair(u, i, n_u, n_i)]
)

# %% [markdown]
# The user–user block, the item–item block and the diagonal are all free; only the block $B$ with
# $B_{ui} = W_{u,\,n_u+i}$ is used. The FM's block is $V_uV_i^\top$, a product of two *different*
# matrices: no symmetry, no PSD condition, so $B$ needs only a rank factorisation. The full
# model's table of predictions is
#
# $$\hat Y_{ui} = w_0 + w_u + w_{n_u+i} + B_{ui}.$$
#
# ### The linear terms absorb row and column effects
#
# Subtract a row effect $a$ and a column effect $b$ from the block and add them to the linear
# weights: $B\to B - a\mathbf 1^\top - \mathbf 1b^\top$, $w_u\to w_u + a_u$, $w_{n_u+i}\to w_{n_u+i} + b_i$.
# The table does not change. Exact, with everything symbolic ($n_u = 2$, $n_i = 3$):

# %%
B_s = sp.Matrix(2, 3, lambda u, i: sp.Symbol(f"B_{u}{i}", real=True))
a_s, b_s = sp.Matrix(sp.symbols("a_0:2", real=True)), sp.Matrix(sp.symbols("b_0:3", real=True))
w_s = sp.Matrix(sp.symbols("w_1:6", real=True))
w0_s = sp.Symbol("w_0", real=True)
shifted_B = B_s - a_s * sp.ones(1, 3) - sp.ones(2, 1) * b_s.T
shifted_w = w_s + a_s.col_join(b_s)
(ui.full_model_table(w0_s, shifted_w, shifted_B) - ui.full_model_table(w0_s, w_s, B_s)).is_zero_matrix

# %% [markdown]
# This gives the criterion. **A user–item FM with $k$ columns (and its own $w_0$, $w$) reproduces
# the full model with block $B$ on every pair iff**
#
# $$\min_{a,\,b}\ \operatorname{rank}\bigl(B - a\mathbf 1^\top - \mathbf 1b^\top\bigr)\ \le\ k .$$
#
# *If:* take $a, b$ reaching the minimum, factor $B - a\mathbf 1^\top - \mathbf 1b^\top = V_uV_i^\top$
# with $k$ columns, and move $a, b$ into $w$ as above. *Only if:* if the FM's table
# $w_0' + w_u' + w_{n_u+i}' + (V_uV_i^\top)_{ui}$ equals the full model's, then
# $V_uV_i^\top = B - a\mathbf 1^\top - \mathbf 1b^\top$ with $a_u = w_u' - w_u + w_0' - w_0$ and
# $b_i = w_{n_u+i}' - w_{n_u+i}$, and a product through $k$ columns has rank $\le k$.
#
# ### Computing the minimum: double centring
#
# The centring matrix $J = I - \mathbf 1\mathbf 1^\top/m$ subtracts the mean: $J\mathbf 1 = 0$, so
# $J(B - a\mathbf 1^\top - \mathbf 1b^\top)J = JBJ$ for **every** $a, b$ (exact below). Since
# multiplying cannot raise the rank, every candidate has rank $\ge\operatorname{rank}(JBJ)$. And
# $JBJ$ is itself a candidate: $JBJ = B - a^*\mathbf 1^\top - \mathbf 1b^{*\top}$ with $a^*$ the row
# means minus the grand mean and $b^*$ the column means (`row_column_effects`, exact below). So
#
# $$k^*_{\text{user–item}}(B) = \operatorname{rank}(JBJ).$$

# %%
a_star, b_star = ui.row_column_effects(B_s)
(
    sp.simplify(ui.double_centre(shifted_B) - ui.double_centre(B_s)).is_zero_matrix,
    sp.simplify(B_s - a_star * sp.ones(1, 3) - sp.ones(2, 1) * b_star.T - ui.double_centre(B_s)).is_zero_matrix,
)

# %% [markdown]
# ### The tiny example, solved
#
# $B_{\text{want}}$ of chapter 03, §1 has rank 3 but $\operatorname{rank}(JB_{\text{want}}J) = 1$, so $k = 1$
# suffices. `user_item_fm` builds the FM from the proof (a rational rank factorisation of $JBJ$,
# the effects moved into $w$); its table equals the full model's with $w_0 = 0$, $w = 0$:

# %%
w0_fm, w_fm, V_fm = ui.user_item_fm(0, sp.zeros(7, 1), B_want)
(
    B_want.rank(),
    ui.user_item_min_k(B_want),
    V_fm.shape[1],
    ui.user_item_table_exact(w0_fm, w_fm, V_fm, 3) == ui.full_model_table(0, sp.zeros(7, 1), B_want),
)

# %% [markdown]
# So the rank of the interaction table is the wrong measure: what an FM must factor is the table
# with its row and column effects removed.
#
# ### At scale, in floating point
#
# A random $30\times40$ block of the form (rank 5) + row effect + column effect has rank 7, but
# $JBJ$ has rank 5. The FM with $k = 5$ from `user_item_fm` (an SVD factor of $JBJ$) reproduces the
# full model on all 1200 pairs, computed with `fmedu.predict_sparse`, within a rounding bound of
# $64\max(n_u, n_i)\,\varepsilon$ times the size of the terms:

# %%
gen = torch.Generator().manual_seed(5)
n_u, n_i = 30, 40
low = torch.randn(n_u, 5, dtype=F64, generator=gen) @ torch.randn(5, n_i, dtype=F64, generator=gen)
B = low + torch.randn(n_u, 1, dtype=F64, generator=gen) + torch.randn(1, n_i, dtype=F64, generator=gen)
w0, w = torch.randn((), dtype=F64, generator=gen), torch.randn(n_u + n_i, dtype=F64, generator=gen)
w0_f, w_f, V_f = ui.user_item_fm(w0, w, B)
err = (fmedu.predict_sparse(ui.user_item_idx(n_u, n_i), w0_f, w_f, V_f) - ui.full_interaction_predict(w0, w, B)).abs()
scale = w0.abs() + 2 * w_f.abs().max() + B.abs().max()
bound = 64 * max(n_u, n_i) * EPS64 * scale
int(torch.linalg.matrix_rank(B)), ui.user_item_min_k(B), V_f.shape[1], bool(err.max() <= bound)

# %% [markdown]
# ### What the restriction costs, in parameters
#
# On user–item data the full model has $1 + n_u + n_i + n_un_i$ parameters, the FM $1 + n + nk$ with
# $n = n_u + n_i$. Exact counts for a small case, MovieLens 100k sizes (943 users, 1682 movies [1],
# $k = 20$) and a large catalogue:

# %%
param_rows = [ui.param_counts(*sizes) for sizes in ((10, 12, 3), (943, 1682, 20), (100_000, 10_000, 64))]
ml = param_rows[1]
param_rows, 28 * ml["fm"] < ml["full"] < 29 * ml["fm"]

# %% [markdown]
# At MovieLens sizes the FM has between 28 and 29 times fewer parameters. The price: it reproduces
# a full model exactly only when $\operatorname{rank}(JBJ)\le k$. A generic table has
# $\operatorname{rank}(JBJ) = \min(n_u, n_i) - 1$ ($J$ removes one dimension on each side), 942 at
# MovieLens sizes, far above $k = 20$; an FM bets that the real table is close to one of low
# centred rank. The generic rank, exact for an arbitrary rational $10\times12$ block:

# %%
B_random = sp.Matrix(10, 12, lambda u, i: sp.Rational((7 * u + 3 * i * i + u * i) % 11 - 5, 1 + (u + 2 * i) % 4))
B_random.rank(), ui.user_item_min_k(B_random)

# %% [markdown]
# ## 2 · What the predictions determine
#
# Training only ever sees predictions. Any change of parameters that leaves every prediction the
# same is invisible to the data; what such changes move is not determined by the data, and a
# regulariser that depends on it expresses a preference among equivalent models.
#
# ### Rotations, for any data
#
# For an orthogonal $Q$ ($Q^\top Q = I$), $(VQ)(VQ)^\top = VQQ^\top V^\top = VV^\top$: every $W_{ij}$ and
# hence every prediction is unchanged. An exactly orthogonal rational $Q$ comes from Pythagorean
# triples: $3^2+4^2 = 5^2$ gives a rotation by an angle $\varphi$ with $\cos\varphi = 3/5$, $\sin\varphi = 4/5$
# (`rational_rotation`). The product of two such rotations in different planes, and a fully symbolic
# $V$ ($n = 4$, $k = 3$):

# %%
Q = ui.rational_rotation(3, 0, 1, 2, 1) * ui.rational_rotation(3, 1, 2, 3, 2)
_, _, _, V_sym = symbolic.fm_symbols(4, 3)
Q, (Q.T * Q - sp.eye(3)).is_zero_matrix, sp.expand(V_sym * Q * (V_sym * Q).T - V_sym * V_sym.T).is_zero_matrix

# %% [markdown]
# ### User–item data: any invertible $R$
#
# On user–item data only $V_uV_i^\top$ is used, so $V_u\to V_uR$, $V_i\to V_iR^{-\top}$ works for any
# invertible $R$, orthogonal or not: $(V_uR)(V_iR^{-\top})^\top = V_uRR^{-1}V_i^\top$. Exact with a
# rational $R$ that is not orthogonal:

# %%
V_u_s, V_i_s = V_sym[:2, :], V_sym[2:, :]
R = sp.Matrix([[2, 1, 0], [0, 1, 0], [sp.Rational(1, 3), 0, 1]])
(R.T * R == sp.eye(3), sp.expand((V_u_s * R) * (V_i_s * R.inv().T).T - V_u_s * V_i_s.T).is_zero_matrix)

# %% [markdown]
# ### User–item data: translations
#
# Shift every user vector by $s$ and every item vector by $t$:
# $(v_u + s)\cdot(v_i + t) = v_u\cdot v_i + v_u\cdot t + s\cdot v_i + s\cdot t$. The extra terms depend on
# the user alone, the item alone, or neither, so $w_u - v_u\cdot t$, $w_{n_u+i} - s\cdot v_i$ and
# $w_0 - s\cdot t$ absorb them (`translate_user_item`). Exact for a fully symbolic FM ($n_u = n_i = 2$,
# $k = 3$), all four pairs:

# %%
_, w0_sym, w_sym, _ = symbolic.fm_symbols(4, 3)
s_sym = sp.Matrix([sp.symbols("s_1:4", real=True)])
t_sym = sp.Matrix([sp.symbols("t_1:4", real=True)])
moved = ui.translate_user_item(w0_sym, w_sym, V_sym, 2, s_sym, t_sym)
(ui.user_item_table_exact(*moved, 2) - ui.user_item_table_exact(w0_sym, w_sym, V_sym, 2)).is_zero_matrix

# %% [markdown]
# Translations change the block: $B\to B + V_ut\mathbf 1^\top + \mathbf 1(V_is)^\top + (s\cdot t)\mathbf 1\mathbf 1^\top$, a
# row effect plus a column effect, exactly the freedom of §1.
#
# ### Consequence: neither $\|V\|_F^2$ nor $\|B\|_F^2$ is a function of the predictions
#
# The usual regulariser $\|V\|_F^2$ changes under $R$ and under translations. The research notes
# suggest $\sum_{u,i}(v_u\cdot v_i)^2$ as more natural; that is $\|V_uV_i^\top\|_F^2 = \|B\|_F^2$, which
# is unchanged by $Q$ and $R$, **but not by translations**. On the tiny FM of chapter 03, §1, shifted by
# $s = t = 1$, exact:

# %%
w0_t, w_t, V_t = ui.translate_user_item(w0_tiny, w_tiny, V_tiny, 3, [1], [1])
block_t = V_t[:3, :] * V_t[3:, :].T
(
    ui.user_item_table_exact(w0_t, w_t, V_t, 3) == Y_tiny,
    (ui.frobenius_sq(V_tiny), ui.frobenius_sq(V_t)),
    (ui.frobenius_sq(block), ui.frobenius_sq(block_t)),
    (ui.frobenius_sq(ui.double_centre(block)), ui.frobenius_sq(ui.double_centre(block_t))),
)

# %% [markdown]
# Same 12 predictions; $\|V\|_F^2$ goes from 12 to 27 and $\|B\|_F^2$ from 36 to 182, while
# $\|JBJ\|_F^2 = 70/3$ stays. That last one is no accident: the predictions determine $JBJ$. The
# table is $\hat Y = w_0\mathbf 1\mathbf 1^\top + w_{\text{users}}\mathbf 1^\top + \mathbf 1w_{\text{items}}^\top + B$,
# and $J$ removes everything but $B$: $J\hat YJ = JBJ$, exact with everything symbolic:

# %%
(ui.double_centre(ui.full_model_table(w0_s, w_s, B_s)) - ui.double_centre(B_s)).applyfunc(sp.simplify).is_zero_matrix

# %% [markdown]
# So $\|JBJ\|_F^2$ is a regulariser that depends on the predictions only (Exercise 4.2: it is the
# smallest $\|B'\|_F^2$ over all blocks $B'$ giving the same predictions). The figure follows a
# planted user–item FM ($n_u = 10$, $n_i = 12$, $k = 3$) along two families of parameters with
# identical predictions: (a) $V_uR_\theta$, $V_iR_\theta^{-\top}$ with $R_\theta = \operatorname{diag}(\theta, 1/\theta, 1)$;
# (b) translations $s = \theta s_0$, $t = \theta t_0$ absorbed by $w$. The values span two orders
# of magnitude, hence the log scales.

# %%
reparam, shifts = ui.reparametrisation_rows(), ui.translation_rows()
nb04.plot_regularisers(reparam, shifts)
plt.show()

# %% [markdown]
# In (a) $\|B\|_F^2$ is flat and $\|V\|_F^2$ varies by a factor of more than 40, with its minimum
# $2\|B\|_*$ (dashed; $\|B\|_*$ is the sum of the singular values of $B$, see "Going further") at
# $\theta = 1$. That the minimum sits at $\theta = 1$ holds by construction: the family starts from
# the balanced factor of the SVD of $B$, which is the factorisation of smallest $\|V\|_F^2$. In (b) both $\|V\|_F^2$ and $\|B\|_F^2$ vary
# while $\|JBJ\|_F^2$ is flat. The checks behind both panels: the predictions never move by more
# than $10^{-12}$ times their size, the flat curves are flat to a relative $10^{-12}$, and
# $\|V\|_F^2$ in (a) and $\|B\|_F^2$ in (b) vary by factors above 40 and 10:


# %%
def spread(rows, key):
    values = [r[key] for r in rows]
    return max(values) / min(values)


(
    all(r["max_prediction_change"] <= 1e-12 * r["prediction_scale"] for r in reparam + shifts),
    spread(reparam, "B_frobenius_sq") - 1 <= 1e-12 and spread(shifts, "JBJ_frobenius_sq") - 1 <= 1e-12,
    spread(reparam, "frobenius_sq") > 40 and spread(shifts, "B_frobenius_sq") > 10,
)

# %% [markdown]
# ### Data where every sample has $d$ non-zeros
#
# The translation trick works beyond user–item data whenever **every sample is binary (0/1) with
# the same number $d$ of non-zeros**: shifting every $v_a$ by $c$ changes the pairwise term of a sample with support
# $S$ by $(d-1)\sum_{a\in S}v_a\cdot c + \binom d2\|c\|^2$, absorbed by $w_a - (d-1)\,v_a\cdot c$ and
# $w_0 - \binom d2\|c\|^2$ (`translate_fixed_nnz`). Exact for $n = 5$ and every support of size
# $d = 2$ and $d = 3$; last, the correction for $d = 2$ applied to a triple:

# %%
x5, w0_5, w_5, V_5 = symbolic.fm_symbols(5, 3)
c_sym = sp.Matrix([sp.symbols("c_1:4", real=True)])


def unchanged(d, support):
    x = [1 if f in support else 0 for f in range(5)]
    moved = ui.translate_fixed_nnz(w0_5, w_5, V_5, c_sym, d)
    return sp.expand(symbolic.fm_prediction(x, *moved) - symbolic.fm_prediction(x, w0_5, w_5, V_5)) == 0


(
    all(unchanged(2, S) for S in [(0, 1), (0, 2), (1, 4), (3, 4)]),
    all(unchanged(3, S) for S in [(0, 1, 2), (0, 3, 4), (1, 2, 4)]),
    unchanged(2, (0, 1, 2)),
)

# %% [markdown]
# Binary matters: with values other than 1 the shift changes the pairwise term by
# $\sum_{a<b}x_ax_b(v_a + v_b)\cdot c + \dots$, which the per-feature correction $w_a - (d-1)\,v_a\cdot c$
# no longer matches. The sample $x = (2, 3, 0, 0, 0)$ has $d = 2$ non-zeros, and the $d = 2$
# correction changes its prediction:

# %%
x_23 = [2, 3, 0, 0, 0]
moved_2 = ui.translate_fixed_nnz(w0_5, w_5, V_5, c_sym, 2)
sp.expand(symbolic.fm_prediction(x_23, *moved_2) - symbolic.fm_prediction(x_23, w0_5, w_5, V_5)) != 0

# %% [markdown]
# The correction depends on $d$ (and needs 0/1 values), so data that mixes sample sizes breaks
# this symmetry, leaving only the rotations.
#
# ### What a fit recovers
#
# We plant an FM ($k = 3$), compute its noiseless predictions, fit a fresh FM ($k = 3$, float64,
# full-batch L-BFGS, seeds 0, 1, 2) and compare, in three data settings: **user-item** (all
# $10\times12$ user–item pairs), **pairs** (all pairs of $n = 10$ features: every sample has $d = 2$)
# and **pairs+triples** (all pairs and all triples: $d = 2$ and $d = 3$). "$V$ up to rotation" compares
# after the rotation that brings the fitted $V$ closest to the planted one (it has a closed form,
# the orthogonal Procrustes solution [4]). A quantity counts as recovered when its largest
# absolute error is at most $10^{-6}$. The errors span about 13 orders of magnitude, hence the log
# scale.

# %%
recovery = nb04.recovery_rows()
nb04.plot_recovery(recovery)
plt.show()

# %% [markdown]
# Bars below the dashed line are recovered; "n/a" marks quantities that do not exist for that data
# ($B$ and $JBJ$ belong to user–item data). Per setting and quantity, recovered by every seed
# (`True`), by none (`False`):


# %%
def recovered(setting, quantity):
    hits = {
        r["max_abs_error"] <= nb04.RECOVERED_TOL
        for r in recovery
        if r["setting"] == setting and r["quantity"] == quantity and r["applies"]
    }
    return hits.pop() if len(hits) == 1 else "mixed"


{
    setting: {
        q: recovered(setting, q) for q in ui.RECOVERY_QUANTITIES if not (q in ("B", "JBJ") and setting != "user-item")
    }
    for setting in nb04.RECOVERY_SETTINGS
}

# %% [markdown]
# This is observed, not proven, and agrees with the symmetries: every fit reproduces the
# predictions. With user–item data, $V$, $w$ and $B$ are not recovered, $JBJ$ is. With pairs only
# (fixed $d$), $V$ is not recovered even up to rotation: the translations. Once samples of
# different sizes are mixed, $w$ and $V$ up to rotation are recovered, and $V$ itself still is not.
#
# %% [markdown]
# ## Key takeaways
#
# * On user–item data the linear terms absorb row and column effects: a $k$-column FM reproduces the
#   full model iff $\operatorname{rank}(JBJ) = \min_{a,b}\operatorname{rank}(B - a\mathbf 1^\top - \mathbf 1b^\top)\le k$,
#   so a rank-3 table can need only $k = 1$.
# * Predictions determine $V$ only up to rotations (and, for user–item data, invertible $R$ and
#   translations): neither $\|V\|_F^2$ nor $\|B\|_F^2$ is a function of the predictions; $JBJ$ is.

# %% [markdown]
# ## Exercises
#
# ### Exercise 4.1 (easy)
#
# In chapter 03, §1, Ann's liking for movie 0 goes up by one: $B_{\text{want}}[0,0]$ changes from 3 to 4.
# **Predict before running:** can a $k = 1$ FM still reproduce the full model? If not, what $k$ is
# needed? Then build the FM and check it.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# J(B + e0 e0ᵀ)J = JBJ + (J e0)(J e0)ᵀ adds a second rank-one piece, which is not in the span of the first
# (the old JBJ is proportional to (1/3, 4/3, −5/3)(3/2, −1/2, 1/2, −3/2)ᵀ, and J e0 has a different direction).
B_new = B_want.copy()
B_new[0, 0] += 1
k_new = ui.user_item_min_k(B_new)
w0_n, w_n, V_n = ui.user_item_fm(0, sp.zeros(7, 1), B_new)
# By §1's criterion no k = 1 FM works now; k = 2 does, exactly.
k_new, V_n.shape[1], ui.user_item_table_exact(w0_n, w_n, V_n, 3) == ui.full_model_table(0, sp.zeros(7, 1), B_new)

# %% [markdown]
# ### Exercise 4.2 (medium)
#
# Among all blocks $B' = B - a\mathbf 1^\top - \mathbf 1b^\top$ that give the same predictions as $B$ (with $w$
# adjusted), show that $JBJ$ has the smallest $\|B'\|_F^2$. Check it on the tiny example: no
# translation of the FM of chapter 03, §1 can bring $\|B\|_F^2$ below $70/3$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Write B' = JBJ + E with E = (B − JBJ) − a1ᵀ − 1bᵀ, itself a row effect plus a column effect. JBJ has zero row
# and column sums, so ⟨JBJ, a1ᵀ⟩ = aᵀ(JBJ)1 = 0 and ⟨JBJ, 1bᵀ⟩ = 0: Pythagoras gives ‖B'‖² = ‖JBJ‖² + ‖E‖².
Bp = B_s - a_s * sp.ones(1, 3) - sp.ones(2, 1) * b_s.T
JBJ_s = ui.double_centre(B_s)
pythagoras = sp.expand(ui.frobenius_sq(Bp) - ui.frobenius_sq(JBJ_s) - ui.frobenius_sq(Bp - JBJ_s)) == 0
# The translations of the tiny FM (k = 1, B = V_u V_iᵀ with V_u = (1, 2, −1)ᵀ, V_i = (2, 0, 1, −1)ᵀ) give
# ‖B‖² = ‖V_u + s1·1‖²·‖V_i + t1·1‖², and completing the squares
# shows the excess over 70/3 = ‖JBJ‖² as a product of two positive factors minus their minimum:
s1, t1 = sp.symbols("s1 t1", real=True)
_, _, V_st = ui.translate_user_item(w0_tiny, w_tiny, V_tiny, 3, [s1], [t1])
excess = ui.frobenius_sq(V_st[:3, :] * V_st[3:, :].T) - sp.Rational(70, 3)
squares = (sp.Rational(14, 3) + 3 * (s1 + sp.Rational(2, 3)) ** 2) * (
    5 + 4 * (t1 + sp.Rational(1, 2)) ** 2
) - sp.Rational(70, 3)
# Both factors are at least their constants, so the excess is ≥ 0, and it is 0 at s1 = −2/3, t1 = −1/2 (the means).
pythagoras, sp.expand(excess - squares) == 0, excess.subs({s1: -sp.Rational(2, 3), t1: -sp.Rational(1, 2)})

# %% [markdown]
# ## Going further (optional)
#
# * **The nuclear norm.** Among all factorisations $B = V_uV_i^\top$, the smallest
#   $\|V_u\|_F^2 + \|V_i\|_F^2$ is $2\|B\|_*$, twice the sum of the singular values of $B$ (the
#   *nuclear norm*), reached by the balanced factor $V_u = U\sqrt\Sigma$, $V_i = G\sqrt\Sigma$ of the
#   SVD $B = U\Sigma G^\top$ [2]. So on user–item data, $\lambda\|V\|_F^2$ at its best factorisation
#   penalises $2\lambda\|B\|_*$, a penalty known to favour low rank [3]. Panel (a) of the regulariser
#   figure shows it; the check: $\|V\|_F^2\ge2\|B\|_*$ all along the family, with equality (to a
#   relative $10^{-12}$) at $\theta = 1$.

# %%
at_one = min(reparam, key=lambda row: abs(row["theta"] - 1))
(
    all(r["frobenius_sq"] >= r["two_nuclear_norm"] * (1 - 1e-12) for r in reparam),
    abs(at_one["frobenius_sq"] - at_one["two_nuclear_norm"]) <= 1e-12 * at_one["two_nuclear_norm"],
)

# %% [markdown]
# * **When is the diagonal pinned?** If samples of different sizes pin the off-diagonal of a rank-$k$
#   $VV^\top$, they also pin its diagonal whenever, for each $i$, some invertible $k\times k$ block
#   $(VV^\top)_{IJ}$ avoids $i$ and the diagonal ($I\cap J = \emptyset$): the $(k+1)$-minor on
#   $\{i\}\cup I$, $\{i\}\cup J$ must vanish and is affine in the $(i,i)$ entry with coefficient
#   $\pm\det(VV^\top)_{IJ}\ne0$. Then $VV^\top$ is determined and $V$ is determined up to a rotation,
#   as the recovery experiment observed. Exact for an integer $V_0$ with $n = 7$, $k = 3$:

# %%
_, V0_int = ex.planted_offdiag(7, 3, seed=1)
ui.diagonal_pinned_exact(V0_int * V0_int.T, 3)

# %% [markdown]
# ### Exercise 4.3 (medium, your turn)
#
# Write the fewest columns $k$ with which a user–item FM (with its own $w_0$ and $w$) reproduces a table `B` (a sympy matrix) exactly, as an `int`.
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["user_item_min_k"].hint()` gives a hint.


# %% jupyter={"source_hidden": true} tags=["your-turn"] fmedu={"stub": "def my_user_item_min_k(B):\n    raise NotImplementedError  # your code here\n"}
def my_user_item_min_k(B):
    n_u, n_i = B.shape
    J_u = sp.eye(n_u) - sp.ones(n_u, n_u) / n_u
    J_i = sp.eye(n_i) - sp.ones(n_i, n_i) / n_i
    return int((J_u * B * J_i).rank())


# %%
EXERCISES["user_item_min_k"].check(my_user_item_min_k).correct

# %% [markdown]
# ## References
#
# 1. F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context," *ACM Transactions
#    on Interactive Intelligent Systems* 5(4), article 19, 2015.
# 2. N. Srebro, J. D. M. Rennie and T. S. Jaakkola, "Maximum-Margin Matrix Factorization," in
#    *Advances in Neural Information Processing Systems 17 (NIPS)*, 2004.
# 3. B. Recht, M. Fazel and P. A. Parrilo, "Guaranteed Minimum-Rank Solutions of Linear Matrix
#     Equations via Nuclear Norm Minimization," *SIAM Review* 52(3), pp. 471–501, 2010.
# 4. P. H. Schönemann, "A generalized solution of the orthogonal Procrustes problem,"
#     *Psychometrika* 31(1), pp. 1–10, 1966.

# %% [markdown]
# [← Previous: 03 · What an FM can express](03_expressiveness.ipynb) · [Course index](00_index.ipynb) · [Next: 05 · The step-size bound of stochastic proximal point →](05_step_size_bound.ipynb)
