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
# # 06 · The Sherman–Morrison prox solve
#
# Chapter 05 showed that one proximal step of a factorization machine is a search over one number z,
# valid whenever every inner problem is strictly convex ($\eta < 1/(d-1)$). This chapter computes the
# step exactly in O(dk) operations for a sample with d non-zeros and k latent dimensions: the
# sample enters the search only through three scalars. Each formula is derived on the page (the
# dual's three parts, the Sherman–Morrison inverse, $q_2$, the new prediction, $q'$ and $q''$) and then
# checked; then two ways to find z, the whole step against a generic optimiser, and why the published
# trainer (erratum E3) silently trains a linear model instead of an FM. A practitioner gets an exact
# proximal step that is cheap, and a measured speed-up over the published implementation.
#
# Symbols as in the [notation](../README.md#notation) table.
#
# ## What you will learn
#
# * how the dual function splits, $q(z) = q_1(z) + q_2(z) - h^*(z)$, and why $z$ stays in $[0, 1]$ (erratum E9);
# * how the Sherman–Morrison formula inverts $S(z)$ in closed form, so that no linear system is solved;
# * to derive how $q$, the new prediction $\hat y(\theta(z))$, $q'$ and $q''$ depend on a sample only through three
#   numbers;
# * two maximisers of $q$ (golden section, as published, and a safeguarded Newton iteration), and that
#   the resulting step is the minimiser a generic optimiser finds;
# * why the published trainer never moves the latent vectors (erratum E3), and how much faster the reduced step is.
#
# ## What you need
#
# * Chapter 05: the step is $\theta_{t+1} = \theta(z^*)$ where $\theta(z)$ minimises
#   $\varphi(\theta, z) = -zy\,\hat y(\theta) + \frac{1}{2\eta}\|\theta-\theta_t\|^2 - h^*(z)$ (5.2) and $z^*$ maximises $q(z) = \varphi(\theta(z), z)$
#   (5.3)–(5.4); the envelope theorem; $S(z) = (1+\beta)I - \beta J$ with $\beta = \eta y z$, $J = \mathbf 1\mathbf 1^\top$, the
#   gradient (5.5), eigenvalues $\lambda_{\text{mean}} = 1 - \beta(d-1)$ (eigenvector $\mathbf 1$) and $\lambda_\perp = 1 + \beta$
#   (vectors summing to zero) (5.6); the bound $\eta < 1/(d-1)$ (5.7).
# * Chapter 01: on a sample with ones at `idx`, $\hat y = B + \frac12\bigl(\|\sum_i v_i\|^2 - \sum_i\|v_i\|^2\bigr)$ with
#   $B = w_0 + \sum_{i\in\mathrm{idx}} w_i$ (Rendle's form [2]).
# * The Sherman–Morrison formula [3]: $(M + uv^\top)^{-1} = M^{-1} - \dfrac{M^{-1}uv^\top M^{-1}}{1 + v^\top M^{-1}u}$.
#
# The blog post [1] uses other letters: its feature vector $w$ → $x$ (ones at `idx`); its parameters
# $x = (b_0, b, v_1..v_m)$ → $\theta = (w_0, w, V)$; $\sigma(w, x)$ → $\hat y$; its label $\hat y$ → $y$; $|\mathrm{nz}(w)|$ → $d$ = `nnz`;
# $V_t$ (the rows $v_{i,t}$, $i\in$ `idx`) → `V[idx]`; $\unicode{x1D7D9}$ → $J$.

# %%
import collections
import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch

import fmedu
from fmedu import prox, testing
from fmedu.exercises import EXERCISES, catch_table, every_check_catches, format_catch_table
from fmedu.figures import nb06
from fmedu.notebook import setup
from fmedu.prox import lecture
from fmedu.prox import symbolic as prox_symbolic
from fmedu.prox.published import PublishedProxTrainer

setup()
EPS = torch.finfo(torch.float64).eps  # unit roundoff scale of float64, about 2.2e-16
FIGURES = Path(fmedu.__file__).resolve().parent.parent / "figures"  # the committed figure data

# %% [markdown]
# ## 1. A worked example: two features, one latent dimension
#
# The sample of chapter 05's saddle figure: two active features, $k = 1$, all biases 0, latent values $v_1 = \tfrac12$, $v_2 = 1$, label
# $y = +1$ and $\eta = \tfrac12$ (below the bound 1 for $d = 2$). Now $\hat y_t = v_1v_2 = \tfrac12$. For a fixed $z$ the new
# latent values solve $S(z)V = V_t$ (derived in section 2, (6.3)) with $S(z) = \begin{pmatrix}1 & -z/2\\ -z/2 & 1\end{pmatrix}$:

# %%
z = sp.Symbol("z", positive=True)
eta_ex = sp.Rational(1, 2)
Vt_ex = sp.Matrix([[sp.Rational(1, 2)], [1]])
V_of_z = sp.simplify(prox_symbolic.sym_s_matrix(2, eta_ex * z).inv() * Vt_ex)
V_of_z.T

# %% [markdown]
# The three biases ($w_0$, $w_1$, $w_2$) each move by $\eta y z = z/2$. The dual function is $\varphi$ at this point:
# the bias part $-\frac{3}{4}z^2$, the latent part, and the entropy term:

# %%
move = V_of_z - Vt_ex
q_ex = -(3 * eta_ex / 2) * z**2 + (-z * V_of_z[0] * V_of_z[1] + (move.T * move)[0] / (2 * eta_ex))
q_ex = q_ex - (z * sp.log(z) + (1 - z) * sp.log(1 - z))
z_star_ex = sp.nsolve(sp.diff(q_ex, z), z, 0.5, prec=30)  # q'(z*) = 0
V_new_ex = V_of_z.subs(z, z_star_ex)
y_hat_new_ex = 3 * eta_ex * z_star_ex + V_new_ex[0] * V_new_ex[1]
loss_before, loss_after = sp.log(1 + sp.exp(-sp.Rational(1, 2))), sp.log(1 + sp.exp(-y_hat_new_ex))
[sp.N(v, 6) for v in (z_star_ex, y_hat_new_ex, 1 / (1 + sp.exp(y_hat_new_ex)), loss_before, loss_after)]

# %% [markdown]
# In order: $z^* = 0.255$; the step raises the prediction from $0.5$ to $1.072$; $\sigma(-y\,\hat y_{t+1})$ equals $z^*$ (the optimal
# dual variable is the SGD weight, evaluated at the *new* point); the loss $\log(1+e^{-\hat y})$ falls from $0.474$ to $0.294$.
# The library's step on the same sample agrees:

# %%
idx_ex = torch.tensor([0, 1])
step_ex = prox.prox_step(
    idx_ex,
    1,
    torch.tensor(0.0, dtype=torch.float64),
    torch.zeros(2, dtype=torch.float64),
    torch.tensor([[0.5], [1.0]], dtype=torch.float64),
    0.5,
)
V_ex_float = torch.tensor([[float(V_new_ex[0])], [float(V_new_ex[1])]], dtype=torch.float64)
abs(step_ex.z - float(z_star_ex)) <= 1e-15, float((step_ex.V - V_ex_float).abs().max()) <= 1e-15

