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
# # 05 · The step-size bound of stochastic proximal point
#
# A gradient step uses the slope of the loss where it starts; a *proximal* step uses the slope
# where it lands, and that makes it far less sensitive to the step size η. For a factorization
# machine the proximal step has a catch: the loss is not convex in the parameters (the pairwise
# term multiplies two latent vectors), so the step is only well defined when η is small enough.
# How small? The proximal-point blog post [1] answers η ≤ 1/(2d) for a sample with d non-zeros.
# This chapter derives the exact answer, η < 1/(d−1), finds the bookkeeping slip behind the
# published one (erratum E2), measures how far apart the two are for each d, and shows what
# breaks past the bound. A practitioner cares because η is the only knob of the method, and the
# published bound sets it two to five times too small.
#
# Symbols as in the [notation](../README.md#notation) table.
#
# ## What you will learn
#
# * why a proximal step tolerates step sizes at which SGD swings wildly, on a one-parameter example;
# * how the logistic loss becomes a maximum over a dual variable z, and how Sion's minimax theorem
#   turns one proximal step into a search over that one number;
# * why the step needs *strict* convexity, and that for an FM this means: a small d × d matrix S(z)
#   is positive definite;
# * the exact bound η < 1/(d−1), the slip behind the published 1/(2d) (erratum E2), and the ratio
#   of the two as a function of d;
# * what goes wrong beyond the bound.
#
# ## What you need
#
# * Chapter 01 (the FM prediction ŷ of Rendle's paper [2]) and chapter 02 (the logistic loss log(1 + e^{−yŷ}) and its
#   derivative −y·σ(−yŷ), with σ(t) = 1/(1 + e^{−t})).
# * Linear algebra: a symmetric matrix is *positive definite* when all its eigenvalues are
#   positive; a quadratic function is strictly convex exactly when its Hessian is positive definite [5].
#
# The blog post [1] uses other letters; this chapter uses ours:
#
# | blog post | here | meaning |
# |---|---|---|
# | $w\in\{0,1\}^m$ | $x$, with non-zeros `idx` | one sample's features |
# | $x = (b_0, b_1..b_m, v_1..v_m)$ | $\theta = (w_0, w, V)$ | all parameters |
# | $\sigma(w, x)$ | $\hat y$ | the prediction |
# | $\hat y\in\{-1,1\}$ | $y$ | the label |
# | $m$ | $n$ | number of features |
# | $d$, $\lvert\mathrm{nz}(w)\rvert$ | $d$ = `nnz` | non-zeros of the sample |
# | $\eta$, $z$, $S(z)$, $\alpha_{ij}$ | same | step size, dual variable, the system matrix, pair weights |

# %%
import math
from fractions import Fraction

import matplotlib.pyplot as plt
import sympy as sp
import torch
from scipy.optimize import brentq

from fmedu import FMInputError, prox, testing
from fmedu.figures import nb05
from fmedu.notebook import setup
from fmedu.prox import symbolic as prox_symbolic
from fmedu.prox.scalar import sigmoid

setup()

# %% [markdown]
# ## 1. A proximal step against a gradient step, in one dimension
#
# Take the smallest model there is: a prediction that is one number, $\hat y = w_0$ (an FM on a
# sample with no active feature). On a sample with label $y$ the loss is
# $\ell(w_0) = \log(1 + e^{-y w_0})$ with slope $\ell'(w_0) = -y\,\sigma(-y w_0)$.
#
# * **SGD** moves by the slope where it starts: $w_0 \leftarrow w_0 + \eta\,y\,\sigma(-y w_0)$.
# * **The proximal step** minimises the loss plus a penalty for moving,
#   $w_0^+ = \operatorname{argmin}_w\ \ell(w) + \frac{1}{2\eta}(w - w_0)^2$. Setting the derivative to zero gives
#   $w_0^+ = w_0 + \eta\,y\,\sigma(-y w_0^+)$: the same update, but with the slope **where it lands**.
#
# By hand, from $w_0 = 0$ with $y = +1$ and $\eta = 50$: SGD jumps to $0 + 50\cdot\sigma(0) = 25$, a
# prediction of near-certainty from one sample. The proximal step solves $w = 50\,\sigma(-w)$, a
# one-dimensional equation:

# %%
eta_1d = 50.0
sgd_point = 0.0 + eta_1d * sigmoid(0.0)
prox_point = brentq(lambda w_: w_ - eta_1d * sigmoid(-w_), 0.0, eta_1d)  # root of w = η σ(−w)
sgd_point, round(prox_point, 6)

# %% [markdown]
# The library's proximal step for an FM, on a sample with no active feature, is exactly this
# one-dimensional step (the FM reduces to its global bias):

# %%
abs(nb05.bias_only_step("prox", 0.0, 1, eta_1d) - prox_point) <= 1e-12

