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
# Symbols follow the course [notation](../README.md#notation) table; the ones this chapter adds are
# introduced where they first appear and collected at the end.

# %% [markdown]
# ## What you will learn
#
# * For user–item data: a $k$-column FM reproduces a full table of pairwise effects $B$ exactly
#   **iff** $\min_{a,b}\operatorname{rank}(B - a\mathbf 1^\top - \mathbf 1b^\top)\le k$, because the linear
#   terms absorb row and column effects; the minimum is the rank of the double-centred table.
# * What the predictions determine: $V$ only up to rotations (and more for user–item data), so
#   neither $\|V\|_F^2$ nor $\|B\|_F^2$ is a function of the predictions, while the double-centred
#   table is.
#
# ## What you need
#
# * Chapter 01: the FM (1.1), and the one-hot encoding of a (user, item) pair.
# * Chapter 03: the interaction matrix $W$ ($W_{ij}$ the weight of the pair $i\ne j$), the fact that
#   the FM reads only its off-diagonal (3.3), and the rank inequalities listed there.

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
# ## 1 · User–item data: exactly which tables?
#
# There are $n_u$ users and $n_i$ items, $n = n_u + n_i$ features: users are features
# $0,\dots,n_u-1$, items $n_u,\dots,n-1$. A sample "user $u$ meets item $i$" is the one-hot pair
# $x = e_u + e_{n_u+i}$. Write $B$ for the $n_u\times n_i$ **user–item block** of the interaction
# matrix, $B_{ui} = W_{u,\,n_u+i}$.
#
# ### A tiny example, backwards
#
# Chapter 01 computed the predictions of a given FM. Here we go the other way. A model with a free
# weight for every (user, item) pair and no linear terms has learned the table $B_{\text{want}}$
# below for three users and four items. How many columns does an FM need to reproduce it exactly?
# The rank of $B_{\text{want}}$ suggests 3. Yet the FM below with $k = 1$ (one number per user and
# per item, plus linear weights) predicts exactly $B_{\text{want}}$:

# %%
B_want = sp.Matrix([[3, -2, 1, 1], [6, -1, 3, 1], [2, 1, 2, 6]])
V_tiny = sp.Matrix([1, 2, -1, 2, 0, 1, -1])  # rows: users 0, 1, 2, then items 0, 1, 2, 3; k = 1
w_tiny = sp.Matrix([0, 1, 3, 1, -2, 0, 2])
w0_tiny = 0
Y_tiny = ui.user_item_table_exact(w0_tiny, w_tiny, V_tiny, 3)  # the FM's definition at each one-hot pair
block = V_tiny[:3, :] * V_tiny[3:, :].T  # its user–item block V_u V_iᵀ
B_want.rank(), block.rank(), Y_tiny == B_want

# %% [markdown]
# A rank-1 interaction block produced a rank-3 table. This section explains why and turns it into an
# exact criterion.
#
# ### Only the user–item block matters
#
# In the pair sum of a one-hot pair only one product $x_fx_g$ is non-zero:
#
# $$
# \sum_{f<g}W_{fg}x_fx_g\Big|_{x = e_u + e_{n_u+i}} = W_{u,\,n_u+i}\cdot1\cdot1 = B_{ui}
# \quad\Longrightarrow\quad
# \hat Y_{ui} = w_0 + w_u + w_{n_u+i} + B_{ui}, \tag{4.1}
# $$
#
# where $\hat Y$ is the $n_u\times n_i$ table of predictions. No sample holds two users or two
# items, so the user–user block, the item–item block and the diagonal of $W$ never enter a
# prediction:

# %%
nb04.plot_block_diagram(3, 4)
plt.show()