# %% [markdown]
# The rest of the chapter turns each line of this example into a formula for any $d$ and $k$.
#
# ## 2. $q$ separates into three parts
#
# $\hat y = w_0 + \sum_{i\in\mathrm{idx}} w_i + \sum_{i<j}\langle v_i, v_j\rangle$: the biases and the latent vectors appear in separate
# terms of $\varphi$, so the minimum over $\theta$ is a sum of two minima,
#
# $$q(z) = \underbrace{\min_{w_0, w}\Bigl[-zy\bigl(w_0 + \textstyle\sum_i w_i\bigr) + \tfrac{1}{2\eta}\|(w_0, w) - (w_0, w)_t\|^2\Bigr]}_{q_1(z)}
#  + \underbrace{\min_V\Bigl[-zy\textstyle\sum_{i<j}\langle v_i, v_j\rangle + \tfrac{1}{2\eta}\|V - V_t\|^2\Bigr]}_{q_2(z)} - h^*(z). \tag{6.1}$$
#
# ### $q_1$: the biases
#
# Write $b = (w_0, w_{\text{idx}})$, $d + 1$ numbers, and $B = w_0 + \sum_{i\in\text{idx}} w_i$ at $\theta_t$. Each coordinate is a
# separate one-dimensional quadratic:
#
# $$\begin{aligned}
# \frac{\partial}{\partial b_i}\Bigl[-zy\,b_i + \tfrac{1}{2\eta}(b_i - b_{i,t})^2\Bigr] &= -zy + \tfrac1\eta(b_i - b_{i,t}) = 0 &&\text{stationary point}\\
# b_i &= b_{i,t} + \eta yz &&\text{every bias moves by } \eta yz\\
# q_1(z) &= -zy\bigl(B + (d+1)\eta yz\bigr) + \frac{(d+1)(\eta z)^2}{2\eta} = -yBz - \frac{\eta(d+1)}{2}z^2 &&\text{substitute, } y^2 = 1 .
# \end{aligned}\tag{6.2}$$
#
# sympy minimises the bracket for $d = 3$ and $d = 5$ and compares with the library's $q_1$ on the same symbols:

# %%
eta = sp.Symbol("eta", positive=True)


def q1_gap(d, y):
    b, bt = sp.symbols(f"b0:{d + 1}", real=True), sp.symbols(f"bt0:{d + 1}", real=True)
    objective = -z * y * sum(b) + sum((bi - bti) ** 2 for bi, bti in zip(b, bt)) / (2 * eta)
    b_star = sp.solve([sp.diff(objective, bi) for bi in b], b, dict=True)[0]
    return sp.simplify(objective.subs(b_star) - prox.q1(z, sum(bt), d, y, eta))


[q1_gap(d, y) for d in (3, 5) for y in (1, -1)]

# %% [markdown]
# ### $q_2$: the latent vectors, a linear system
#
# Rows outside the sample stay at $v_{i,t}$. For the sample's $d$ rows, chapter 05's gradient (5.5) set to zero and
# multiplied by $\eta$ reads $v_{if} - \eta zy\sum_{j\ne i} v_{jf} = v_{if,t}$ for every $i$ and $f$, i.e. with $V$ the $d\times k$ matrix
# of those rows,
#
# $$S(z)\,V = V_t,\qquad S(z) = (1+\beta)I - \beta J . \tag{6.3}$$
#
# sympy for $d = 3$, $k = 3$, both labels: the gradient of the latent part is exactly $(S V - V_t)/\eta$:


# %%
def stationarity_is_s_system(d, k, y):
    part, V_sym, Vt_sym, z_sym, eta_sym = prox_symbolic.sym_latent_part(d, k, y)
    gradient = sp.Matrix(d, k, lambda i, f: sp.diff(part, V_sym[i, f]))
    S = prox_symbolic.sym_s_matrix(d, eta_sym * y * z_sym)
    return sp.simplify(gradient - (S * V_sym - Vt_sym) / eta_sym).is_zero_matrix


[stationarity_is_s_system(3, 3, y) for y in (1, -1)]

# %% [markdown]
# ### Why $z$ stays in $[0, 1]$: erratum E9
#
# The last piece, $h^*$, is what confines $z$.
#
# > **Erratum E9 (the proximal-point blog post, "Proximal Point to the Extreme – Factorization Machines" [1]).**
# > The post defines the
# > conjugate of $h(t) = \log(1 + e^t)$ as $h^*(z) = z\log z + (1-z)\log(1-z)$ on $(0, 1)$ and "$0$ otherwise".
# > **Correct:** $h^*(z) = \sup_t\, tz - \log(1 + e^t) = +\infty$ for every $z \notin [0, 1]$. That infinity is what keeps the dual
# > variable in $[0, 1]$ (and what makes the $z$-domain compact for Sion's theorem [4], chapter 05). The post's
# > requirement on the step size (it derives $\eta \le 1/(2d)$ and uses the published bound $\eta = 1/(2d+1)$) is
# > sufficient, not necessary: chapter 05 derives the exact $\eta < 1/(d-1)$ (erratum E2), and section 7 below
# > checks the step up to 0.999 of it. **Evidence:** the limits below, and the example after them. An
# > ordinary test would not catch the slip: the published code searches $z$ only in $[0, 1]$.
#
# For $z = 2$ the bracket $2t - \log(1+e^t)$ grows without bound as $t\to\infty$; for $z = -1$, $-t - \log(1+e^t)$ grows
# as $t\to-\infty$:

# %%
t = sp.Symbol("t", real=True)
(
    sp.limit(2 * t - sp.log(1 + sp.exp(t)), t, sp.oo),
    sp.limit(-t - sp.log(1 + sp.exp(t)), t, -sp.oo),
    prox.conjugate(2.0) == prox.conjugate(-1.0) == math.inf,
)

# %% [markdown]
# The library's conjugate (last entry) returns $+\infty$ there too. "0 otherwise" cannot be a conjugate at all: every conjugate is convex (a supremum of functions affine
# in $z$), but with that definition $h^*(1) = 0$ lies *above* the average of $h^*(\tfrac12) = -\log 2$ and $h^*(\tfrac32) = 0$:

# %%
h_published = {sp.Rational(1, 2): -sp.log(2), 1: 0, sp.Rational(3, 2): 0}
h_published[1] > (h_published[sp.Rational(1, 2)] + h_published[sp.Rational(3, 2)]) / 2

# %% [markdown]
# And it would change the answer. Take the bias-only model of chapter 05 ($d = 0$, so $q_2 = 0$) on a
# sample it gets badly wrong: $y = +1$, $w_0 = -5$, $\eta = 1$. With "0 otherwise", $q$ beyond $z = 1$ is the
# parabola $5z - z^2/2$, whose top at $z = 5$ is higher than anything on $[0, 1]$; the "step" from that $z$ lands
# at $w_0 = 0$, while the true step stops near $-4$ with a much smaller prox objective $F$:

# %%
no_features = torch.zeros(0, dtype=torch.int64)
w_one, V_one = torch.zeros(1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)  # one unused feature
w0_bad = torch.tensor(-5.0, dtype=torch.float64)
z_grid = np.linspace(0.0, 10.0, 10_001)
q_zero_otherwise = [prox.q1(zz, -5.0, 0, 1, 1.0) - (prox.conjugate(zz) if zz <= 1 else 0.0) for zz in z_grid]
z_wrong = float(z_grid[int(np.argmax(q_zero_otherwise))])
wrong = prox.update_from_z(no_features, 1, w0_bad, w_one, V_one, 1.0, z_wrong)
right = prox.prox_step(no_features, 1, w0_bad, w_one, V_one, 1.0)
F = [float(prox.prox_objective(no_features, 1, r.w0, r.w, r.V, 1.0, w0_bad, w_one, V_one)) for r in (wrong, right)]
z_wrong, float(wrong.w0), round(float(right.w0), 4), F[0] > F[1]

# %% [markdown]
# The published code searches $z$ only in $[0, 1]$, so its numbers are not affected; the slip is in the
# stated mathematics, which a reader following the derivation would carry forward.
#
# ## 3. Sherman–Morrison: $S(z)^{-1}$ in closed form
#
# $S = (1+\beta)I + u\mathbf 1^\top$ with $u = -\beta\mathbf 1$ is a rank-one change of $M = (1+\beta)I$. The Sherman–Morrison
# formula [3], $(M + uv^\top)^{-1} = M^{-1} - \frac{M^{-1}uv^\top M^{-1}}{1 + v^\top M^{-1}u}$, with $v = \mathbf 1$:
#
# $$\begin{aligned}
# M^{-1}u &= -\frac{\beta}{1+\beta}\mathbf 1,\qquad v^\top M^{-1} = \frac{1}{1+\beta}\mathbf 1^\top &&M^{-1} = I/(1+\beta)\\
# 1 + v^\top M^{-1}u &= 1 - \frac{\beta d}{1+\beta} = \frac{1 - \beta(d-1)}{1+\beta} = \frac{\lambda_{\text{mean}}}{1+\beta} &&\mathbf 1^\top\mathbf 1 = d\\
# S^{-1} &= \frac{I}{1+\beta} + \frac{\beta}{(1+\beta)^2}\cdot\frac{1+\beta}{\lambda_{\text{mean}}}\,J = \frac{1}{1+\beta}\Bigl(I + \frac{\beta}{\lambda_{\text{mean}}}J\Bigr) &&\text{Sherman–Morrison, } \mathbf 1\mathbf 1^\top = J .
# \end{aligned}\tag{6.4}$$
#
# So $V^* = S^{-1}V_t = \bigl(V_t + \frac{\beta}{\lambda_{\text{mean}}}\mathbf 1 s^\top\bigr)/(1+\beta)$ with $s = \sum_i v_{i,t}$: no matrix is formed, $O(dk)$
# work. The post's formula (C), $V^* = V_t - \frac{\beta}{1+\beta}\bigl[V_t - \frac{1}{1+\beta(1-d)}JV_t\bigr]$, is the same matrix written
# differently. Three checks.
#
# **1. For every $d$ at once**, with sympy's matrix expressions of symbolic size (chapter 05): $S\cdot S^{-1}$ and
# $S^{-1}\cdot S$ expand to $1\cdot I + 0\cdot J$, and formula (C) minus ours has coefficients $(0, 0)$:

# %%
G = prox_symbolic.sym_s_symbolic_d()
ours = (G.I + G.beta / (1 - G.beta * (G.d - 1)) * G.J) / (1 + G.beta)
formula_c = G.I - G.beta / (1 + G.beta) * (G.I - G.J / (1 + G.beta * (1 - G.d)))
[prox_symbolic.split_terms(e, [G.I, G.J]) for e in (G.S * ours, ours * G.S, formula_c - ours)]

# %% [markdown]
# **2. sympy's own inverse** of the explicit $d\times d$ matrix, $d = 1\ldots7$:

# %%
beta = sp.Symbol("beta")
[
    sp.simplify(
        prox_symbolic.sym_s_matrix(d, beta).inv()
        - (sp.eye(d) + beta / (1 - beta * (d - 1)) * sp.ones(d, d)) / (1 + beta)
    ).is_zero_matrix
    for d in range(1, 8)
]

# %% [markdown]
# **3. A dense solve in float64.** 300 random settings: $d = 1\ldots11$, both labels, latent scales 0.01, 1 and 3,
# $\eta$ anywhere up to 0.999 of the exact bound, $z$ uniform in $[0,1]$:

# %%
cases = testing.random_prox_cases(300, seed=5)
len(cases), sorted({c.idx.numel() for c in cases}) == list(range(1, 12)), {c.y for c in cases}


# %% [markdown]
# The tolerance comes from the rounding model of a linear solve [9, §7.1, §9.4]: a backward-stable solve of a $d\times d$
# system returns the exact solution of a system perturbed by about $c\,d\,\varepsilon$ relative, which moves the
# solution by up to the condition number $\kappa = \lambda_{\max}/\lambda_{\min}$ of $S$ times that, i.e. about $d\kappa\varepsilon\max|V^*|$
# (the "+1" covers tiny $V^*$). Both computations err so, and the constant $c$ of Gaussian elimination is a
# small multiple of 1; we take $64 = $ 2 computations × $c \le 4$ × safety factor 8 for the few further
# operations of the closed form: tolerance $64\,d\,\kappa\,\varepsilon\,(1 + \max|V^*|)$.


# %%
def solve_within_tolerance(c):
    d = c.idx.numel()
    dense = torch.linalg.solve(prox.s_matrix(d, c.eta, c.y, c.z), c.V[c.idx])
    closed = prox.solve_vectors(c.V[c.idx], c.eta, c.y, c.z)
    gap = float((dense - closed).abs().max())
    return gap <= testing.solve_tolerance(d, c.eta, c.y, c.z, float(dense.abs().max()))


sum(solve_within_tolerance(c) for c in cases)

# %% [markdown]
# All 300 agree within the tolerance.
#
# ## 4. $q$, $\hat y(\theta(z))$, $q'$ and $q''$ from three numbers per sample
#
# A sample enters everything below through three **sample scalars** at $\theta_t$:
#
# $$B = w_0 + \sum_{i} w_i,\qquad A = \sum_{i}\|v_{i,t}\|^2,\qquad C = \Bigl\|\sum_i v_{i,t}\Bigr\|^2 = \|s\|^2 .$$
#
# **Split $V_t$ along $\mathbf 1$ and its complement.** Let $M = \frac1d\mathbf 1 s^\top$ (every row the mean row) and $P = V_t - M$;
# each column of $P$ sums to zero, so by (5.6) $S^{-1}M = M/\lambda_{\text{mean}}$ and $S^{-1}P = P/\lambda_\perp$. The two parts are
# orthogonal ($\langle M, P\rangle = \frac1d s^\top\mathbf 1^\top P = 0$), and their squared norms are
#
# $$\begin{aligned}
# m &= \|M\|^2 = \tfrac{1}{d^2}\,d\,\|s\|^2 = C/d &&d \text{ equal rows } s/d\\
# p &= \|P\|^2 = \|V_t\|^2 - \|M\|^2 = A - C/d &&\text{Pythagoras}\\
# V^* &= S^{-1}(M + P) = \frac{M}{\lambda_{\text{mean}}} + \frac{P}{\lambda_\perp} &&\text{(6.3), } S^{-1} \text{ divides each part by its eigenvalue.}
# \end{aligned}\tag{6.5}$$
#
# The picture for the worked example of section 1 ($d = 2$, $k = 1$, so $V_t$ is a point of the plane):