# %% [markdown]
# Now a stream of samples that disagree: labels $+1, -1, +1, \dots$ (a balanced data set, whose best
# constant prediction is $w_0 = 0$). With a constant step size neither method settles at 0; each ends
# in a two-step swing $-a \to +a \to -a$. Starting a $+1$ step at $-a$ and landing at $+a$ gives the
# swing's equation: $2a = \eta\,\sigma(a)$ for SGD (slope at the start, $-a$) and $2a = \eta\,\sigma(-a)$ for
# the proximal step (slope at the end, $+a$). Since $\sigma < 1$, SGD's swing lies between $\eta/4$ and
# $\eta/2$; for the proximal step $2a\,e^{a} < \eta$, so $a < \log\eta$ once $\eta \ge 2$. After 400 steps,
# for step sizes from 0.5 to 500, the measured swings match the roots of these equations to within
# $10^{-3}$ relative (SGD approaches its cycle slowly where $\sigma$ is flat), and obey both bounds:

# %%
swings = nb05.swing_rows()
[(r["eta"], r["method"], round(r["simulated"], 4)) for r in swings if r["eta"] in (0.5, 50.0, 500.0)]

# %%
converged = all(abs(r["simulated"] - r["fixed_point"]) <= 1e-3 * r["fixed_point"] for r in swings)
sgd_linear = all(r["eta"] / 4 < r["simulated"] <= r["eta"] / 2 for r in swings if r["method"] == "sgd")
prox_log = all(r["simulated"] < math.log(r["eta"]) for r in swings if r["method"] == "prox" and r["eta"] >= 2)
converged, sgd_linear, prox_log

# %%
nb05.plot_one_parameter(50.0, {m: nb05.one_parameter_path(m, 50.0, 12) for m in ("sgd", "prox")}, swings)
plt.show()

# %% [markdown]
# (`figures/05_one_parameter.png`.) Left: at η = 50 SGD jumps between ±25 while the proximal step
# stays within ±2.3. Right: the swing against η on log–log axes (η covers three decades); SGD's
# follows η/2, the proximal step's stays below log η.
#
# Neither method converges with a constant step on disagreeing samples, but the damage a too-large
# η does grows linearly for SGD and only logarithmically for the proximal step. This robustness to
# the step size is the reason to take proximal steps [4, 6]. For an FM the step is harder: the rest
# of the chapter finds when it is still well defined.
#
# ## 2. The proximal step for an FM, as a saddle point
#
# The sample has ones at `idx` ($d$ of them) and label $y$; $\theta = (w_0, w, V)$ are all the parameters and
#
# $$\theta_{t+1} = \operatorname*{argmin}_\theta\; F(\theta),\qquad
#   F(\theta) = \log\bigl(1 + e^{-y\,\hat y(\theta)}\bigr) + \frac{1}{2\eta}\|\theta - \theta_t\|^2,\qquad
#   \hat y = w_0 + \sum_{i\in\mathrm{idx}} w_i + \sum_{i<j\in\mathrm{idx}}\langle v_i, v_j\rangle .$$
#
# ### The logistic loss as a maximum
#
# With $h^*(z) = z\log z + (1-z)\log(1-z)$ (the negative entropy; $0\log 0 = 0$),
#
# $$\log(1 + e^u) = \max_{z\in[0,1]}\; u z - h^*(z),$$
#
# attained at $z = \sigma(u)$. ($h^*$ is the *convex conjugate* of $u\mapsto\log(1+e^u)$ [5, §3.3]; outside
# $[0, 1]$ it is $+\infty$, see chapter 06, erratum E9.) sympy finds the stationary point of the bracket,
# confirms it is a maximum (second derivative $-1/(z(1-z)) < 0$), and its value:

# %%
u = sp.Symbol("u", real=True)
z = sp.Symbol("z", positive=True)
h_star = z * sp.log(z) + (1 - z) * sp.log(1 - z)
bracket = u * z - h_star
z_best = sp.solve(sp.diff(bracket, z), z)
z_best, sp.simplify(sp.diff(bracket, z, 2))

# %%
sp.simplify(sp.expand_log(bracket.subs(z, z_best[0]), force=True) - sp.log(1 + sp.exp(u)))