# %% [markdown]
# The $7\times7$ matrix $W$ for three users and four items: the dark block is $B$ (its mirror
# $B^\top$ lighter), the grey blocks and the diagonal are read by no prediction. The check of (4.1)
# with a symbolic symmetric $W$ ($n_u = 2$, $n_i = 3$), at every pair:

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
# The FM's block is $V_uV_i^\top$, with $V_u$ the user rows and $V_i$ the item rows of $V$: a product
# of two *different* matrices, so no symmetry and no PSD condition as in chapter 03; $B$ needs only a
# factorisation through $k$ columns.
#
# ### The linear terms absorb row and column effects
#
# Take any **row effect** $a\in\mathbb R^{n_u}$ and **column effect** $b\in\mathbb R^{n_i}$, move them from
# the block into the linear weights, and use (4.1):
#
# $$
# \begin{aligned}
# B' = B - a\mathbf 1^\top - \mathbf 1b^\top,\quad w_u' = w_u + a_u,\quad w_{n_u+i}' = w_{n_u+i} + b_i
# \quad\Longrightarrow\quad
# w_0 + w_u' + w_{n_u+i}' + B'_{ui} = w_0 + w_u + w_{n_u+i} + B_{ui}.
# \end{aligned}
# \tag{4.2}
# $$
#
# The table does not change. Exact, with everything symbolic ($n_u = 2$, $n_i = 3$; `True` means the
# two tables agree entry by entry):

# %%
B_s = sp.Matrix(2, 3, lambda u, i: sp.Symbol(f"B_{u}{i}", real=True))
a_s, b_s = sp.Matrix(sp.symbols("a_0:2", real=True)), sp.Matrix(sp.symbols("b_0:3", real=True))
w_s = sp.Matrix(sp.symbols("w_1:6", real=True))
w0_s = sp.Symbol("w_0", real=True)
shifted_B = B_s - a_s * sp.ones(1, 3) - sp.ones(2, 1) * b_s.T
shifted_w = w_s + a_s.col_join(b_s)
(ui.full_model_table(w0_s, shifted_w, shifted_B) - ui.full_model_table(w0_s, w_s, B_s)).is_zero_matrix

# %% [markdown]
# ### The criterion, both directions
#
# > **A user–item FM with $k$ columns (and its own $w_0'$, $w'$) reproduces the full model
# > $(w_0, w, B)$ on every pair iff**
# >
# > $$\min_{a,\,b}\ \operatorname{rank}\bigl(B - a\mathbf 1^\top - \mathbf 1b^\top\bigr)\ \le\ k . \tag{4.3}$$
#
# *If:* take $a, b$ reaching the minimum, factor $B - a\mathbf 1^\top - \mathbf 1b^\top = V_uV_i^\top$
# with $k$ columns (a matrix of rank $r\le k$ is a product through $r$ columns), and move $a, b$ into
# $w$ as in (4.2).
#
# *Only if:* suppose the two tables agree. Subtract them entry by entry, using (4.1) for both:
#
# $$
# \begin{aligned}
# 0 &= \bigl(w_0' + w_u' + w_{n_u+i}' + (V_uV_i^\top)_{ui}\bigr) - \bigl(w_0 + w_u + w_{n_u+i} + B_{ui}\bigr) && \text{for every } u, i\\
# \Longrightarrow\ (V_uV_i^\top)_{ui} &= B_{ui} - a_u - b_i, \quad a_u = w_u' - w_u + w_0' - w_0,\ \ b_i = w_{n_u+i}' - w_{n_u+i} && \text{group by user, item}\\
# \Longrightarrow\ \operatorname{rank}\bigl(B - a\mathbf 1^\top - \mathbf 1b^\top\bigr) &= \operatorname{rank}(V_uV_i^\top) \le k && \text{product through } k \text{ columns}
# \end{aligned}
# \tag{4.4}
# $$
#
# so the minimum over all $a, b$ is $\le k$. The first two lines of (4.4) as one identity, with a
# symbolic FM ($k = 3$, $n_u = 2$, $n_i = 3$) and a symbolic full model: the difference of the two
# tables equals $V_uV_i^\top - (B - a\mathbf 1^\top - \mathbf 1b^\top)$ with $a, b$ as defined:

# %%
_, w0_p, w_p, V_p = symbolic.fm_symbols(5, 3)
w0_p = sp.Symbol("w_0'", real=True)
a_44 = sp.Matrix([w_p[u] - w_s[u] + w0_p - w0_s for u in range(2)])
b_44 = sp.Matrix([w_p[2 + i] - w_s[2 + i] for i in range(3)])
difference = ui.user_item_table_exact(w0_p, w_p, V_p, 2) - ui.full_model_table(w0_s, w_s, B_s)
block_form = V_p[:2, :] * V_p[2:, :].T - (B_s - a_44 * sp.ones(1, 3) - sp.ones(2, 1) * b_44.T)
(difference - block_form).applyfunc(sp.expand).is_zero_matrix