# %%
nb06.plot_split(nb06.split_rows())
plt.show()

# %% [markdown]
# (`figures/06_split.png`.) $V_t = (\tfrac12, 1)$ is the sum of $M$ (blue, along $\mathbf 1$) and $P$ (orange, along $(1, -1)$). As $z$
# grows from 0 to 1, $V^*(z)$ (green) moves away from $V_t$: the part along $\mathbf 1$ is stretched by $1/\lambda_{\text{mean}}$ and the
# part that sums to zero is shrunk by $1/\lambda_\perp$; the dot is the step at $z^*$. Near the bound $\lambda_{\text{mean}} \to 0$, and the
# stretch along $\mathbf 1$ grows without limit: the pole of chapter 05, section 10.
#
# **$q_2$.** The latent bracket of (6.1) is the quadratic $\frac{1}{2\eta}\bigl[\langle V, SV\rangle - 2\langle V_t, V\rangle + \|V_t\|^2\bigr]$ (expand: $\langle V, SV\rangle$
# is $\sum_i\|v_i\|^2 - 2\eta zy\sum_{i<j}\langle v_i, v_j\rangle$). At its minimiser $SV^* = V_t$:
#
# $$\begin{aligned}
# q_2(z) &= \tfrac{1}{2\eta}\bigl[\langle V^*, V_t\rangle - 2\langle V_t, V^*\rangle + A\bigr] = \tfrac{1}{2\eta}\bigl[A - \langle V_t, V^*\rangle\bigr] &&SV^* = V_t\\
# &= \frac{1}{2\eta}\Bigl[A - \frac{m}{\lambda_{\text{mean}}} - \frac{p}{\lambda_\perp}\Bigr] &&\text{(6.5), } \langle M + P, M/\lambda_{\text{mean}} + P/\lambda_\perp\rangle .
# \end{aligned}\tag{6.6}$$
#
# **The new prediction.** The biases add $(d+1)\eta yz$ (6.2). For the pairs, Rendle's form (chapter 01) needs the sum
# of the new rows and their squared norms; $\mathbf 1^\top P = 0$ kills $P$ in the sum:
#
# $$\begin{aligned}
# \textstyle\sum_i v_i^* &= \mathbf 1^\top V^* = \frac{\mathbf 1^\top M}{\lambda_{\text{mean}}} = \frac{s}{\lambda_{\text{mean}}},\qquad \Bigl\|\textstyle\sum_i v_i^*\Bigr\|^2 = \frac{C}{\lambda_{\text{mean}}^2} = \frac{d\,m}{\lambda_{\text{mean}}^2} &&\mathbf 1^\top P = 0,\ \mathbf 1^\top\mathbf 1 = d\\
# \textstyle\sum_i\|v_i^*\|^2 &= \|V^*\|^2 = \frac{m}{\lambda_{\text{mean}}^2} + \frac{p}{\lambda_\perp^2} &&M \perp P\\
# \hat y(\theta(z)) &= B + (d+1)\eta yz + \frac12\Bigl[\frac{(d-1)\,m}{\lambda_{\text{mean}}^2} - \frac{p}{\lambda_\perp^2}\Bigr] &&\textstyle\sum_{i<j}\langle v_i, v_j\rangle = \frac12\bigl(\|\sum_i v_i\|^2 - \sum_i\|v_i\|^2\bigr) .
# \end{aligned}\tag{6.7}$$
#
# **Check.** sympy builds the exact minimiser with its *own* inverse of $S(z)$ (not Sherman–Morrison) for every
# entry of $V_t$ a symbol, evaluates the latent bracket there and the prediction by the plain pair sum (not
# Rendle's form), for $d = 2$ and $3$, $k = 2$, both labels, and subtracts (6.6) and (6.7) written in $m$, $p$, $\lambda$ as
# above:


# %%
def chain_gaps(d, y):
    mi = prox_symbolic.sym_minimiser(d, 2, y)
    beta_ = mi.eta * y * mi.z
    lam_mean, lam_perp = 1 - beta_ * (d - 1), 1 + beta_
    m_, p_ = mi.C / d, mi.A - mi.C / d
    q2_chain = (mi.A - m_ / lam_mean - p_ / lam_perp) / (2 * mi.eta)
    y_hat_chain = mi.B + (d + 1) * beta_ + ((d - 1) * m_ / lam_mean**2 - p_ / lam_perp**2) / 2
    return sp.cancel(mi.q2 - q2_chain), sp.cancel(mi.y_hat_after - y_hat_chain)


{(d, y): chain_gaps(d, y) for d in (2, 3) for y in (1, -1)}

# %% [markdown]
# All $0$. The library's formulas, which take $(B, A, C)$, agree with the same exact minimiser as formulas (they
# accept sympy symbols):

# %%
derivations = {y: prox_symbolic.sym_minimiser(3, 2, y) for y in (1, -1)}
[
    (
        sp.cancel(mi.q2 - prox.q2_reduced(mi.z, prox.SampleScalars(mi.B, mi.A, mi.C, 3), y, mi.eta)),
        sp.cancel(mi.y_hat_after - prox.prediction_after(mi.z, prox.SampleScalars(mi.B, mi.A, mi.C, 3), y, mi.eta)),
    )
    for y, mi in derivations.items()
]

# %% [markdown]
# ### $q'$ by the envelope theorem, and $q''$
#
# $\theta(z)$ minimises $\varphi(\cdot, z)$, so by the envelope theorem (chapter 05, [5]) only the explicit $z$ in (5.2) counts:
#
# $$\begin{aligned}
# q'(z) &= \partial_z\varphi(\theta, z)\big|_{\theta = \theta(z)} = -y\,\hat y(\theta(z)) - \frac{d h^*}{dz} &&\text{envelope theorem}\\
# &= -y\,\hat y(\theta(z)) - \log\frac{z}{1-z} &&\tfrac{d}{dz}h^* = \log z + 1 - \log(1-z) - 1 .
# \end{aligned}\tag{6.8}$$
#
# Differentiate (6.7) once more, using $\frac{d\lambda_{\text{mean}}}{dz} = -\eta y(d-1)$ and $\frac{d\lambda_\perp}{dz} = \eta y$:
#
# $$\begin{aligned}
# \frac{d}{dz}\hat y(\theta(z)) &= (d+1)\eta y + \frac{(d-1)m}{2}\cdot\frac{-2}{\lambda_{\text{mean}}^3}\bigl(-\eta y(d-1)\bigr) - \frac{p}{2}\cdot\frac{-2}{\lambda_\perp^3}\,\eta y &&\text{chain rule}\\
# &= \eta y\Bigl[(d+1) + \frac{(d-1)^2 m}{\lambda_{\text{mean}}^3} + \frac{p}{\lambda_\perp^3}\Bigr] &&\text{collect}\\
# q''(z) &= -\eta\Bigl[(d+1) + \frac{(d-1)^2 m}{\lambda_{\text{mean}}^3} + \frac{p}{\lambda_\perp^3}\Bigr] - \frac{1}{z(1-z)} &&\text{(6.8), } y^2 = 1 .
# \end{aligned}\tag{6.9}$$
#
# Two checks. First (6.8): on the exact minimiser, the derivative of $q_1 + q_2$ plus $y\,\hat y(\theta(z))$ is $0$ for both
# labels. Second (6.9): sympy differentiates $q = q_1 + q_2 - h^*$ twice, for symbolic $A$, $B$, $C$, and compares with the
# display and with the library's $q''$:

# %%
[
    sp.cancel(sp.diff(prox.q1(mi.z, mi.B, 3, y, mi.eta) + mi.q2, mi.z) + y * mi.y_hat_after)
    for y, mi in derivations.items()
]

# %%
A, B, C = sp.symbols("A B C", real=True)
s_sym = prox.SampleScalars(B, A, C, 3)
lam_mean, lam_perp, m, p = 1 - 2 * eta * z, 1 + eta * z, C / 3, A - C / 3  # y = +1, d = 3
h_star = z * sp.log(z) + (1 - z) * sp.log(1 - z)
q_sym = prox.q1(z, B, 3, 1, eta) + (A - m / lam_mean - p / lam_perp) / (2 * eta) - h_star
q2nd_display = -eta * (4 + 4 * m / lam_mean**3 + p / lam_perp**3) - 1 / (z * (1 - z))
(
    sp.simplify(sp.diff(q_sym, z, 2) - q2nd_display),
    sp.simplify(q2nd_display - prox.q_second(z, s_sym, 1, eta)),
)

# %% [markdown]
# **What it means.** Below the bound both eigenvalues are positive and $m, p \ge 0$, so every term of (6.9) is
# negative: $q$ is *strictly concave* on $(0, 1)$ for either label, with exactly one maximiser. Each evaluation
# of $q$, $q'$ or $q''$ costs a handful of scalar operations once $(B, A, C)$ are known, one pass over the sample's
# $d$ rows. In float64, on the 300 random settings: $q''$ is negative on a grid of $z$, and the reduced forms agree
# with $q$ computed by solving for $V$ with tensors and with $\hat y$ of the actually updated parameters. The
# tolerance: the reduced forms add and divide a few terms, the largest of size $T = 1 + |B| + A/(\eta\lambda_{\min}^2)$
# ($S^{-1}$ amplifies by $1/\lambda_{\min}$ and $\hat y$ squares it); by the standard model of floating-point sums [9, §3.1],
# each computation errs by at most $\gamma_n T \approx n\varepsilon T$ with $n$ the number of operations, here at most about 30
# per computation and two computations compared. We allow $512\,\varepsilon\,T$: that bound ($\approx 64\varepsilon T$) times a safety
# factor 8.