# %% [markdown]
# The maximiser $z = 1/(1 + e^{-u})$ is the weight $\sigma(-y\hat y)$ that an SGD step puts on the
# gradient of $\hat y$ (chapter 02). With $u = -y\hat y(\theta)$ the prox objective becomes
# $F(\theta) = \max_{z\in[0,1]}\varphi(\theta, z)$ with
#
# $$\varphi(\theta, z) = -z\,y\,\hat y(\theta) + \frac{1}{2\eta}\|\theta-\theta_t\|^2 - h^*(z).$$
#
# ### Swapping min and max: Sion's theorem
#
# The step is $\min_\theta\max_z\varphi$. **Sion's minimax theorem** [3], in the form needed here: *if
# $\varphi(\theta, z)$ is continuous, convex in $\theta$ for every $z$, concave in $z$ for every $\theta$, and $z$ ranges over
# a compact convex set, then $\min_\theta\max_z\varphi = \max_z\min_\theta\varphi$* (with inf in place of min where no
# minimum is attained). Here $z\in[0,1]$ is compact and
# convex, and $\varphi$ is concave in $z$ (its $z$-part is $-h^*$, second derivative $-1/(z(1-z))$ above). What
# remains is **convexity in $\theta$** for every $z\in[0,1]$.
#
# Swapping pays off because for a fixed $z$, $\varphi(\cdot, z)$ is a *quadratic* in $\theta$ ($\hat y$ is linear in the
# biases and quadratic in $V$): its minimiser $\theta(z)$ solves a linear system, and the outer problem
# $\max_z q(z)$, $q(z) = \min_\theta\varphi(\theta, z)$, is a search over one number (chapter 06).
#
# ### Why *strict* convexity
#
# A strictly convex function has at most one minimiser: if $\theta_1 \ne \theta_2$ both minimised it, the midpoint
# would have a strictly smaller value. A quadratic with a positive definite Hessian is strictly convex
# and has exactly one minimiser, where its gradient vanishes. So if $\varphi(\cdot, z)$ has a positive definite
# Hessian for every $z\in[0,1]$:
#
# * $\theta(z)$ is one well-defined point for every $z$, and $q$ is strictly concave (a minimum of functions that
#   are affine in $z$, plus the strictly concave $-h^*$), with one maximiser $z^*$, strictly inside $(0, 1)$ because the
#   slope of $-h^*$ is $+\infty$ at 0 and $-\infty$ at 1;
# * $\theta_{t+1} = \theta(z^*)$. Indeed, **weak duality** $q(z) \le \varphi(\theta, z) \le F(\theta)$ holds for all $\theta, z$ (a minimum is at
#   most any value, and $F$ is the maximum over $z$); at $z^*$, the derivative $q'(z^*) = \partial_z\varphi(\theta(z^*), z^*) = 0$
#   makes $z^*$ the maximiser of the concave $\varphi(\theta(z^*), \cdot)$, so $F(\theta(z^*)) = q(z^*) \le F(\theta)$ for every $\theta$.
#
# ## 3. Where convexity fails: two features, one latent dimension
#
# The smallest FM with an interaction: $d = 2$ active features and $k = 1$, so
# $\hat y = w_0 + w_1 + w_2 + v_1 v_2$. Take $y = +1$. The Hessian of $\varphi(\cdot, z)$ over
# $\theta = (w_0, w_1, w_2, v_1, v_2)$, by sympy ($h^*(z)$ does not depend on $\theta$):

# %%
theta = sp.symbols("w0 w1 w2 v1 v2", real=True)
theta_t = sp.symbols("w0_t w1_t w2_t v1_t v2_t", real=True)
eta = sp.Symbol("eta", positive=True)
lam = sp.Symbol("lambda")  # charpoly's variable (sympy drops assumptions on it)
w0_, w1_, w2_, v1_, v2_ = theta
phi_small = -z * (w0_ + w1_ + w2_ + v1_ * v2_) + sum((a - b) ** 2 for a, b in zip(theta, theta_t)) / (2 * eta)
H_small = sp.hessian(phi_small, theta)
H_small

# %% [markdown]
# The biases give $1/\eta$ on the diagonal; the product $v_1v_2$ gives the off-diagonal $-z$. Its
# characteristic polynomial is exactly $(\lambda - \frac1\eta)^3(\lambda - \frac{1 - \eta z}{\eta})(\lambda - \frac{1+\eta z}{\eta})$:

# %%
expected = (lam - 1 / eta) ** 3 * (lam - (1 - eta * z) / eta) * (lam - (1 + eta * z) / eta)
sp.expand(H_small.charpoly(lam).as_expr() - expected)

# %% [markdown]
# The smallest eigenvalue is $(1 - \eta z)/\eta$: positive for every $z\in[0,1]$ exactly when $\eta < 1$. Past that,
# $\varphi(\cdot, z)$ has no minimum for $z > 1/\eta$: move both latent values by the same $s$ and the
# coefficient of $s^2$ is negative:

# %%
s_move = sp.Symbol("s", real=True)
along = phi_small.subs({v1_: theta_t[3] + s_move, v2_: theta_t[4] + s_move, **dict(zip(theta[:3], theta_t[:3]))})
sp.Poly(sp.expand(along), s_move).coeff_monomial(s_move**2)

# %% [markdown]
# $1/\eta - z < 0$ when $z > 1/\eta$: along this direction $\varphi \to -\infty$, so $q(z) = -\infty$ there and the
# derivation collapses. The rest of the chapter does the same for any $d$ and $k$.
#
# ## 4. Any number of features: the Hessian is $S(z)/\eta \otimes I_k$
#
# The biases enter $\hat y$ linearly, so their part of $\varphi$ is a linear term plus $\|\cdot\|^2/(2\eta)$: always
# strictly convex. Rows of $V$ outside `idx` appear only in $\|\cdot\|^2/(2\eta)$. What remains is the
# **latent part** (the blog post colours it brown), over the $d$ rows in `idx`:
#
# $$\varphi_V(V) = -z\,y\sum_{i<j}\langle v_i, v_j\rangle + \frac{1}{2\eta}\sum_i\|v_i - v_{i,t}\|^2 .$$
#
# **Claim.** Its Hessian is $\frac1\eta S(z)\otimes I_k$ (one copy of the $d\times d$ matrix $S(z)/\eta$ per latent
# dimension) with
#
# $$S(z) = (1 + \eta y z)\,I - \eta y z\,\mathbf 1\mathbf 1^\top .$$
#
# sympy differentiates $\varphi_V$ twice for $d = 4$ rows and $k = 3$ (rows flattened row-major), both labels,
# and compares with the Kronecker product:

# %%
[prox_symbolic.hessian_is_kron_s(4, 3, y) for y in (1, -1)]