# %% [markdown]
# ### Computing the minimum: double centring
#
# The **centring matrix** $J = I - \mathbf 1\mathbf 1^\top/m$ (of whatever size $m$ fits) subtracts
# the mean of a vector, and $J\mathbf 1 = \mathbf 1 - \mathbf 1\,(m/m) = 0$. Hence, for **every** $a, b$,
#
# $$
# J\bigl(B - a\mathbf 1^\top - \mathbf 1b^\top\bigr)J = JBJ - Ja\,(J\mathbf 1)^\top - (J\mathbf 1)\,b^\top J = JBJ, \tag{4.5}
# $$
#
# and since multiplying cannot raise the rank, every candidate has rank $\ge\operatorname{rank}(JBJ)$.
# And $JBJ$ is itself a candidate: multiplying out, with $\bar B_{u\cdot}$, $\bar B_{\cdot i}$, $\bar B$ the
# row, column and grand means,
#
# $$
# (JBJ)_{ui} = B_{ui} - \bar B_{u\cdot} - \bar B_{\cdot i} + \bar B = B_{ui} - a^*_u - b^*_i,
# \qquad a^*_u = \bar B_{u\cdot} - \bar B,\ \ b^*_i = \bar B_{\cdot i}. \tag{4.6}
# $$
#
# So the minimum in (4.3) is reached at $a^*, b^*$:
#
# $$
# k^*_{\text{user–item}}(B) = \operatorname{rank}(JBJ). \tag{4.7}
# $$
#
# Both steps, exact with a symbolic $B$ (and the symbolic $a, b$ of (4.2)):

# %%
a_star, b_star = ui.row_column_effects(B_s)
(
    sp.simplify(ui.double_centre(shifted_B) - ui.double_centre(B_s)).is_zero_matrix,
    sp.simplify(B_s - a_star * sp.ones(1, 3) - sp.ones(2, 1) * b_star.T - ui.double_centre(B_s)).is_zero_matrix,
)

# %% [markdown]
# The "only if" direction says no $k$-column FM can do better than (4.7). A direct test on
# counter-examples, exact: a rational $5\times6$ table $B$ with $\operatorname{rank}(JBJ) = 3$; for 200
# random integer pairs $(a, b)$, the rank of $B - a\mathbf 1^\top - \mathbf 1b^\top$ never falls below 3
# (the smallest rank seen, and whether it ever fell below); and for 100 random integer FMs with
# $k = 2$, none reproduces $B$ (each table's centred rank is at most 2, as (4.4) says):

# %%
rng_ce = torch.Generator().manual_seed(4)


def rand_int(rows, cols):
    return sp.Matrix(torch.randint(-4, 5, (rows, cols), generator=rng_ce).tolist())


B_ce = rand_int(5, 3) * rand_int(3, 6) + rand_int(5, 1) * sp.ones(1, 6) + sp.ones(5, 1) * rand_int(1, 6)
r_ce = ui.user_item_min_k(B_ce)
ranks_seen = [(B_ce - rand_int(5, 1) * sp.ones(1, 6) - sp.ones(5, 1) * rand_int(1, 6)).rank() for _ in range(200)]
fm_tables = [ui.user_item_table_exact(0, rand_int(11, 1), rand_int(11, 2), 5) for _ in range(100)]
(
    r_ce,
    min(ranks_seen),
    any(rank < r_ce for rank in ranks_seen),
    max(ui.user_item_min_k(Y) for Y in fm_tables),
    any(Y == B_ce for Y in fm_tables),
)

# %% [markdown]
# ### The tiny example, solved
#
# $B_{\text{want}}$ has rank 3 but $\operatorname{rank}(JB_{\text{want}}J) = 1$, so $k = 1$ suffices, as
# we saw. The construction of the "if" direction (a rational rank factorisation of $JBJ$, the
# effects moved into $w$) builds an FM whose table equals the full model's with $w_0 = 0$, $w = 0$:

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
# $JBJ$ has rank 5. The FM with $k = 5$ built as above (from an SVD of $JBJ$) reproduces the full
# model on all 1200 pairs, computed by the sparse FM prediction of chapter 01, within a rounding
# bound of $s\cdot\max(n_u, n_i)\,\varepsilon$ times the size of the terms. Here $\varepsilon$ is the
# float64 unit roundoff; an SVD of an $n_u\times n_i$ matrix is computed with an error of about
# $\max(n_u, n_i)\,\varepsilon$ times its size up to a modest constant (its backward stability, see
# the matrix-computations text cited in chapter 03), and the safety factor $s = 64$ covers that
# constant and the few additions of the prediction:

# %%
gen = torch.Generator().manual_seed(5)
n_u, n_i = 30, 40
low = torch.randn(n_u, 5, dtype=F64, generator=gen) @ torch.randn(5, n_i, dtype=F64, generator=gen)
B = low + torch.randn(n_u, 1, dtype=F64, generator=gen) + torch.randn(1, n_i, dtype=F64, generator=gen)
w0, w = torch.randn((), dtype=F64, generator=gen), torch.randn(n_u + n_i, dtype=F64, generator=gen)
w0_f, w_f, V_f = ui.user_item_fm(w0, w, B)
err = (fmedu.predict_sparse(ui.user_item_idx(n_u, n_i), w0_f, w_f, V_f) - ui.full_interaction_predict(w0, w, B)).abs()
scale = w0.abs() + 2 * w_f.abs().max() + B.abs().max()
safety = 64
bound = safety * max(n_u, n_i) * EPS64 * scale
int(torch.linalg.matrix_rank(B)), ui.user_item_min_k(B), V_f.shape[1], bool(err.max() <= bound)

# %% [markdown]
# ### What the restriction costs, in parameters
#
# On user–item data the full model has $1 + n_u + n_i + n_un_i$ parameters, the FM $1 + n + nk$.
# Exact counts for a small case, MovieLens 100k sizes (943 users, 1682 movies [1], $k = 20$) and a
# large catalogue:

# %%
param_rows = [ui.param_counts(*sizes) for sizes in ((10, 12, 3), (943, 1682, 20), (100_000, 10_000, 64))]
ml = param_rows[1]
param_rows, 28 * ml["fm"] < ml["full"] < 29 * ml["fm"]

# %% [markdown]
# At MovieLens sizes the FM has between 28 and 29 times fewer parameters. The price: it reproduces
# a full model exactly only when $\operatorname{rank}(JBJ)\le k$. Since $J$ has rank $m-1$ on each side,
# $\operatorname{rank}(JBJ)\le\min(n_u, n_i) - 1$, which is 942 at MovieLens sizes, far above $k = 20$;
# a table without structure reaches that bound, as this rational $10\times12$ example does. An FM
# bets that the real table is close to one of low centred rank.

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
# For an orthogonal $k\times k$ matrix $Q$ ($QQ^\top = I$),
#
# $$
# (VQ)(VQ)^\top = VQQ^\top V^\top = VV^\top, \tag{4.8}
# $$
#
# so every $W_{ij}$ and hence every prediction is unchanged. An exactly orthogonal rational $Q$ comes from Pythagorean
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
# invertible $k\times k$ matrix $R$, orthogonal or not:
#
# $$
# (V_uR)(V_iR^{-\top})^\top = V_uR\,R^{-1}V_i^\top = V_uV_i^\top . \tag{4.9}
# $$
#
# Exact with a
# rational $R$ that is not orthogonal:

# %%
V_u_s, V_i_s = V_sym[:2, :], V_sym[2:, :]
R = sp.Matrix([[2, 1, 0], [0, 1, 0], [sp.Rational(1, 3), 0, 1]])
(R.T * R == sp.eye(3), sp.expand((V_u_s * R) * (V_i_s * R.inv().T).T - V_u_s * V_i_s.T).is_zero_matrix)