# %%
grid = (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
all(prox.q_second(zz, prox.sample_scalars(c.idx, c.w0, c.w, c.V), c.y, c.eta) < 0 for c in cases for zz in grid)


# %%
def reduced_forms_agree(c):
    s = prox.sample_scalars(c.idx, c.w0, c.w, c.V)
    tol = testing.dual_tolerance(s, c.eta, c.y, c.z)  # 512 ε T
    readable = prox.q(c.z, s.B, c.V[c.idx], c.y, c.eta)
    moved = prox.update_from_z(c.idx, c.y, c.w0, c.w, c.V, c.eta, c.z)
    y_hat_moved = float(fmedu.predict_sparse(c.idx, moved.w0, moved.w, moved.V))
    q_ok = abs(readable - prox.q_reduced(c.z, s, c.y, c.eta)) <= tol
    return q_ok and abs(y_hat_moved - prox.prediction_after(c.z, s, c.y, c.eta)) <= tol


sum(reduced_forms_agree(c) for c in cases)

# ## 5. The shape of $q$
#
# What do these functions look like? Three samples, both labels, from a tiny $V$ to a step size at 0.9 of the
# bound: $q$ from (6.2) and (6.6), and $q'$ from (6.8), over the whole interval $(0, 1)$.

# %%
dual = nb06.dual_rows()
nb06.plot_dual(dual)
plt.show()

# %% [markdown]
# (`figures/06_dual_function.png`.) One column per sample, its label, $d$, $\eta$ and the size of its latent entries in
# the title: every $q$ has a single peak (top row, the dot is $z^*$), and $q'$ falls from $+\infty$ to $-\infty$ and crosses zero
# exactly there (bottom row; its axis is cut near $z = 0$ and $1$, where $q'$ is unbounded).
#
# ## 6. Two maximisers
#
# * **Golden section, as published**: shrink $[0, 1]$ by the golden ratio until it is $10^{-8}$ long and take the
#   midpoint; 40 evaluations of $q$ whatever the sample [6].
# * **Safeguarded Newton on $q'$**. In $t = \operatorname{logit} z$ the condition $q'(z) = 0$ reads
#   $g(t) = -y\,\hat y(\theta(\sigma(t))) - t = 0$ with $g'(t) = q''(z)\,z(1-z) \le -1$. So the root lies within $|g(t_0)|$ of
#   any starting point; the start $t_0 = -y\,\hat y_t$ is the root as $\eta\to0$. Newton steps that leave this bracket
#   are replaced by bisection, and the iteration stops at rounding level.
#
# How close must the two answers be? Golden section compares *values* of $q$. Near the top
# $q(z) \approx q(z^*) - \frac12|q''|(z - z^*)^2$, and each computed value is off by up to $\delta = c\,\varepsilon\,T_q$, with $T_q$ the size of
# $q$'s largest terms ($1 + A/\eta + |B| + \eta(d+1)$) and $c$ the number of rounded operations [9, §3.1]. Two values
# $\delta$-wrong each cannot be told apart once $\frac12|q''|(z - z^*)^2 \le 2\delta$, i.e. within $\sqrt{4\delta/|q''|}$ of $z^*$. With
# $c = 8$ (about the operations of one evaluation of $q$ from the sample scalars) this is $\sqrt{32\,\varepsilon\,T_q/|q''|}$, added to
# golden section's own tolerance $10^{-8}$ on $z$. On the 300 settings:


# %%
def maximisers_agree(c):
    s = prox.sample_scalars(c.idx, c.w0, c.w, c.V)
    z_newton, count = prox.maximise_q_newton(s, c.y, c.eta, return_evaluations=True)
    z_golden = prox.maximise_q_golden(s, c.y, c.eta)
    return abs(z_newton - z_golden) <= testing.golden_tolerance(s, c.y, c.eta, z_golden), count


# %%
golden_evaluations = prox.golden_section_max(lambda zz: -((zz - 0.3) ** 2), 0.0, 1.0)[2]
agreement = [maximisers_agree(c) for c in cases]
(
    sum(ok for ok, _ in agreement),
    golden_evaluations,
    statistics.median(n for _, n in agreement),
    max(n for _, n in agreement),
)

# %% [markdown]
# All 300 agree (first number). Golden section always spends the same number of evaluations (second);
# Newton's median and largest counts follow. The long runs are samples the model gets wildly wrong (with
# latent scale 3, $|\hat y_t|$ reaches the hundreds): their $z^*$ is within rounding of 1, where the safeguard falls
# back to bisection for a while.
#
# ## 7. The step equals the minimiser a generic optimiser finds
#
# Now the whole step against a generic optimiser, L-BFGS-B [7], minimising the prox objective $F$ directly
# (float64, autograd gradients, gradient tolerance $10^{-13}$). The cases form a full grid: both labels × $\eta$ at
# 0.1, 0.5, 0.9 and 0.999 of the label's exact bound × every $d$ from 1 to 11, so that $y = +1$, the label for which
# $1/(d-1)$ binds, meets 0.999 of it at every $d$; $k\in\{3, 20\}$ and latent scales 0.01, 1 and 3 follow $d$, so every
# (label, fraction) pair meets both. For each case: the largest coordinate difference and the KKT residual
# $\max|\nabla F|$ (autograd) at both answers.

# %%
comparison = nb06.compare_with_optimiser(nb06.optimiser_cases())
per_pair = collections.Counter((r["y"], r["fraction"]) for r in comparison)
len(comparison), sorted({r["nnz"] for r in comparison}) == list(range(1, 12)), set(per_pair.values())

# %% [markdown]
# **The tolerance, derived.** Below the bound $F$ is *$\mu$-strongly convex*: its Hessian is
# $\sigma'\,\nabla\hat y\nabla\hat y^\top + \nabla^2_\theta\varphi(\theta, z(\theta))$ with $z(\theta) = \sigma(-y\hat y(\theta))\in(0,1)$, and by (5.5)–(5.7) the second
# term's eigenvalues are at least $\mu = \min(1, \lambda_{\min}(S(1)))/\eta$ [8, §9.1.2]. For such a function every point is
# within $\|\nabla F(\theta)\|_2/\mu$ of the minimiser $\theta^*$: strong convexity gives
# $\langle\nabla F(\theta) - \nabla F(\theta^*), \theta - \theta^*\rangle \ge \mu\|\theta - \theta^*\|_2^2$, $\nabla F(\theta^*) = 0$, and Cauchy–Schwarz bounds the left side by
# $\|\nabla F(\theta)\|_2\,\|\theta - \theta^*\|_2$. With $N = 1 + d + dk$ coordinates, $\|\cdot\|_2 \le \sqrt N\max|\cdot|$, so the two answers
# differ by at most
#
# $$\max|\theta_{\text{closed form}} - \theta_{\text{optimiser}}| \le \frac{\sqrt N}{\mu}\bigl(\max|\nabla F(\theta_{\text{closed form}})| + \max|\nabla F(\theta_{\text{optimiser}})|\bigr), \tag{6.10}$$
#
# computed from the two measured residuals: no free constant. Separately, the closed form's own residual
# should be rounding: $\nabla F$'s largest terms have size $T = (1 + d\max|v|^2)/\eta$, so by the rounding model of a sum
# [9, §3.1] it is at most about $n\varepsilon T$ with $n$ the operations per coordinate (up to about 45 here); we allow
# $10^{-12}\,T \approx 4500\,\varepsilon T$, that bound times a safety factor 100 for the error in $z^*$ that the step carries
# into every coordinate. The measured residuals, in units of $\varepsilon T$:

# %% tags=["nbval-ignore-output"]
print(f"largest closed-form residual: {max(r['kkt_closed_form'] / (EPS * r['kkt_scale']) for r in comparison):.0f} ε T")
print(f"largest optimiser residual:   {max(r['kkt_optimiser'] / (EPS * r['kkt_scale']) for r in comparison):.0f} ε T")

# %% [markdown]
# The checks: every case within (6.10); every closed-form residual within $10^{-12}T$; and the number of cases
# with $\eta$ above the published bound $1/(2d+1)$, where the step is exact too:

# %%
(
    all(
        r["max_abs_diff"]
        <= lecture.optimiser_gap_bound(r["nnz"], r["k"], r["eta"], r["y"], r["kkt_closed_form"], r["kkt_optimiser"])
        for r in comparison
    ),
    all(r["kkt_closed_form"] <= 1e-12 * r["kkt_scale"] for r in comparison),
    sum(r["above_published"] for r in comparison),
)

# %% [markdown]
# The optimiser's residual is the larger of the two (printed above; not compared, it varies with the
# platform's linear algebra), so the closed form's point is the more accurate one.
#
# ## 8. Erratum E3: the published code never moves the latent vectors
#
# > **Erratum E3 (the code repository of the proximal-point blog post [1], the trainer's latent-vector update).** The published trainer
# > computes $z^*$ from the full $q$ (including $q_2$), updates the biases, and writes the new latent vectors
# > with an in-place subtraction on `V[idx, :]`. **Correct:** indexing with an index tensor ("advanced
# > indexing") returns a *new tensor*, not a view [10]; the subtraction changes that copy, which is then
# > discarded. $V$ never moves, only $w_0$ and $w$ train, and the published run is that of a linear
# > (logistic-regression) model. The fix is an indexed assignment, `V[idx, :] = V[idx, :] - direction`.
# > **Evidence:** the three cells below; chapter 07 shows the consequence for the published training curve.
# > An ordinary test that the loss falls would not catch it: the biases alone lower the loss.
#
# The mechanism, on a $4\times3$ tensor: the published write is lost, while a basic slice is a view and its
# write lands:

# %%
V_demo = torch.arange(12, dtype=torch.float64).reshape(4, 3)
before = V_demo.clone()
rows = torch.tensor([0, 2])
V_demo[rows, :].sub_(100.0)  # the published write
lost = torch.equal(V_demo, before)
V_demo[1:3, :].sub_(1.0)  # a basic slice is a view: this one lands
lost, torch.equal(V_demo[1], before[1] - 1.0), V_demo[rows, :].data_ptr() != V_demo.data_ptr()

# %% [markdown]
# A reimplementation of the published trainer follows it operation by operation (golden section, $q$
# evaluated with torch operations at every call, the same write). As published and with the write done
# by an indexed assignment, 300 steps on random samples at the
# published step size $1/23$: which parameters actually moved?

# %%
gen = torch.Generator().manual_seed(8)
n_demo, k_demo = 100, 5
w0 = torch.zeros((), dtype=torch.float64)
w = 0.01 * torch.randn(n_demo, dtype=torch.float64, generator=gen)
V = 0.01 * torch.randn(n_demo, k_demo, dtype=torch.float64, generator=gen)
sizes = [int(torch.randint(2, 12, (), generator=gen)) for _ in range(300)]
samples = [(torch.randperm(n_demo, generator=gen)[:d], (1, -1, -1, -1)[i % 4]) for i, d in enumerate(sizes)]
len(samples), min(sizes), max(sizes)

# %%
eta_published = prox.step_size_bound(11, "published")
trainers = {fix: PublishedProxTrainer(w0, w, V, eta_published, fix_write=fix) for fix in (False, True)}
for sample_idx, label in samples:
    for trainer in trainers.values():
        trainer.step(sample_idx, label)
{
    ("corrected" if fix else "published"): [
        name for name, new, old in zip(("w0", "w", "V"), tr.params(), (w0, w, V)) if not torch.equal(new, old)
    ]
    for fix, tr in trainers.items()
}

# %% [markdown]
# As published, $w_0$ and $w$ train and $V$ stays bit for bit at its initial value. The published trainer is
# exactly this chapter's step with the latent vectors frozen and golden section as the search ($z^*$ from the
# full $q$, only the biases written), and the corrected one is the exact step. The tolerance $10^{-6}$ is golden
# section's $10^{-8}$ on $z$ per step, moving each bias by $\eta\,\Delta z$, accumulated over 300 steps ($300\times10^{-8}\eta$)
# with a safety factor of about 10:

# %%
frozen = (w0, w, V)
exact = prox.ProxTrainer(w0, w, V, eta_published)
for sample_idx, label in samples:
    frozen = prox.prox_step(sample_idx, label, *frozen, eta_published, freeze_V=True, solver="golden")[:3]
    exact.step(sample_idx, label)
atol = testing.GOLDEN_PARAM_ATOL
published_matches = all(torch.allclose(a, b_, atol=atol, rtol=0) for a, b_ in zip(trainers[False].params(), frozen))
corrected_matches = all(
    torch.allclose(a, b_, atol=atol, rtol=0) for a, b_ in zip(trainers[True].params(), exact.params())
)
published_matches, corrected_matches

# %% [markdown]
# ## 9. The cost of one step
#
# The published implementation evaluates $q$ some 40 times per step (golden section), each time with a dozen
# torch operations on the $(d, k)$ block; the reduced form gathers the block once, reduces it to $(B, A, C)$, runs
# Newton on scalars and writes the result. Both were timed side by side at MovieLens size ($n = 2728$, $k = 20$,
# one thread), alternately, in CPU time, best of 9 rounds, in one committed run (timings vary from machine to
# machine, so the chapter reads that run rather than timing again). The speed-up quoted in this course is
# the ratio at $d = 11$, the most non-zeros of a MovieLens sample: the reduced step is 14× faster there (first
# number below); the ratios at every measured $d$ follow it:

# %%
cost_rows = nb06.read_step_cost(FIGURES / "06_step_cost.csv")
ratios = nb06.cost_ratios(cost_rows)
nb06.quoted_speedup(cost_rows), {d: round(r_, 1) for d, r_ in ratios.items()}

# %%
nb06.plot_step_cost(cost_rows)
plt.show()

# %% [markdown]
# (`figures/06_step_cost.png`.) Left, on a log scale because the two differ by more than a factor of ten: the
# CPU time per step of both implementations against $d$. Right: their ratio at each $d$, with the quoted value
# marked. Over $d = 2\ldots11$ both costs move little compared with the gap between them: at these sizes a step
# is dominated by the fixed cost of each torch call, not by the $O(dk)$ arithmetic, and the published step makes
# many more calls. A compiled engine (chapter 07) runs the reduced form.
#
# ## Key takeaways
#
# * The dual function splits as $q = q_1 + q_2 - h^*$ (6.1): a parabola from the biases (6.2), a latent part from the
#   linear system $S(z)V = V_t$ (6.3), and the entropy, which is $+\infty$ outside $[0, 1]$ (erratum E9: not "0 otherwise").
# * Sherman–Morrison inverts $S(z)$ in closed form, $S^{-1} = \bigl(I + \frac{\beta}{\lambda_{\text{mean}}}J\bigr)/(1+\beta)$ (6.4), for every $d$; the post's
#   formula (C) is the same matrix.
# * Splitting $V_t$ along $\mathbf 1$ and its complement, a sample enters the step only through $B$, $A$ and $C$: $q_2$ (6.6),
#   $\hat y(\theta(z))$ (6.7), $q'$ by the envelope theorem (6.8) and $q''$ (6.9) are short formulas in them, and $q'' < 0$
#   below the bound: one maximiser.
# * Golden section and safeguarded Newton find the same $z^*$; the step equals a generic optimiser's minimiser
#   within the derived bound (6.10) on a full grid of labels and fractions of the bound up to 0.999.
# * The published trainer's latent-vector write lands in a copy (erratum E3): only the biases train. The reduced
#   step is 14× faster than the published one at $d = 11$ (section 9, one committed run).
#
# ## Exercises
#
# ### Exercise 6.1 (easy)
#
# For $d = 2$, invert $S = \begin{pmatrix}1 & -\beta\\ -\beta & 1\end{pmatrix}$ by the $2\times2$ rule (swap the diagonal, negate the
# off-diagonal, divide by the determinant) and check that the Sherman–Morrison formula gives the same matrix.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# By hand: det = 1 - beta^2, so S^-1 = [[1, beta], [beta, 1]] / (1 - beta^2). Sherman-Morrison with
# d = 2: c = beta / (1 - beta), and (I + cJ)/(1 + beta) has diagonal (1 + c)/(1 + beta) = 1/(1 - beta^2)
# and off-diagonal c/(1 + beta) = beta/(1 - beta^2): the same.
by_hand = sp.Matrix([[1, beta], [beta, 1]]) / (1 - beta**2)
sherman_morrison = (sp.eye(2) + beta / (1 - beta) * sp.ones(2, 2)) / (1 + beta)
sp.simplify(by_hand - sherman_morrison).is_zero_matrix

# %% [markdown]
# ### Exercise 6.2 (easy)
#
# Flip the label of the worked example in section 1 to $y = -1$ (everything else equal). **Predict before
# running:** does $z^*$ rise or fall compared with $0.255$, and does the prediction $\hat y$ go up or down from $0.5$?

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# With y = -1 the current prediction 0.5 is on the wrong side, so the sample's loss and its weight
# z* = sigma(-y y_hat_new) = sigma(y_hat_new) are larger, and the step pushes y_hat down.
flipped = prox.prox_step(
    idx_ex,
    -1,
    torch.tensor(0.0, dtype=torch.float64),
    torch.zeros(2, dtype=torch.float64),
    torch.tensor([[0.5], [1.0]], dtype=torch.float64),
    0.5,
)
y_hat_flipped = float(fmedu.predict_sparse(idx_ex, flipped.w0, flipped.w, flipped.V))
flipped.z > step_ex.z, y_hat_flipped < 0.5

# %% [markdown]
# ### Exercise 6.3 (medium)
#
# As $\eta\to0$ the proximal step should become a gradient step. **Predict** $z^*$ for a tiny step size
# $\eta = 10^{-8}$, then check that $(\theta_{t+1} - \theta_t)/\eta$ equals minus the gradient of the loss at $\theta_t$ (autograd)
# to within $10^{-6}$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# For eta -> 0 the new point is the old one, so z* -> sigma(-y y_hat_t), the SGD weight. The step
# theta(z*) - theta_t is eta * z* * y * grad(y_hat) + O(eta^2) = -eta * grad(loss) + O(eta^2).
idx_t, w0_t, w_t, V_t = testing.random_prox_case(20, 4, 6, 0.5, 3)
tiny = 1e-8
params = [t_.clone().requires_grad_(True) for t_ in (w0_t, w_t, V_t)]
loss = fmedu.losses.logistic_loss(fmedu.predict_sparse(idx_t, *params), torch.tensor(1.0, dtype=torch.float64))
grads = torch.autograd.grad(loss, params)
step_tiny = prox.prox_step(idx_t, 1, w0_t, w_t, V_t, tiny)
gap = max(float(((new - old) / tiny + g).abs().max()) for new, old, g in zip(step_tiny[:3], (w0_t, w_t, V_t), grads))
sgd_weight = 1 / (1 + math.exp(float(fmedu.predict_sparse(idx_t, w0_t, w_t, V_t))))
abs(step_tiny.z - sgd_weight) <= 1e-6, gap <= 1e-6

# %% [markdown]
# ### Exercise 6.4 (medium)
#
# Golden section shrinks the interval by $1/\varphi \approx 0.618$ per evaluation after the first two. **Predict** how many
# evaluations of $q$ it needs for a tolerance of $10^{-12}$ instead of $10^{-8}$, then count them.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Shrinkings: ceil(log(tol) / log(0.618...)) = ceil(57.4) = 58 for 1e-12 (39 for 1e-8); evaluations:
# 2 for the first pair, then one per further shrinking: 2 + 57 = 59 (2 + 38 = 40 for 1e-8).
invphi = (math.sqrt(5) - 1) / 2
predicted = 2 + math.ceil(math.log(1e-12) / math.log(invphi)) - 1
counted = prox.golden_section_max(lambda zz: -((zz - 0.3) ** 2), 0.0, 1.0, 1e-12)[2]
predicted, counted, predicted == counted

# %% [markdown]
# ### Exercise 6.5 (hard)
#
# Chapter 05's beyond-the-bound sample ($d = 11$, $y = +1$, $\eta = 0.3$, pole at $z_s = 1/3$). Show that the closed-form
# $q''$ is negative on a grid of $(0, z_s)$, where it is the true $q$, and positive just right of the pole, where the
# closed form is not $q$ at all. Which factor of the $q''$ formula changes sign?

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# lambda_mean = 1 - eta z (d-1) changes sign at z_s; the term (d-1)^2 m / lambda_mean^3 in q'' then turns
# from -inf (left of the pole) to +inf (right of it), and dominates there: the closed form is convex.
from fmedu.figures import nb05  # chapter 05's demo sample

idx_b, w0_b, w_b, V_b = nb05.beyond_bound_case()
s_b = prox.sample_scalars(idx_b, w0_b, w_b, V_b)
left = [prox.q_second(zz, s_b, 1, 0.3) < 0 for zz in np.linspace(0.01, 0.33, 33)]
all(left), prox.q_second(0.34, s_b, 1, 0.3) > 0

# %% [markdown]
# ### Exercise 6.6 (medium, your turn)
#
# Write $S^{-1}$ for $S = (1+\beta)I - \beta\mathbf 1\mathbf 1^\top$ of size $d$ in closed form (Sherman–Morrison, no solve), as a float64 tensor.
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["s_inverse"].hint()` gives a hint.


# %% fmedu={"stub": "def my_s_inverse(d, beta):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_s_inverse(d, beta):
    E, D = 1 + beta, 1 - (d - 1) * beta
    return (torch.eye(d, dtype=torch.float64) + (beta / D) * torch.ones(d, d, dtype=torch.float64)) / E


# %%
EXERCISES["s_inverse"].check(my_s_inverse).correct

# %% [markdown]
# ### Exercise 6.7 (medium, your turn)
#
# Write $q'(z)$ from the sample scalars: a function of `z` in $(0, 1)$, `B`, `A`, `C`, the number `d` of non-zeros,
# the label `y` and the step size `eta` that returns (6.8) with $\hat y(\theta(z))$ from (6.7), as a float. This is
# the function whose root the step searches for.
# The cell after yours runs this chapter's evidence on your function: autograd of $q$ computed by solving
# $SV = V_t$ with a dense solver (neither the reduced form nor the envelope theorem), $k = 3$, $d \ne k$. It says
# whether your function is right and, when it recognises the mistake, names it;
# `EXERCISES["q_prime"].hint()` gives a hint.


# %% fmedu={"stub": "def my_q_prime(z, B, A, C, d, y, eta):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_q_prime(z, B, A, C, d, y, eta):
    beta = eta * y * z
    lam_mean, lam_perp = 1 - beta * (d - 1), 1 + beta
    m, p = C / d, A - C / d
    y_hat_after = B + (d + 1) * beta + 0.5 * ((d - 1) * m / lam_mean**2 - p / lam_perp**2)  # (6.7)
    return -y * y_hat_after - math.log(z / (1 - z))  # (6.8)


# %%
EXERCISES["q_prime"].check(my_q_prime).correct

# %% [markdown]
# ### Every check of this chapter, caught
#
# A check that no wrong function can fail proves nothing. The table runs every check of this chapter
# that takes a function of yours (each exercise's check, and the chapter's other checks of the same
# function: the residual $SX - I$ of a candidate inverse, and central differences of $q$) on every wrong variant in the course's catalogue (the slips named above, and the errata
# that are code) and on the reference solution; "caught" means the check said wrong. The last line is
# True when every check catches at least one variant, every variant is caught by at least one check,
# and no check rejects a reference solution.

# %%
catch_rows = catch_table("06")
print(format_catch_table(catch_rows))
every_check_catches(catch_rows)

# %% [markdown]
# ## References
#
# 1. A. Shtoff, "Proximal Point to the Extreme – Factorization Machines," blog post in the series
#    *Proximal point*, 14 April 2021, https://alexshtf.github.io/2021/04/14/ProximalPointFM.html; code:
#    https://github.com/alexshtf/proxpt_fm.
# 2. S. Rendle, "Factorization Machines," *IEEE International Conference on Data Mining (ICDM)*,
#    pp. 995–1000, 2010.
# 3. J. Sherman and W. J. Morrison, "Adjustment of an inverse matrix corresponding to a change in one
#    element of a given matrix," *Annals of Mathematical Statistics* 21(1), pp. 124–127, 1950.
# 4. M. Sion, "On general minimax theorems," *Pacific Journal of Mathematics* 8(1), pp. 171–176, 1958.
# 5. P. Milgrom and I. Segal, "Envelope theorems for arbitrary choice sets," *Econometrica* 70(2),
#    pp. 583–601, 2002.
# 6. J. Kiefer, "Sequential minimax search for a maximum," *Proceedings of the American Mathematical
#    Society* 4(3), pp. 502–506, 1953.
# 7. R. H. Byrd, P. Lu, J. Nocedal and C. Zhu, "A limited memory algorithm for bound constrained
#    optimization," *SIAM Journal on Scientific Computing* 16(5), pp. 1190–1208, 1995.
# 8. S. Boyd and L. Vandenberghe, *Convex Optimization*, Cambridge University Press, 2004 (§9.1.2,
#    strong convexity), https://web.stanford.edu/~boyd/cvxbook/.
# 9. N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002.
# 10. NumPy documentation, "Indexing on ndarrays" (advanced indexing returns a copy; PyTorch follows the
#     same rule), https://numpy.org/doc/stable/user/basics.indexing.html.

# %% [markdown]
# [← Previous: 05 · The step-size bound of stochastic proximal point](05_step_size_bound.ipynb) · [Course index](00_index.ipynb) · [Next: 07 · MovieLens 100k: the published experiment, reproduced and corrected →](07_movielens.ipynb)