# %% [markdown]
# So $\varphi(\cdot, z)$ is strictly convex exactly when $S(z)$ is positive definite. ($d = 2$, $k = 1$ is the example
# of section 3: $S = \begin{pmatrix}1 & -\eta z\\ -\eta z & 1\end{pmatrix}$.)
#
# ## 5. The eigenvalues of $S(z)$
#
# Write $\beta = \eta y z$ and $J = \mathbf 1\mathbf 1^\top$ (all ones), so $S = (1+\beta)I - \beta J$. **Claim:**
#
# $$S\,\mathbf 1 = \bigl(1 - \beta(d-1)\bigr)\mathbf 1,\qquad S\,u = (1+\beta)\,u\ \text{ whenever } \mathbf 1^\top u = 0 .$$
#
# Call them $\lambda_{\text{mean}} = 1 - \beta(d-1)$ (once) and $\lambda_\perp = 1 + \beta$ ($d-1$ times). For concrete
# $d = 2\ldots7$, sympy multiplies $S$ with $\mathbf 1$ and with the $d-1$ vectors $e_1 - e_j$ (each sums to zero):

# %%
beta = sp.Symbol("beta")


def eigenpairs_hold(d):
    S = prox_symbolic.sym_s_matrix(d, beta)
    ones = sp.ones(d, 1)
    diffs = [sp.eye(d)[:, 0] - sp.eye(d)[:, j] for j in range(1, d)]
    mean_ok = sp.expand(S * ones - (1 - beta * (d - 1)) * ones).is_zero_matrix
    perp_ok = all(sp.expand(S * u_ - (1 + beta) * u_).is_zero_matrix for u_ in diffs)
    spans = sp.Matrix.hstack(ones, *diffs).rank() == d  # together a basis of R^d
    return mean_ok and perp_ok and spans


[eigenpairs_hold(d) for d in range(2, 8)]

# %% [markdown]
# The $d$ vectors form a basis, so these are *all* the eigenvalues. As a second check, sympy's
# determinant of the explicit matrix equals their product, $(1+\beta)^{d-1}(1 - \beta(d-1))$, for $d = 1\ldots7$:

# %%
[
    sp.factor(prox_symbolic.sym_s_matrix(d, beta).det() - (1 + beta) ** (d - 1) * (1 - beta * (d - 1)))
    for d in range(1, 8)
]

# %% [markdown]
# **For every $d$ at once.** sympy's matrix expressions can leave the size symbolic: $I$ = `Identity(d)`,
# $J$ = `OneMatrix(d, d)` and $\mathbf 1$ = `OneMatrix(d, 1)`, with sympy's own rule $J\mathbf 1 = d\,\mathbf 1$.
# Expanding $S\mathbf 1$ and splitting it into a multiple of $\mathbf 1$ gives the coefficient; expanding $Su$
# gives multiples of $u$ and $Ju$:

# %%
G = prox_symbolic.sym_s_symbolic_d()
u_vec = sp.MatrixSymbol("u", G.d, 1)
(mean_coefficient,) = prox_symbolic.split_terms(G.S * G.ones, [G.ones])
sp.simplify(mean_coefficient - (1 - G.beta * (G.d - 1))), prox_symbolic.split_terms(G.S * u_vec, [u_vec, G.J * u_vec])

# %% [markdown]
# The first is $0$: $S\mathbf 1 = (1 - \beta(d-1))\mathbf 1$ for every $d$. The second says $Su = (1+\beta)u - \beta\,Ju$, and
# $Ju = \mathbf 1(\mathbf 1^\top u) = 0$ when $u$ sums to zero, so $Su = (1+\beta)u$.
#
# ## 6. The exact bound
#
# $S(z)$ must be positive definite for every $z\in[0,1]$:
#
# * $y = +1$ ($\beta = \eta z \ge 0$): $\lambda_\perp = 1 + \eta z > 0$ always; $\lambda_{\text{mean}} = 1 - \eta z(d-1)$ is smallest
#   at $z = 1$, so **$\eta < 1/(d-1)$**.
# * $y = -1$ ($\beta = -\eta z$): $\lambda_{\text{mean}} = 1 + \eta z(d-1) > 0$ always; $\lambda_\perp = 1 - \eta z$ needs
#   **$\eta < 1$** (when $d\ge 2$).
# * One bound for both labels: $1/(d-1)$. With $d \le 1$ there are no pairs and any $\eta > 0$ works.
#
# `prox.step_size_bound` returns these. Check it against the eigenvalues of the explicit float64
# matrix at the worst case $z = 1$: just below the bound the smallest eigenvalue is positive, just
# above it is negative:


# %%
def s_min_eig(d, eta_value, y):
    return float(torch.linalg.eigvalsh(prox.s_matrix(d, eta_value, y, 1.0))[0])


bounds = {(d, y): prox.step_size_bound(d, "exact", y) for d in (2, 6, 11) for y in (1, -1)}
all(s_min_eig(d, 0.999 * b, y) > 0 > s_min_eig(d, 1.001 * b, y) for (d, y), b in bounds.items())