# %% [markdown]
# ### User–item data: translations
#
# Shift every user vector by $s\in\mathbb R^k$ and every item vector by $t\in\mathbb R^k$, and expand:
#
# $$
# (v_u + s)\cdot(v_i + t) = v_u\cdot v_i + \underbrace{v_u\cdot t}_{\text{user only}} + \underbrace{s\cdot v_i}_{\text{item only}} + \underbrace{s\cdot t}_{\text{constant}} . \tag{4.10}
# $$
#
# The extra terms depend on the user alone, the item alone, or neither, so the new linear weights
# $w_u - v_u\cdot t$, $w_{n_u+i} - s\cdot v_i$ and $w_0 - s\cdot t$ absorb them. Exact for a fully symbolic FM ($n_u = n_i = 2$,
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
# is unchanged by $Q$ and $R$, **but not by translations**. On the tiny FM of §1, shifted by
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
# and since $J\mathbf 1 = 0$, as in (4.5),
#
# $$
# J\hat YJ = w_0(J\mathbf 1)(J\mathbf 1)^\top + Jw_{\text{users}}(J\mathbf 1)^\top + (J\mathbf 1)(Jw_{\text{items}})^\top + JBJ = JBJ . \tag{4.11}
# $$
#
# Exact with everything symbolic:

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
# the same number $d$ of non-zeros**. Shift every $v_a$ by the same $c\in\mathbb R^k$. For a sample with
# support $S$ ($\lvert S\rvert = d$, all $x_a = 1$), each pair $\{a, b\}\subset S$ gains
# $(v_a + v_b)\cdot c + \|c\|^2$, and each $a\in S$ lies in $d-1$ of the pairs:
#
# $$
# \sum_{\{a,b\}\subset S}\bigl[(v_a + c)\cdot(v_b + c) - v_a\cdot v_b\bigr]
# = \sum_{\{a,b\}\subset S}\bigl[(v_a + v_b)\cdot c + \|c\|^2\bigr]
# = (d-1)\sum_{a\in S}v_a\cdot c + \binom d2\|c\|^2 . \tag{4.12}
# $$
#
# The new weights $w_a - (d-1)\,v_a\cdot c$ and $w_0 - \binom d2\|c\|^2$ absorb this. Exact for $n = 5$ and every support of size
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
# In §1, user 0's liking for item 0 goes up by one: $B_{\text{want}}[0,0]$ changes from 3 to 4.
# **Predict before running:** can a $k = 1$ FM still reproduce the full model? If not, what $k$ is
# needed? Then build the FM and check it.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The derivation is in the cell below; this cell checks it.
B_new = B_want.copy()
B_new[0, 0] += 1
k_new = ui.user_item_min_k(B_new)
w0_n, w_n, V_n = ui.user_item_fm(0, sp.zeros(7, 1), B_new)
k_new, V_n.shape[1], ui.user_item_table_exact(w0_n, w_n, V_n, 3) == ui.full_model_table(0, sp.zeros(7, 1), B_new)

# %% [markdown] tags=["solution-text"]
# <details>
# <summary>Worked solution (click to read it)</summary>
#
# The change adds $e_0e_0^\top$ to the table ($e_0$ the
# first unit vector of the right size on each side), so by linearity
#
# $$
# J\bigl(B_{\text{want}} + e_0e_0^\top\bigr)J = JB_{\text{want}}J + (Je_0)(Je_0)^\top .
# $$
#
# $JB_{\text{want}}J$ has rank 1, and the new rank-one piece points elsewhere: its column
# $Je_0 = (2/3, -1/3, -1/3)^\top$ is not a multiple of the column of $JB_{\text{want}}J$. The sum has
# rank 2, so by (4.7) $k = 1$ no longer suffices and $k = 2$ does; the construction of §1 builds it.
#
# </details>

# %% [markdown]
# ### Exercise 4.2 (medium)
#
# Among all blocks $B' = B - a\mathbf 1^\top - \mathbf 1b^\top$ that give the same predictions as $B$ (with $w$
# adjusted), show that $JBJ$ has the smallest $\|B'\|_F^2$. Check it on the tiny example: no
# translation of the FM of §1 can bring $\|B\|_F^2$ below $70/3$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# The derivation is in the cell below; this cell checks its two identities.
Bp = B_s - a_s * sp.ones(1, 3) - sp.ones(2, 1) * b_s.T
JBJ_s = ui.double_centre(B_s)
pythagoras = sp.expand(ui.frobenius_sq(Bp) - ui.frobenius_sq(JBJ_s) - ui.frobenius_sq(Bp - JBJ_s)) == 0
s1, t1 = sp.symbols("s1 t1", real=True)
_, _, V_st = ui.translate_user_item(w0_tiny, w_tiny, V_tiny, 3, [s1], [t1])
excess = ui.frobenius_sq(V_st[:3, :] * V_st[3:, :].T) - sp.Rational(70, 3)
squares = (sp.Rational(14, 3) + 3 * (s1 + sp.Rational(2, 3)) ** 2) * (
    5 + 4 * (t1 + sp.Rational(1, 2)) ** 2
) - sp.Rational(70, 3)
pythagoras, sp.expand(excess - squares) == 0, excess.subs({s1: -sp.Rational(2, 3), t1: -sp.Rational(1, 2)})