# %% [markdown]
# ## 7. The published bound, and erratum E2
#
# The blog post avoids eigenvalues. With $\alpha_{ij} = -z y x_i x_j$ (for the sample's pairs
# $|\alpha_{ij}| = z$ and $\operatorname{sign}\alpha_{ij} = -y$; $\alpha_{ii} = 0$) it writes each product through
# $v_i^\top v_j = \tfrac12\|v_i + v_j\|^2 - \tfrac12\|v_i\|^2 - \tfrac12\|v_j\|^2$:
#
# $$\varphi_V(V) = \tfrac12\sum_{i<j}|\alpha_{ij}|\,\|v_i + \operatorname{sign}(\alpha_{ij})v_j\|^2
#   + \sum_i\Bigl(\frac{1}{2\eta} - c_i\Bigr)\|v_i\|^2 + (\text{linear in } V),$$
#
# and asks every coefficient $\frac{1}{2\eta} - c_i$ to be non-negative (the first sum is convex anyway). Each pair
# $(i, j)$ puts $-\tfrac12|\alpha_{ij}|\|v_i\|^2$ on row $i$ and $-\tfrac12|\alpha_{ij}|\|v_j\|^2$ on row $j$.
#
# > **Erratum E2 (Proximal Point to the Extreme – Factorization Machines [1]).** The post gives each row
# > the coefficient $c_i = \sum_j|\alpha_{ij}|$ and concludes, with $|\alpha_{ij}| \le 1$ summed over $d$ terms, that
# > $\eta \le 1/(2d)$ makes the step convex (it then uses $\eta = 1/(2d+1)$). **Correct:** the coefficient is
# > $c_i = \tfrac12\sum_j|\alpha_{ij}| = \tfrac12 z(d-1)$ ($\alpha_{ii} = 0$ leaves $d-1$ terms), which gives
# > $\eta < 1/(d-1)$ for $d\ge 2$; this is also the exact condition for $y = +1$ (section 6: the smallest
# > eigenvalue of $S(z)$ is $1 - (d-1)\eta z$). The published bound is safe but too small. Evidence: the
# > sympy identity check below, and section 6.
#
# sympy expands $\varphi_V$ minus the rewriting, for $d = 2\ldots5$, $k = 3$, both labels, with either
# coefficient (`0` = the rewriting is an identity):

# %%
{
    (d, y, c): prox_symbolic.sym_blog_decomposition(d, 3, y, c) == 0
    for d in range(2, 6)
    for y in (1, -1)
    for c in ("corrected", "published")
}

# %% [markdown]
# Only the corrected coefficient makes the rewriting an identity. The published one is off by exactly
# $\tfrac12 z(d-1)\sum_i\|v_i\|^2$, which is the half it double-counts:


# %%
def published_offset_is_half(d, y):
    _, V_sym, _, z_sym, _ = prox_symbolic.sym_latent_part(d, 3, y)
    offset = sp.Rational(1, 2) * z_sym * (d - 1) * sum(e**2 for e in V_sym)
    return sp.expand(prox_symbolic.sym_blog_decomposition(d, 3, y, "published") - offset) == 0


all(published_offset_is_half(d, y) for d in range(2, 6) for y in (1, -1))

# %% [markdown]
# ### How far apart: the ratio published / exact as a function of $d$
#
# For $y = +1$ the ratio of the published step size to the exact bound is
# $r(d) = \dfrac{1/(2d+1)}{1/(d-1)} = \dfrac{d-1}{2d+1}$. It increases with $d$ and tends to $\tfrac12$:

# %%
d_sym = sp.Symbol("d", integer=True, positive=True)
r = sp.simplify(sp.Rational(1) / (2 * d_sym + 1) / (sp.Rational(1) / (d_sym - 1)))
r, sp.factor(sp.diff(r, d_sym)), sp.limit(r, d_sym, sp.oo), sp.solve(sp.Eq(r, sp.Rational(2, 5)), d_sym)

# %% [markdown]
# Its derivative $3/(2d+1)^2$ is positive, its limit is $1/2$, and $r(d) = 2/5$ at $d = 7$. Exact values
# from the library's bounds (the MovieLens samples of chapter 07 have 6 to 11 non-zeros):

# %%
table = []
for d in (2, 3, 4, 6, 7, 11, 15, 50):
    published, exact = Fraction(1, 2 * d + 1), Fraction(1, d - 1)
    assert prox.step_size_bound(d, "published") == float(published) and prox.step_size_bound(d, "exact", 1) == float(
        exact
    )
    table.append((d, str(published), str(exact), str(published / exact), f"{float(published / exact):.3f}"))
[("d", "published 1/(2d+1)", "exact 1/(d-1)", "ratio", "≈")] + table

# %%
all(Fraction(d - 1, 2 * d + 1) < Fraction(1, 2) for d in range(2, 10_000))

# %% [markdown]
# So "about half" holds only for large $d$: the ratio is $1/5$ at $d = 2$, $5/13 \approx 0.385$ at $d = 6$,
# $10/23 \approx 0.435$ at $d = 11$ (the MovieLens maximum: any $\eta < 1/10$ instead of $1/23$), at least $0.4$ from
# $d = 7$ on, and never reaches $1/2$. Exercise 5.5 separates the factor the slip costs from the rest.
#
# ## 8. Watching convexity fail
#
# An independent check that uses no formula: the whole Hessian of $\theta\mapsto\varphi(\theta, z)$ over the
# sample's coordinates $(w_0, w_{\mathrm{idx}}, V_{\mathrm{idx}})$, by torch autograd, and its smallest eigenvalue by
# `eigvalsh`, at the worst case $y = +1$, $z = 1$, $k = 3$. Scaled by $\eta$ it should be
# $\min(1, 1 - \eta(d-1)) = 1 - \eta(d-1)$ (to rounding, `testing.SCALED_EIG_ATOL` = $10^{-12}$), and cross zero at
# $\eta = 1/(d-1)$:

# %%
eig_rows = nb05.min_eigenvalue_rows()
max(abs(r_["scaled_min_eig"] - r_["formula"]) for r_ in eig_rows) <= testing.SCALED_EIG_ATOL

# %%
at_bound = [r_ for r_ in eig_rows if r_["eta"] == r_["exact_bound"]]
[(r_["d"], abs(r_["scaled_min_eig"]) <= testing.SCALED_EIG_ATOL) for r_ in at_bound]

# %%
nb05.plot_min_eigenvalue(eig_rows)
plt.show()

# %% [markdown]
# (`figures/05_min_eigenvalue.png`.) Each line falls linearly with η and crosses zero at its circle,
# the exact bound $1/(d-1)$; the crosses, the published bound, sit well inside the convex region.
#
# ## 9. Beyond the bound
#
# Take a sample with $d = 11$, $y = +1$, and $\eta = 0.3$, three times the bound $1/10$.
#
# **$S(z)$ becomes singular** at $z_s = 1/(\eta(d-1)) = 1/3$: its smallest eigenvalue $1 - \eta z(d-1)$ is zero there
# (sympy's determinant of the explicit $11\times11$ matrix):

# %%
eta_beyond, d_beyond = sp.Rational(3, 10), 11
prox_symbolic.sym_s_matrix(d_beyond, eta_beyond * sp.Rational(1, 3)).det()

# %% [markdown]
# **Past $z_s$ the inner problem has no minimum**: moving every $v_i$ along the same direction (the
# eigenvector $\mathbf 1$ of $S$) sends $\varphi(\cdot, z)$ to $-\infty$ when $z > z_s$, while below $z_s$ it grows. So the true
# $q(z) = \min_\theta\varphi(\theta, z)$ is $-\infty$ on $(z_s, 1]$ (step lengths 0, 1, 10, 100, 1000):

# %%
idx, w0, w, V = nb05.beyond_bound_case()
eta_value, y = 0.3, 1
above = nb05.unbounded_direction_values(idx, y, w0, w, V, eta_value, z=0.5)
below = nb05.unbounded_direction_values(idx, y, w0, w, V, eta_value, z=0.2)
all(a > b for a, b in zip(above, above[1:])) and above[-1] < -1e4, below[-1] > below[1]

# %% [markdown]
# **$F$ itself is no longer convex.** Its Hessian contains the Hessian of $\varphi(\cdot, z)$ at
# $z = \sigma(-y\hat y(\theta))$; where that $z$ exceeds $z_s$, a rank-one term from the loss cannot repair
# a $k$-dimensional negative eigenspace. With the global bias moved to $-20$ (so $z\approx 1$), the
# smallest eigenvalue of $F$'s autograd Hessian is negative:

# %%
nb05.prox_objective_min_eig(idx, y, w0, w, V, eta_value, w0_at=-20.0) < 0

# %% [markdown]
# **The closed form blows up.** Chapter 06 computes $q$ in closed form by dividing by the eigenvalues of
# $S(z)$ (the blog post's formula (C) for the new latent vectors). Applied blindly past the bound,
# it has a pole at $z_s$: it tends to $-\infty$ from the left, like the true $q$, but to $+\infty$ from the right,
# where the "solution" of $S(z)V = V_t$ is a saddle point, not a minimum. The published golden-section
# search over $[0, 1]$ assumes $q$ has one peak and walks into the pole:

# %%
golden = prox.prox_step(idx, y, w0, w, V, eta_value, solver="golden", allow_beyond_bound=True)
dual = prox.prox_step(idx, y, w0, w, V, eta_value, allow_beyond_bound=True)
abs(golden.z - 1 / 3) <= 1e-7, dual.z < 1 / 3

# %%
nb05.plot_beyond_bound(nb05.beyond_bound_rows(eta_value), golden.z, dual.z)
plt.show()

# %% [markdown]
# (`figures/05_beyond_bound.png`.) Left of the pole the closed form and the true $q$ coincide and peak
# at the green dot; right of it the closed form is a spurious branch, and golden section ends at the
# pole. The point it returns is not the minimiser of the prox objective: the latent vectors are scaled
# by $1/\lambda_{\text{mean}}\approx 10^{8}$, and $F$ there is astronomically larger than the minimum a generic
# optimiser finds (L-BFGS-B from a dozen starting points, since $F$ is not convex):


# %%
def F_at(result):
    return float(prox.prox_objective(idx, y, result.w0, result.w, result.V, eta_value, w0, w, V))


numerical = nb05.multistart_minimum(idx, y, w0, w, V, eta_value)
F_at(golden) > 1e10 * F_at(numerical), float(golden.V.abs().max()) > 1e6

# %% [markdown]
# ### What still works past the bound
#
# The maximiser of the *true* $q$, searched only below the pole where $q$ is finite and concave, still
# gives the minimiser. Weak duality needs no convexity: at the root $z^* < z_s$ of $q'$, $S(z^*)$ is positive
# definite, $\theta(z^*)$ minimises $\varphi(\cdot, z^*)$, and the argument of section 2 gives $F(\theta(z^*)) = q(z^*) \le \min F$.
# So $\theta(z^*)$ is a global minimiser of $F$ (and the only one: any other would also minimise $\varphi(\cdot, z^*)$).
# This needs $q\to-\infty$ at the pole, that is $V_{\mathrm{idx}}$ not exactly orthogonal to the pole's eigenvector,
# which holds for all but a measure-zero set of parameters. `prox_step(..., allow_beyond_bound=True)`
# cuts its search at the pole; its answer matches the optimiser (to `testing.OPTIMISER_RTOL` relative)
# and is a stationary point of $F$ (to `testing.kkt_tolerance`):

# %%
agree = max(
    float((dual.w0 - numerical.w0).abs()),
    float((dual.w - numerical.w).abs().max()),
    float((dual.V - numerical.V).abs().max()),
)
size = 1 + float(dual.V.abs().max())
kkt = prox.kkt_residual(dual, idx, y, w0, w, V, eta_value)
agree <= testing.OPTIMISER_RTOL * size, kkt <= testing.kkt_tolerance(V[idx], eta_value)

# %% [markdown]
# Still, `prox_step` refuses such step sizes by default: past the bound Sion's theorem no longer covers
# the derivation, $F$ is not convex, and an unguarded search over $[0,1]$, the published one, fails as
# shown. The error states the bound:

# %%
try:
    prox.prox_step(idx, y, w0, w, V, eta_value)
except FMInputError as error:
    print(error)

# %% [markdown]
# ## Key takeaways
#
# * A proximal step uses the loss's slope where it lands. On a one-parameter logistic model with
#   disagreeing samples its swing stays below log η, while SGD's grows like η/2.
# * Writing the logistic loss as $\max_{z\in[0,1]} uz - h^*(z)$ makes one step a saddle point $\min_\theta\max_z\varphi$;
#   Sion's theorem swaps the order when $\varphi(\cdot, z)$ is convex, and *strict* convexity makes $\theta(z)$ and the step unique.
# * For an FM the Hessian of $\varphi(\cdot, z)$ is $S(z)/\eta\otimes I_k$, $S(z) = (1+\eta yz)I - \eta yz\,\mathbf 1\mathbf 1^\top$, with eigenvalues
#   $1 - \eta yz(d-1)$ (once) and $1 + \eta yz$ ($d-1$ times).
# * The exact bound is $\eta < 1/(d-1)$ for $y = +1$ and $\eta < 1$ for $y = -1$. The published $1/(2d+1)$ rests on a
#   double-counted coefficient (erratum E2) and is $(d-1)/(2d+1)$ of the exact bound: $1/5$ at $d = 2$,
#   $10/23\approx0.435$ at $d = 11$, approaching $1/2$ only as $d$ grows.
# * Past the bound $q = -\infty$ beyond a pole, $F$ is not convex, and a golden-section search over $[0, 1]$
#   returns a useless point; a search cut at the pole still finds the minimiser.
#
# ## Exercises
#
# ### Exercise 5.1 (easy)
#
# The blog post's example has six categorical fields, so $d\le 6$, and it concludes $\eta \le 1/12$.
# **Predict before running:** the exact bound for $d = 6$, $y = +1$; the eigenvalues of $S(z)$ at
# $\eta = 1/12$ and $z = 1$; and the ratio of $1/12$ to the exact bound.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Exact bound 1/(d-1) = 1/5. At beta = eta*z = 1/12: lambda_mean = 1 - 5/12 = 7/12 (once),
# lambda_perp = 1 + 1/12 = 13/12 (five times). Ratio (1/12) / (1/5) = 5/12: under half.
S6 = prox_symbolic.sym_s_matrix(6, sp.Rational(1, 12))
S6.eigenvals() == {sp.Rational(7, 12): 1, sp.Rational(13, 12): 5} and sp.Rational(1, 12) / sp.Rational(
    1, 5
) == sp.Rational(5, 12)

# %% [markdown]
# ### Exercise 5.2 (easy)
#
# For a negative label, $\beta = -\eta z$. Which eigenvalue of $S(z)$ limits $\eta$ now, and why does the bound
# not depend on $d$? Check with sympy for $d = 2\ldots6$ at $z = 1$, and against `prox.step_size_bound`.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# With beta = -eta: lambda_mean = 1 + eta*(d-1) > 0 always; lambda_perp = 1 - eta (d-1 times)
# vanishes at eta = 1 whatever d is, so the bound for y = -1 is eta < 1.
eta_s = sp.Symbol("eta", positive=True)
spectra_ok = all(
    prox_symbolic.sym_s_matrix(d, -eta_s).eigenvals() == {1 - eta_s: d - 1, 1 + eta_s * (d - 1): 1} for d in range(2, 7)
)
spectra_ok and all(prox.step_size_bound(d, "exact", -1) == 1.0 for d in range(2, 7))