# %% [markdown] tags=["solution-text"]
# <details>
# <summary>Worked solution (click to read it)</summary>
#
# By (4.6), $B' = JBJ + E$ with
# $E = (a^* - a)\mathbf 1^\top + \mathbf 1(b^* - b)^\top$, a row effect plus a column effect. $JBJ$ has zero
# row and column sums, so with the Frobenius inner product $\langle X, Y\rangle = \operatorname{trace}(X^\top Y)$
#
# $$
# \langle JBJ, \alpha\mathbf 1^\top\rangle = \alpha^\top(JBJ)\mathbf 1 = 0,\quad
# \langle JBJ, \mathbf 1\beta^\top\rangle = \mathbf 1^\top(JBJ)\beta = 0
# \quad\Longrightarrow\quad \|B'\|_F^2 = \|JBJ\|_F^2 + \|E\|_F^2 \ge \|JBJ\|_F^2 .
# $$
#
# On the tiny FM ($k = 1$, $V_u = (1, 2, -1)^\top$, $V_i = (2, 0, 1, -1)^\top$), shifting by $s$, $t$
# gives a rank-one block, so $\|B\|_F^2 = \|V_u + s\mathbf 1\|^2\,\|V_i + t\mathbf 1\|^2$; completing the
# squares,
#
# $$
# \|B\|_F^2 - \tfrac{70}3 = \Bigl(\tfrac{14}3 + 3\bigl(s + \tfrac23\bigr)^2\Bigr)\Bigl(5 + 4\bigl(t + \tfrac12\bigr)^2\Bigr) - \tfrac{14}3\cdot5 \ \ge\ 0,
# $$
#
# with equality at $s = -2/3$, $t = -1/2$, minus the means of $V_u$ and $V_i$.
#
# </details>

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


# %% fmedu={"stub": "def my_user_item_min_k(B):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_user_item_min_k(B):
    n_u, n_i = B.shape
    J_u = sp.eye(n_u) - sp.ones(n_u, n_u) / n_u
    J_i = sp.eye(n_i) - sp.ones(n_i, n_i) / n_i
    return int((J_u * B * J_i).rank())


# %%
EXERCISES["user_item_min_k"].check(my_user_item_min_k).correct

# %% [markdown]
# ### Exercise 4.4 (easy, your turn)
#
# Write the double centring (4.6): for a sympy table `B`, return $JBJ$, the table with its row and
# column effects removed (every row and every column then sums to 0).
# The cell after yours checks it on three exact tables and names the mistake when it recognises it;
# `EXERCISES["double_centre"].hint()` gives a hint.


# %% fmedu={"stub": "def my_double_centre(B):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_double_centre(B):
    row_means = B * sp.ones(B.cols, 1) / B.cols
    col_means = sp.ones(1, B.rows) * B / B.rows
    grand_mean = (sp.ones(1, B.rows) * B * sp.ones(B.cols, 1))[0] / (B.rows * B.cols)
    return B - row_means * sp.ones(1, B.cols) - sp.ones(B.rows, 1) * col_means + grand_mean * sp.ones(B.rows, B.cols)


# %%
EXERCISES["double_centre"].check(my_double_centre).correct

# %% [markdown]
# ## Symbols of this chapter
#
# | symbol | meaning |
# |---|---|
# | $n_u$, $n_i$; $V_u$, $V_i$ | numbers of users and of items; the user rows and the item rows of $V$ |
# | $B$ | the $n_u\times n_i$ user–item block, $B_{ui} = W_{u,\,n_u+i}$ |
# | $\hat Y$ | the table of predictions, $\hat Y_{ui} = \hat y(e_u + e_{n_u+i})$ |
# | $a$, $b$ | a row effect and a column effect |
# | $J$ | the centring matrix $I - \mathbf 1\mathbf 1^\top/m$ of whatever size $m$ fits |
# | $Q$; $R$ | an orthogonal $k\times k$ matrix; an invertible one |
# | $s$, $t$; $c$ | shifts of the user vectors and of the item vectors; a shift of every vector |
#
# The research notes on factorisation machines (unpublished; see chapter 03) write $V^u$, $V^i$ for
# $V_u$, $V_i$ and $n_f$ for $k$.

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

catch_rows = catch_table("04")
print(format_catch_table(catch_rows))
every_check_catches(catch_rows)

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