# %% [markdown]
# ### Exercise 5.3 (medium)
#
# Feed both samples of section 1 at once: full-batch gradient descent on $f(w_0) = \log(1 + e^{-w_0}) + \log(1 + e^{w_0})$
# against the full proximal step on $f$. Near the minimiser $w_0 = 0$, one gradient step multiplies the
# distance by $1 - \eta f''(0)$ and one proximal step by $1/(1 + \eta f''(0))$. **Predict** for which $\eta$ each
# converges, then run 2000 steps at $\eta = 3.9$ and $\eta = 4.1$ (and the proximal step at $\eta = 100$).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# f''(0) = 1/2, so gradient descent contracts iff |1 - eta/2| < 1, i.e. 0 < eta < 4, while the
# proximal factor 1/(1 + eta/2) is below 1 for every eta > 0.
w_s = sp.Symbol("w", real=True)
f_full = sp.log(1 + sp.exp(-w_s)) + sp.log(1 + sp.exp(w_s))
f2_at_0 = sp.simplify(sp.diff(f_full, w_s, 2).subs(w_s, 0))
slope_full = sp.lambdify(w_s, sp.diff(f_full, w_s))  # = tanh(w/2)
f2_at_0 == sp.Rational(1, 2)


# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Run both from w0 = 1 for 2000 steps. Expected: [True, False, True]: gradient descent converges at
# 3.9, does NOT at 4.1 (it settles into a swing around 0 larger than 0.1), and the proximal step
# converges even at eta = 100.
def full_batch(method, eta_value, w_value=1.0, steps=2000):
    for _ in range(steps):
        if method == "gd":
            w_value = w_value - eta_value * slope_full(w_value)
        else:  # proximal: solve p + eta f'(p) = w, the slope at the arrival point
            w_value = brentq(lambda p: p + eta_value * slope_full(p) - w_value, -abs(w_value) - 1, abs(w_value) + 1)
    return abs(w_value)


[bool(full_batch("gd", 3.9) < 1e-12), bool(full_batch("gd", 4.1) < 0.1), bool(full_batch("prox", 100.0) < 1e-12)]

# %% [markdown]
# ### Exercise 5.4 (medium)
#
# Take $d = 5$, $y = +1$ and a step size 1 % above the exact bound, $\eta = 101/400$. **Predict** the $z$ in
# $[0, 1]$ at which $S(z)$ becomes singular, then find it with sympy from the determinant.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# lambda_mean = 1 - eta*z*(d-1) = 0 at z = 1/(4 eta) = 100/101, just inside [0, 1]: the step fails only
# for samples whose optimal z would exceed 0.99. (lambda_perp = 1 + eta*z never vanishes for z >= 0.)
z_s = sp.Symbol("z", real=True)
roots = sp.solve(prox_symbolic.sym_s_matrix(5, sp.Rational(101, 400) * z_s).det(), z_s)
[root for root in roots if 0 <= root <= 1] == [sp.Rational(100, 101)]

# %% [markdown]
# ### Exercise 5.5 (hard)
#
# Separate the two sources of the gap between $1/(2d+1)$ and $1/(d-1)$. Keep the post's coefficient
# $c_i = \sum_j|\alpha_{ij}|$ but count only the $d-1$ pairs of row $i$ ($\alpha_{ii} = 0$): which bound does
# $\frac{1}{2\eta} - c_i \ge 0$ at $z = 1$ give, and what is its ratio to the exact bound? What is left of the gap?

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Published coefficient with d-1 terms: 1/(2 eta) >= d-1, i.e. eta <= 1/(2(d-1)): exactly half the
# exact bound for every d, so the double count costs a factor 2. The rest, 1/(2(d-1)) -> 1/(2d+1),
# comes from counting alpha_ii (d terms instead of d-1) and from the +1 added for strictness.
eta_s, d_s = sp.symbols("eta d", positive=True)
slip_bound = sp.solve(sp.Eq(1 / (2 * eta_s) - (d_s - 1), 0), eta_s)[0]
sp.simplify(slip_bound / (1 / (d_s - 1))) == sp.Rational(1, 2), sp.simplify(slip_bound - 1 / (2 * (d_s - 1)))

# %% [markdown]
# ## References
#
# 1. A. Shtoff, "Proximal Point to the Extreme – Factorization Machines", blog post in the series
#    *Proximal point*, 14 April 2021, https://alexshtf.github.io/2021/04/14/ProximalPointFM.html; code:
#    https://github.com/alexshtf/proxpt_fm.
# 2. S. Rendle, "Factorization Machines", *IEEE International Conference on Data Mining (ICDM)*,
#    pp. 995–1000, 2010.
# 3. M. Sion, "On general minimax theorems", *Pacific Journal of Mathematics* 8(1), pp. 171–176, 1958.
# 4. H. Asi and J. C. Duchi, "Stochastic (approximate) proximal point methods: convergence, optimality,
#    and adaptivity", *SIAM Journal on Optimization* 29(3), pp. 2257–2290, 2019.
# 5. S. Boyd and L. Vandenberghe, *Convex Optimization*, Cambridge University Press, 2004
#    (§3.1.4 second-order conditions, §3.3 conjugate functions), https://web.stanford.edu/~boyd/cvxbook/.
# 6. N. Parikh and S. Boyd, "Proximal Algorithms", *Foundations and Trends in Optimization* 1(3),
#    pp. 127–239, 2014.

# %% [markdown]
# [← Previous: 04 · User–item data and identifiability](04_user_item.ipynb) · [Course index](00_index.ipynb) · [Next: 06 · The Sherman–Morrison prox solve →](06_prox_solve.ipynb)
