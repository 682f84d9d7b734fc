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
# A gradient step moves along the loss's slope where it starts; a *proximal* step minimises the
# loss plus a penalty for moving, so it uses the slope where it lands. The proximal-point blog
# post [1] computes such a step for a factorization machine by turning it into a search over one
# dual number $z$, and that search is only justified when one step is a convex problem. For a
# sample with $d$ non-zeros this chapter derives exactly when it is: $\eta < 1/(d-1)$ for a
# positive label and $\eta < 1$ for a negative one. The post derives the sufficient condition
# $\eta \le 1/(2d)$ and uses $\eta = 1/(2d+1)$ ("the published bound" below, $1/23$ at $d = 11$);
# its factor 2 comes from a bookkeeping slip (erratum E2). A practitioner should know what the
# bound is about: **one step**. Below it, the step is a convex problem and the search over $z$
# solves it; it says nothing about many steps in a row. The prox objective has a minimiser for
# every $\eta$, and staying below the bound does not make the iteration stable: chapter 07
# ([07_movielens](07_movielens.ipynb)) shows the exact step getting worse every epoch on MovieLens at the published
# $\eta$, and chapter 09 ([09_regularised_prox](09_regularised_prox.ipynb)) explains why.
#
# Symbols as in the [notation](../README.md#notation) table.
#
# ## What you will learn
#
# * how the logistic loss becomes a maximum over $z\in[0,1]$, and how one proximal step becomes a
#   saddle point, solved in three steps (min–max, Sion's theorem, weak duality);
# * to derive the Hessian of the step's inner problem, $\frac1\eta S(z)\otimes I_k$ (a Kronecker product, defined in
#   section 5), and the eigenpairs of the $d\times d$ matrix $S(z)$;
# * the exact bound $\eta < 1/(d-1)$, the slip behind the published one (erratum E2), and their ratio;
# * what the bound means (every inner problem strictly convex) and what it does not (a minimiser
#   exists anyway; the iteration may still diverge).
#
# ## What you need
#
# * Chapter 01's prediction $\hat y$ (Rendle's paper [2]) and chapter 02's logistic loss
#   $\log(1 + e^{-y\hat y})$ with derivative $-y\,\sigma(-y\hat y)$, $\sigma(t) = 1/(1+e^{-t})$.
# * A symmetric matrix is *positive definite* when all its eigenvalues are positive; a quadratic
#   function is strictly convex exactly when its Hessian is positive definite [5, §3.1.4].
#
# The blog post writes $w$ for our $x$, $x = (b_0, b, v)$ for our $\theta = (w_0, w, V)$, $\sigma(w, x)$ for our
# $\hat y$, $\hat y$ for our label $y$, $m$ for our $n$; $d$, $\eta$, $z$, $S(z)$ and $\alpha_{ij}$ are the same.

# %%
import math
from fractions import Fraction

import matplotlib.pyplot as plt
import sympy as sp
import torch
from scipy.optimize import brentq

from fmedu import FMInputError, prox
from fmedu.exercises import EXERCISES, catch_table, every_check_catches, format_catch_table
from fmedu.figures import nb05
from fmedu.notebook import setup
from fmedu.prox import lecture
from fmedu.prox import symbolic as prox_symbolic
from fmedu.prox.scalar import sigmoid

setup()

# %% [markdown]
# ## 1. A worked example: two features, one latent dimension
#
# A sample with two active features and $k = 1$ has $\hat y = w_0 + w_1 + w_2 + v_1v_2$. One proximal
# step with step size $\eta$ from $\theta_t$ is
#
# $$\theta_{t+1} = \operatorname*{argmin}_\theta F(\theta),\qquad
#   F(\theta) = \log\bigl(1 + e^{-y\hat y(\theta)}\bigr) + \frac{1}{2\eta}\|\theta - \theta_t\|^2 . \tag{5.0}$$
#
# Replace the loss by a straight line with slope $-z$ in $y\hat y$ (section 3 says why) and look only at the
# latent values: $g(v_1, v_2) = -zy\,v_1v_2 + \frac{1}{2\eta}\bigl[(v_1 - v_{1,t})^2 + (v_2 - v_{2,t})^2\bigr]$. By hand, its second
# derivatives are $\partial^2 g/\partial v_1^2 = \partial^2 g/\partial v_2^2 = 1/\eta$ and $\partial^2 g/\partial v_1\partial v_2 = -zy$, so
#
# $$\nabla^2 g = \frac1\eta\begin{pmatrix}1 & -\eta zy\\ -\eta zy & 1\end{pmatrix},\qquad
#   \text{eigenvalues } \frac{1 - \eta z}{\eta},\ \frac{1 + \eta z}{\eta}\quad(y = \pm 1),$$
#
# with eigenvectors $(1, 1)$ and $(1, -1)$. For $z\in[0,1]$ the smaller one is positive exactly when $\eta < 1$.
# At $\eta = \tfrac12$ (the step chapter 06 computes for $v_t = (\tfrac12, 1)$) it is at least $1$. sympy agrees:

# %%
z = sp.Symbol("z", positive=True)
eta = sp.Symbol("eta", positive=True)
v1, v2, v1t, v2t = sp.symbols("v1 v2 v1t v2t", real=True)
g = -z * v1 * v2 + ((v1 - v1t) ** 2 + (v2 - v2t) ** 2) / (2 * eta)  # y = +1
H_g = sp.hessian(g, (v1, v2))
H_g.eigenvals() == {(1 - eta * z) / eta: 1, (1 + eta * z) / eta: 1}

# %% [markdown]
# The rest of the chapter does this for any $d$ and $k$: the off-diagonal $-zy$ couples every pair of the
# sample's latent vectors, and the direction in which they all move together is the one that loses convexity.
#
# ## 2. Why a proximal step: the slope where it lands
#
# The smallest model, $\hat y = w_0$, shows the difference. SGD moves by the slope at the start,
# $w_0 \leftarrow w_0 + \eta\,y\,\sigma(-yw_0)$. Setting the derivative of $\ell(w) + \frac{1}{2\eta}(w - w_0)^2$ to zero gives the
# proximal step $w_0^+ = w_0 + \eta\,y\,\sigma(-yw_0^+)$: the slope at the end. By hand, from $w_0 = 0$ with $y = +1$
# and $\eta = 50$, SGD jumps to $50\,\sigma(0) = 25$; the proximal step solves $w = 50\,\sigma(-w)$:

# %%
eta_1d = 50.0
prox_point = brentq(lambda w_: w_ - eta_1d * sigmoid(-w_), 0.0, eta_1d)  # root of w = η σ(−w)
library_point = nb05.bias_only_step("prox", 0.0, 1, eta_1d)  # the FM's step on a sample with no feature
eta_1d * sigmoid(0.0), round(prox_point, 6), abs(library_point - prox_point) <= 1e-12

# %% [markdown]
# On alternating labels $+1, -1, \dots$ both methods end in a two-step swing $\pm a$: SGD's solves
# $2a = \eta\,\sigma(a)$, so $a$ grows like $\eta/2$; the proximal step's solves $2a = \eta\,\sigma(-a)$, so $2a\,e^a < \eta$ and
# $a < \log\eta$ for $\eta \ge 2$. The simulated swings after 400 steps obey both:

# %%
swings = nb05.swing_rows()
sgd_linear = all(r["eta"] / 4 < r["simulated"] <= r["eta"] / 2 for r in swings if r["method"] == "sgd")
prox_log = all(r["simulated"] < sp.log(r["eta"]) for r in swings if r["method"] == "prox" and r["eta"] >= 2)
sgd_linear, prox_log

# %%
nb05.plot_one_parameter(50.0, {m: nb05.one_parameter_path(m, 50.0, 12) for m in ("sgd", "prox")}, swings)
plt.show()

# %% [markdown]
# (`figures/05_one_parameter.png`.) Left: at $\eta = 50$ SGD jumps between $\pm25$, the proximal step stays
# near 0. Right: the swing against $\eta$ (log–log, three decades): SGD's follows $\eta/2$, the proximal
# step's stays below $\log\eta$.
#
# This one-parameter loss is convex, and for convex losses Asi and Duchi prove that proximal steps are
# robust to the step size [4]. An FM's loss is not convex in its parameters (the pairwise term
# multiplies two latent vectors), and that robustness does not carry over: chapter 07 shows the exact
# FM step getting worse every epoch on MovieLens at the published $\eta$. Here we only ask when one step is a convex problem.
#
# ## 3. The logistic loss as a maximum over $z$
#
# Let $h^*(z) = z\log z + (1-z)\log(1-z)$ on $[0, 1]$ ($0\log 0 = 0$; $+\infty$ outside, chapter 06, erratum E9), the
# *convex conjugate* of $u\mapsto\log(1+e^u)$ [5, §3.3]. Then, for every real $u$,
#
# $$\begin{aligned}
# \frac{d}{dz}\bigl[uz - h^*(z)\bigr] &= u - \log\frac{z}{1-z} = 0 &&\text{stationary point}\\
# \Leftrightarrow\quad z &= \frac{1}{1 + e^{-u}} = \sigma(u) &&\text{solve for } z\\
# \frac{d^2}{dz^2}\bigl[uz - h^*(z)\bigr] &= -\frac{1}{z(1-z)} < 0 &&\text{so it is the maximum}\\
# \max_{z\in[0,1]} uz - h^*(z) &= u\sigma(u) - \sigma(u)\log\sigma(u) - \sigma(-u)\log\sigma(-u) = \log(1 + e^u) &&\text{substitute, } \log\sigma(u) = u - \log(1+e^u) .
# \end{aligned}\tag{5.1}$$
#
# sympy redoes each line: the stationary point, the second derivative, and the value at the maximiser
# minus $\log(1+e^u)$:

# %%
u = sp.Symbol("u", real=True)
h_star = z * sp.log(z) + (1 - z) * sp.log(1 - z)
bracket = u * z - h_star
z_best = sp.solve(sp.diff(bracket, z), z)
(
    z_best,
    sp.simplify(sp.diff(bracket, z, 2)),
    sp.simplify(sp.expand_log(bracket.subs(z, z_best[0]), force=True) - sp.log(1 + sp.exp(u))),
)

# %% [markdown]
# With $u = -y\hat y(\theta)$ the prox objective (5.0) is a maximum over $z$:
#
# $$F(\theta) = \max_{z\in[0,1]}\varphi(\theta, z),\qquad
#   \varphi(\theta, z) = -z\,y\,\hat y(\theta) + \frac{1}{2\eta}\|\theta-\theta_t\|^2 - h^*(z). \tag{5.2}$$
#
# The maximiser $z = \sigma(-y\hat y)$ is the weight an SGD step puts on $\nabla\hat y$ (chapter 02). For a fixed $z$,
# $\varphi(\cdot, z)$ is a *quadratic* in $\theta$ ($\hat y$ is linear in the biases and quadratic in $V$).
#
# ## 4. One step as a saddle point, in three steps
#
# Two tools, each in one sentence. **Sion's minimax theorem** [3]: if $\varphi(\theta, z)$ is continuous,
# convex in $\theta$ for every $z$, concave in $z$ for every $\theta$, and $z$ ranges over a compact convex set,
# then $\inf_\theta\max_z\varphi = \max_z\inf_\theta\varphi$. **The envelope theorem** [6]: if $\theta(z)$ minimises
# $\varphi(\cdot, z)$ and both are differentiable, then $q(z) = \varphi(\theta(z), z)$ has $q'(z) = \partial_z\varphi(\theta(z), z)$: the
# movement of $\theta(z)$ contributes nothing to first order, because $\nabla_\theta\varphi = 0$ there.
#
# **Step 1 (min–max).** By (5.2) the step is $\min_\theta\max_z\varphi(\theta, z)$.
#
# **Step 2 (Sion).** $z\in[0,1]$ is compact and convex, and $\varphi$ is concave in $z$ (its $z$-part is $-h^*$, with
# second derivative $-1/(z(1-z))$ by (5.1)). If also $\varphi(\cdot, z)$ is strictly convex for every $z$, the order can
# be swapped, and the inner minimum has exactly one minimiser $\theta(z)$, the root of a linear system:
#
# $$\min_\theta\max_z\varphi = \max_{z\in[0,1]} q(z),\qquad q(z) = \min_\theta\varphi(\theta, z) = \varphi(\theta(z), z). \tag{5.3}$$
#
# **Step 3 (weak duality).** For all $\theta$ and $z$, a minimum is at most any value and $F$ is the maximum:
#
# $$\begin{aligned}
# q(z) &\le \varphi(\theta, z) \le F(\theta) &&\text{definitions of } q \text{ and } F\\
# q'(z^*) &= \partial_z\varphi(\theta(z^*), z^*) = 0 &&\text{envelope theorem at the maximiser } z^* \text{ of } q\\
# F(\theta(z^*)) &= \max_z\varphi(\theta(z^*), z) = \varphi(\theta(z^*), z^*) = q(z^*) &&\varphi(\theta(z^*), \cdot) \text{ is concave, stationary at } z^*\\
# F(\theta(z^*)) &= q(z^*) \le F(\theta)\ \text{ for every } \theta &&\text{first line at } z = z^* .
# \end{aligned}\tag{5.4}$$
#
# ($z^*$ lies strictly inside $(0, 1)$: the slope of $-h^*$ is $+\infty$ at 0 and $-\infty$ at 1, so $q$ cannot peak at an end.)
# So $\theta_{t+1} = \theta(z^*)$: one step is a search over the single number $z$ (chapter 06 makes it cheap). Every
# step above needs $\varphi(\cdot, z)$ strictly convex for every $z\in[0,1]$; the rest of the chapter finds when it is.
# The picture, for the worked example of section 1 ($y = +1$, $\eta = \tfrac12$, biases 0, $v_t = (\tfrac12, 1)$), on the
# line $\theta_s = \theta_t + s(\theta_{t+1} - \theta_t)$ through the step:

# %%
saddle = nb05.saddle_rows()
nb05.plot_saddle(saddle)
plt.show()

# %% [markdown]
# (`figures/05_saddle.png`.) Left: $\varphi(\theta_s, z)$; the black line is the best $s$ for each $z$, the dashed
# line the best $z$ for each $s$, $\sigma(-y\hat y(\theta_s))$; they cross at $s = 1$, $z = z^*$. Right: through that point
# $\varphi$ is convex in $s$ and concave in $z$, and both slices reach the same value, $q(z^*) = F(\theta_{t+1})$.
#
# The check of (5.4) on this example: the step's $z^*$ is $\sigma(-y\hat y(\theta_{t+1}))$, and $F(\theta_{t+1})$ equals
# $q(z^*) = \varphi(\theta_{t+1}, z^*)$ and is at most $F$ at the minimiser a generic optimiser finds:

# %%
idx_ex, y_ex, w0_ex, w_ex, V_ex, eta_ex = nb05.worked_example()
step_ex = prox.prox_step(idx_ex, y_ex, w0_ex, w_ex, V_ex, eta_ex)
y_hat_new = float(step_ex.w0 + step_ex.w.sum() + step_ex.V[0, 0] * step_ex.V[1, 0])
move2 = float((step_ex.w0 - w0_ex) ** 2 + (step_ex.w - w_ex).square().sum() + (step_ex.V - V_ex).square().sum())
phi_at = -step_ex.z * y_ex * y_hat_new + move2 / (2 * eta_ex) - prox.conjugate(step_ex.z)
F_at = float(prox.prox_objective(idx_ex, y_ex, step_ex.w0, step_ex.w, step_ex.V, eta_ex, w0_ex, w_ex, V_ex))
other = prox.minimise_numerically(idx_ex, y_ex, w0_ex, w_ex, V_ex, eta_ex)
F_other = float(prox.prox_objective(idx_ex, y_ex, other.w0, other.w, other.V, eta_ex, w0_ex, w_ex, V_ex))
abs(step_ex.z - sigmoid(-y_hat_new)) <= 1e-15, abs(F_at - phi_at) <= 1e-15, F_at <= F_other * (1 + 1e-15)

# %% [markdown]
# The tolerance $10^{-15}$ (absolute, and relative in the last comparison, where both answers are the same
# point to rounding) is a few units of float64 rounding, $\varepsilon \approx 2.2\times10^{-16}$, on numbers of size 1 [8, §2.1].
#
# ## 5. The Hessian of the inner problem is $\frac1\eta S(z)\otimes I_k$
#
# The biases enter $\hat y$ linearly, so their part of $\varphi$ is linear plus $\|\cdot\|^2/(2\eta)$: always strictly
# convex, Hessian $I/\eta$. Rows of $V$ outside the sample appear only in $\|\cdot\|^2/(2\eta)$. What remains is the
# latent part over the sample's $d$ rows, written entry by entry ($v_{if}$ is entry $f$ of $v_i$):
#
# $$\begin{aligned}
# \varphi_V &= -zy\sum_{i<j}\sum_{f=1}^k v_{if}v_{jf} + \frac{1}{2\eta}\sum_i\sum_f (v_{if} - v_{if,t})^2 &&\langle v_i, v_j\rangle = \textstyle\sum_f v_{if}v_{jf}\\
# \frac{\partial\varphi_V}{\partial v_{if}} &= -zy\sum_{j\ne i} v_{jf} + \frac{1}{\eta}(v_{if} - v_{if,t}) &&\text{each pair containing } i \text{ once}\\
# \frac{\partial^2\varphi_V}{\partial v_{if}\,\partial v_{jg}} &= \delta_{fg}\Bigl(\frac{\delta_{ij}}{\eta} - zy(1 - \delta_{ij})\Bigr) &&\text{differentiate in } v_{jg}\\
# &= \frac1\eta\,S(z)_{ij}\,\delta_{fg},\qquad S(z) = (1+\eta yz)I - \eta yz\,\mathbf 1\mathbf 1^\top &&S_{ii} = 1,\ S_{ij} = -\eta yz .
# \end{aligned}\tag{5.5}$$
#
# ($\delta_{ij}$ is 1 when $i = j$ and 0 otherwise; $\mathbf 1$ is the all-ones vector.) Flatten $V$ row by row, entry
# $(i, f)$ at position $ik + f$. The *Kronecker product* $A\otimes B$ of a $d\times d$ matrix $A$ and a $k\times k$ matrix $B$
# is the $dk\times dk$ block matrix whose block $(i, j)$ is $a_{ij}B$ [7, §4.2]; its eigenvalues are the products
# $\lambda_i(A)\mu_f(B)$. The last line of (5.5) says exactly: the Hessian is $\frac1\eta S(z)\otimes I_k$, one copy of
# $S(z)/\eta$ per latent dimension, so it is positive definite exactly when $S(z)$ is. sympy differentiates
# $\varphi_V$ twice and compares every entry with the third line and the matrix with the Kronecker form, for
# $d = 2\ldots4$ with $k = 3$ (and $d = 2$ with $k = 1$, section 1), both labels:

# %%
{
    (d, k, y): lecture.hessian_entries_match(d, k, y)
    for d in (2, 3, 4)
    for k in (1, 3)
    for y in (1, -1)
    if k == 3 or d == 2
}

# %% [markdown]
# Every pair is `(True, True)`. Section 7 adds the independent check: the whole Hessian by autograd.
#
# ## 6. The eigenpairs of $S(z)$
#
# Write $\beta = \eta yz$ and $J = \mathbf 1\mathbf 1^\top$, so $S = (1+\beta)I - \beta J$. Two facts: $J\mathbf 1 = \mathbf 1(\mathbf 1^\top\mathbf 1) = d\,\mathbf 1$, and
# $Ju = \mathbf 1(\mathbf 1^\top u) = 0$ when the entries of $u$ sum to zero. Hence
#
# $$\begin{aligned}
# S\mathbf 1 &= (1+\beta)\mathbf 1 - \beta d\,\mathbf 1 = \bigl(1 - \beta(d-1)\bigr)\mathbf 1 &&J\mathbf 1 = d\mathbf 1\\
# Su &= (1+\beta)u - \beta\cdot 0 = (1+\beta)\,u\quad\text{for } \mathbf 1^\top u = 0 &&Ju = 0 .
# \end{aligned}\tag{5.6}$$
#
# The vectors summing to zero form a $(d-1)$-dimensional space, orthogonal to $\mathbf 1$, so these are all the
# eigenvalues: $\lambda_{\text{mean}} = 1 - \beta(d-1)$ once (every row moving together) and $\lambda_\perp = 1 + \beta$, $d - 1$ times.
# The check for every $d$ at once: sympy's matrix expressions keep the size $d$ symbolic ($I$, $J$, $\mathbf 1$ of size
# $d$, with $J\mathbf 1 = d\mathbf 1$); the first number is $S\mathbf 1$'s coefficient minus $1 - \beta(d-1)$, the pair is $Su$ split into
# multiples of $u$ and of $Ju$:

# %%
G = prox_symbolic.sym_s_symbolic_d()
u_vec = sp.MatrixSymbol("u", G.d, 1)
(mean_coefficient,) = prox_symbolic.split_terms(G.S * G.ones, [G.ones])
sp.simplify(mean_coefficient - (1 - G.beta * (G.d - 1))), prox_symbolic.split_terms(G.S * u_vec, [u_vec, G.J * u_vec])

# %% [markdown]
# $0$, and $Su = (1+\beta)u - \beta Ju$, which is $(1+\beta)u$ once $Ju = 0$. As a second check, the determinant of the
# explicit matrix is the product of the eigenvalues, $(1+\beta)^{d-1}(1-\beta(d-1))$, for $d = 1\ldots7$:

# %%
beta = sp.Symbol("beta")
[
    sp.factor(prox_symbolic.sym_s_matrix(d, beta).det() - (1 + beta) ** (d - 1) * (1 - beta * (d - 1)))
    for d in range(1, 8)
]

# %% [markdown]
# ## 7. The exact bound
#
# $S(z)$ must be positive definite for every $z\in[0,1]$. With (5.6):
#
# $$\begin{aligned}
# y = +1:&\quad \lambda_\perp = 1 + \eta z > 0;\quad \lambda_{\text{mean}} = 1 - \eta z(d-1) \ge 1 - \eta(d-1) > 0 &&\Leftrightarrow\ \eta < \frac{1}{d-1}\\
# y = -1:&\quad \lambda_{\text{mean}} = 1 + \eta z(d-1) > 0;\quad \lambda_\perp = 1 - \eta z \ge 1 - \eta > 0 &&\Leftrightarrow\ \eta < 1 \quad (d \ge 2).
# \end{aligned}\tag{5.7}$$
#
# Each smallest eigenvalue is smallest at $z = 1$, which is why the bound uses $z = 1$. One bound for both labels
# is $1/(d-1)$; with $d\le1$ there are no pairs and any $\eta > 0$ works. The check: the library's bound against
# the float64 eigenvalues of $S(1)$, just below ($0.999\times$) and just above ($1.001\times$) the bound:


# %%
def s_min_eig(d, eta_value, y):
    return float(torch.linalg.eigvalsh(prox.s_matrix(d, eta_value, y, 1.0))[0])


bounds = {(d, y): prox.step_size_bound(d, "exact", y) for d in (2, 6, 11) for y in (1, -1)}
all(s_min_eig(d, 0.999 * b, y) > 0 > s_min_eig(d, 1.001 * b, y) for (d, y), b in bounds.items())

# %% [markdown]
# And without any formula: the whole Hessian of $\theta\mapsto\varphi(\theta, z)$ over the sample's coordinates
# $(w_0, w_{\text{idx}}, V_{\text{idx}})$ by autograd, $k = 3$, $y = +1$, $z = 1$. By (5.5) and (5.7), $\eta$ times its smallest
# eigenvalue is $1 - \eta(d-1)$. The entries are at most $d + 1$ in size and the matrix at most $45\times45$, so a
# backward-stable eigenvalue solver errs by about $45\cdot(d+1)\cdot\varepsilon \approx 10^{-13}$ [8, §2]; we allow
# $10^{-12}$ (safety factor 10):

# %%
eig_rows = nb05.min_eigenvalue_rows()
max(abs(r_["scaled_min_eig"] - r_["formula"]) for r_ in eig_rows) <= 1e-12

# %%
nb05.plot_min_eigenvalue(eig_rows)
plt.show()

# %% [markdown]
# (`figures/05_min_eigenvalue.png`.) Each line falls linearly with $\eta$ and crosses zero at its circle, the
# exact bound $1/(d-1)$; the crosses mark the published bound $1/(2d+1)$, well inside.
#
# ## 8. What the bound promises, and what it does not
#
# **A minimiser exists for every $\eta$.** The loss is positive, so
#
# $$F(\theta) \ge \frac{1}{2\eta}\|\theta - \theta_t\|^2 \to \infty \quad\text{as } \|\theta\|\to\infty \tag{5.8}$$
#
# ($F$ is *coercive*), and a continuous coercive function attains its minimum [5, §A.3]. So the proximal step
# always has an answer; section 10 finds it past the bound.
#
# **What the bound is.** $\eta < 1/(d-1)$ (for $y = +1$) is exactly the condition for every $\varphi(\cdot, z)$, $z\in[0,1]$, to
# be strictly convex: what steps 2 and 3 of section 4 and the published search over $z$ need.
#
# **What it is not.** It says nothing about many steps in a row. Staying below it does not make the
# iteration stable: chapter 07 ([07_movielens](07_movielens.ipynb)) shows the exact step getting worse every epoch on
# MovieLens at the published $\eta = 1/23$. Chapter 09 ([09_regularised_prox](09_regularised_prox.ipynb))
# explains why: an implicit step divides by
# $1 - x$ along the FM's bilinear, indefinite directions where an explicit one multiplies by $1 + x$, and
# $1/(1-x) > 1 + x$; Asi and Duchi's robustness results [4] are for convex losses, and the FM's pairwise term
# is not convex.
#
# ## 9. The published bound, and erratum E2
#
# The blog post avoids eigenvalues. With $\alpha_{ij} = -zy\,x_ix_j$ (for the sample's pairs $|\alpha_{ij}| = z$ and
# $\operatorname{sign}\alpha_{ij} = -y$; $\alpha_{ii} = 0$) it rewrites each product and collects the $\|v_i\|^2$ terms:
#
# $$\begin{aligned}
# \alpha_{ij}\,v_i^\top v_j &= \tfrac12|\alpha_{ij}|\bigl(\|v_i + \operatorname{sign}(\alpha_{ij})v_j\|^2 - \|v_i\|^2 - \|v_j\|^2\bigr) &&\text{expand the square}\\
# \sum_{i<j}\alpha_{ij}\,v_i^\top v_j &= \tfrac12\sum_{i<j}|\alpha_{ij}|\,\|v_i + \operatorname{sign}(\alpha_{ij})v_j\|^2 - \sum_i c_i\|v_i\|^2,\quad c_i = \tfrac12\sum_{j}|\alpha_{ij}| &&\text{pair } (i,j) \text{ gives } \tfrac12|\alpha_{ij}| \text{ to row } i \text{ and to row } j\\
# c_i &= \tfrac12 z(d-1) &&d - 1 \text{ partners}, |\alpha_{ij}| = z\\
# \frac{1}{2\eta} - c_i > 0 \text{ at } z = 1 &\Leftrightarrow \eta < \frac{1}{d-1} &&\text{coefficient of } \|v_i\|^2 \text{ in } \varphi_V .
# \end{aligned}\tag{5.9}$$
#
# The first sum is convex, so positive coefficients suffice; done correctly this gives the exact bound (5.7).
#
# > **Erratum E2 (the proximal-point blog post, "Proximal Point to the Extreme – Factorization Machines" [1]).**
# > The post gives each row the coefficient $c_i = \sum_j|\alpha_{ij}|$, twice the right one, concludes with
# > $|\alpha_{ij}| \le 1$ over $d$ terms that $\eta \le 1/(2d)$ makes the step convex, and, for strictness, uses
# > $\eta = 1/(2d+1)$ (the published bound; $1/23$ at $d = 11$). **Correct:** each pair puts half of $|\alpha_{ij}|$ on each of
# > its two rows, $c_i = \tfrac12 z(d-1)$, and the condition is $\eta < 1/(d-1)$, which is also exact for $y = +1$ by (5.7).
# > The published bound is sufficient, not necessary. **Evidence:** sympy below: only the corrected
# > coefficient makes the rewriting an identity, and the published one is off by exactly the double count.
# > An ordinary test of a training run would not catch it: a too-small $\eta$ still trains.

# %%
corrected_ok = all(
    prox_symbolic.sym_blog_decomposition(d, 3, y, "corrected") == 0 for d in range(2, 6) for y in (1, -1)
)


def published_offset_is_double_count(d, y):
    _, V_sym, _, z_sym, _ = prox_symbolic.sym_latent_part(d, 3, y)
    offset = sp.Rational(1, 2) * z_sym * (d - 1) * sum(e**2 for e in V_sym)
    return sp.expand(prox_symbolic.sym_blog_decomposition(d, 3, y, "published") - offset) == 0


corrected_ok, all(published_offset_is_double_count(d, y) for d in range(2, 6) for y in (1, -1))

# %% [markdown]
# **How far apart.** For $y = +1$ the published bound is the fraction $r(d) = \frac{1/(2d+1)}{1/(d-1)} = \frac{d-1}{2d+1}$ of the
# exact one; sympy gives $r$, its derivative (positive: $r$ grows with $d$) and its limit:

# %%
d_sym = sp.Symbol("d", integer=True, positive=True)
r = sp.simplify(sp.Rational(1) / (2 * d_sym + 1) / (sp.Rational(1) / (d_sym - 1)))
r, sp.factor(sp.diff(r, d_sym)), sp.limit(r, d_sym, sp.oo)

# %%
[(d, str(Fraction(1, 2 * d + 1)), str(Fraction(1, d - 1)), str(Fraction(d - 1, 2 * d + 1))) for d in (2, 6, 11)]

# %% [markdown]
# At $d = 2$ the published bound is $1/5$ of the exact one; at $d = 11$ (the most non-zeros of a MovieLens
# sample) $1/23$ against $1/10$; the ratio approaches $1/2$ only as $d$ grows. Whether a larger $\eta$ trains
# better is a separate question, which chapter 07 answers on data.
#
# ## 10. Beyond the bound
#
# Take $d = 11$, $y = +1$ and $\eta = 0.3$, three times the bound $1/10$. By (5.6), $\lambda_{\text{mean}} = 1 - 10\eta z$ vanishes at
# $z_s = 1/(\eta(d-1)) = 1/3$. For $z > z_s$, moving every $v_i$ together (the eigenvector $\mathbf 1$) sends $\varphi(\cdot, z)$ to $-\infty$:
# the true $q(z) = \min_\theta\varphi$ is $-\infty$ on $(z_s, 1]$, and step 2 of section 4 fails. Along that direction,
# for step lengths 0, 1, 10, 100, 1000, $\varphi$ falls without bound at $z = 0.5$ and grows at $z = 0.2$:

# %%
idx, w0, w, V = nb05.beyond_bound_case()
eta_value, y = 0.3, 1
above = nb05.unbounded_direction_values(idx, y, w0, w, V, eta_value, z=0.5)
below = nb05.unbounded_direction_values(idx, y, w0, w, V, eta_value, z=0.2)
all(a > b for a, b in zip(above, above[1:])) and above[-1] < -1e4, below[-1] > below[1]

# %% [markdown]
# The closed form of chapter 06 divides by $\lambda_{\text{mean}}$; applied blindly past the bound it has a pole at $z_s$,
# tending to $-\infty$ from the left like the true $q$ and to $+\infty$ from the right. The published golden-section
# search over $[0, 1]$ assumes one peak and walks into the pole, where the latent vectors are divided by
# $\lambda_{\text{mean}}\approx 0$; a search for the root of $q'$ cut at the pole finds the maximiser of the true $q$:

# %%
golden = prox.prox_step(idx, y, w0, w, V, eta_value, solver="golden", allow_beyond_bound=True)
dual = prox.prox_step(idx, y, w0, w, V, eta_value, allow_beyond_bound=True)
abs(golden.z - 1 / 3) <= 1e-7, dual.z < 1 / 3, float(golden.V.abs().max()) > 1e6

# %%
nb05.plot_beyond_bound(nb05.beyond_bound_rows(eta_value), golden.z, dual.z)
plt.show()

# %% [markdown]
# (`figures/05_beyond_bound.png`.) Left of the pole the closed form and the true $q$ coincide and peak at the
# green dot; right of it (shaded) the closed form is a spurious branch, and golden section ends on the
# pole (black triangle). ($10^{-7}$ above is golden section's tolerance on $z$.)
#
# **The step still exists and is still found.** Weak duality, the first line of (5.4), needs no convexity.
# At the root $z^* < z_s$, $S(z^*)$ is positive definite, so $\theta(z^*)$ minimises $\varphi(\cdot, z^*)$, and the rest of (5.4)
# gives $F(\theta(z^*)) = q(z^*) \le F(\theta)$ for every $\theta$: the global minimiser (5.8) promised. Here $F$ is not
# convex, so the generic optimiser runs from a dozen starting points; the cut search's answer has the
# lower $F$ or ties it to rounding, while golden section's is astronomically worse:


# %%
def F_of(result):
    return float(prox.prox_objective(idx, y, result.w0, result.w, result.V, eta_value, w0, w, V))


numerical = nb05.multistart_minimum(idx, y, w0, w, V, eta_value)
F_of(dual) <= F_of(numerical) * (1 + 1e-12), F_of(golden) > 1e10 * F_of(dual)

# %% [markdown]
# ($10^{-12}$ relative: the optimiser may land within rounding of the same point.) The library still refuses
# such step sizes unless asked: not because no step exists, but because outside the bound the derivation of
# section 4 no longer covers every $z$, and the unguarded published search fails as shown. The message
# states the bound:

# %%
try:
    prox.prox_step(idx, y, w0, w, V, eta_value)
except FMInputError as error:
    print(error)

# %% [markdown]
# ## Key takeaways
#
# * The logistic loss is $\max_{z\in[0,1]} uz - h^*(z)$ (5.1), so one proximal step is a saddle point; min–max,
#   Sion's theorem and weak duality with the envelope theorem (5.4) turn it into a search over one number $z$.
# * The inner problem's Hessian is $\frac1\eta S(z)\otimes I_k$ (5.5); $S(z)$ has eigenvalues $1 - \eta yz(d-1)$ once and $1 + \eta yz$,
#   $d - 1$ times (5.6).
# * Every inner problem is strictly convex exactly when $\eta < 1/(d-1)$ ($y = +1$; $\eta < 1$ for $y = -1$) (5.7). The
#   published bound $1/(2d+1)$ double-counts each pair (erratum E2) and is $(d-1)/(2d+1)$ of the exact one.
# * The prox objective is coercive: a minimiser exists for every $\eta$ (5.8), and past the bound a search cut
#   at the pole still finds it, while the published search over $[0,1]$ fails.
# * The bound is about one step; it does not promise a stable iteration (chapter 07).
#
# ## Exercises
#
# ### Exercise 5.1 (easy)
#
# The blog post's example has six categorical fields ($d\le 6$) and concludes $\eta\le 1/12$. **Predict before
# running:** the exact bound for $d = 6$, $y = +1$; the eigenvalues of $S(z)$ at $\eta = 1/12$, $z = 1$; and the ratio
# of $1/12$ to the exact bound.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# Exact bound 1/(d-1) = 1/5. With beta = 1/12 in (5.6): lambda_mean = 1 - 5/12 = 7/12 (once) and
# lambda_perp = 1 + 1/12 = 13/12 (five times). Ratio (1/12) / (1/5) = 5/12.
S6 = prox_symbolic.sym_s_matrix(6, sp.Rational(1, 12))
S6.eigenvals() == {sp.Rational(7, 12): 1, sp.Rational(13, 12): 5} and sp.Rational(1, 12) / sp.Rational(
    1, 5
) == sp.Rational(5, 12)

# %% [markdown]
# ### Exercise 5.2 (easy)
#
# For a negative label $\beta = -\eta z$. Which eigenvalue of $S(z)$ limits $\eta$ now, and why does the bound not
# depend on $d$? Check with sympy for $d = 2\ldots6$ at $z = 1$.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# With beta = -eta: lambda_mean = 1 + eta*(d-1) > 0 always; lambda_perp = 1 - eta (d-1 times)
# vanishes at eta = 1 whatever d is, so the bound for y = -1 is eta < 1.
eta_s = sp.Symbol("eta", positive=True)
all(
    prox_symbolic.sym_s_matrix(d, -eta_s).eigenvals() == {1 - eta_s: d - 1, 1 + eta_s * (d - 1): 1} for d in range(2, 7)
) and all(prox.step_size_bound(d, "exact", -1) == 1.0 for d in range(2, 7))

# %% [markdown]
# ### Exercise 5.3 (medium, write code)
#
# Write a function that builds the $dk\times dk$ matrix $\frac1\eta S(z)\otimes I_k$ with `torch.kron` and check, for $d = 5$,
# $k = 3$, $\eta = 0.2$, $z = 0.7$, $y = +1$, that it equals the autograd Hessian of the latent part of $\varphi$ (use
# `nb05.phi_hessian`, whose latent block starts after the $1 + d$ bias coordinates) to within $10^{-12}$, and
# that its eigenvalues are those of (5.6), each repeated $k$ times.


# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
def kron_hessian(d, k, eta_value, y, z_value):
    return torch.kron(prox.s_matrix(d, eta_value, y, z_value) / eta_value, torch.eye(k, dtype=torch.float64))


d5, k3, eta5, z5 = 5, 3, 0.2, 0.7
latent_block = nb05.phi_hessian(d5, k3, 1, eta5, z5)[1 + d5 :, 1 + d5 :]
mine = kron_hessian(d5, k3, eta5, 1, z5)
lam_mean, lam_perp = 1 - eta5 * z5 * (d5 - 1), 1 + eta5 * z5
expected = torch.tensor(sorted([lam_mean] * k3 + [lam_perp] * (d5 - 1) * k3), dtype=torch.float64) / eta5
float((latent_block - mine).abs().max()) <= 1e-12, float((torch.linalg.eigvalsh(mine) - expected).abs().max()) <= 1e-12

# %% [markdown]
# ### Exercise 5.4 (medium)
#
# Take $d = 5$, $y = +1$ and a step size 1 % above the exact bound, $\eta = 101/400$. **Predict** the $z$ in $[0, 1]$ at
# which $S(z)$ becomes singular, find it with sympy, and then say what happens to the proximal step.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# lambda_mean = 1 - eta*z*(d-1) = 0 at z_s = 1/(4 eta) = 100/101, just inside [0, 1]. Past z_s the
# inner problem has no minimum, so the derivation of section 4 no longer covers every z. The step
# itself still exists (5.8) and is unique: a search for the root of q' cut at z_s finds it, as in
# section 10; only a search over all of [0, 1] is at risk. The second check: the cut search's step
# has F no larger than a multi-start optimiser's (to 1e-12 relative).
z_s = sp.Symbol("z", real=True)
roots = sp.solve(prox_symbolic.sym_s_matrix(5, sp.Rational(101, 400) * z_s).det(), z_s)
idx5, w05, w5, V5 = nb05.beyond_bound_case(d=5, k=3, scale=1.0, seed=4)
eta_beyond = 101 / 400
cut = prox.prox_step(idx5, 1, w05, w5, V5, eta_beyond, allow_beyond_bound=True)
best = nb05.multistart_minimum(idx5, 1, w05, w5, V5, eta_beyond, starts=2)


def F5(r_):
    return float(prox.prox_objective(idx5, 1, r_.w0, r_.w, r_.V, eta_beyond, w05, w5, V5))


[root for root in roots if 0 <= root <= 1] == [sp.Rational(100, 101)], F5(cut) <= F5(best) * (1 + 1e-12)

# %% [markdown]
# ### Exercise 5.5 (hard)
#
# Separate the two sources of the gap between $1/(2d+1)$ and $1/(d-1)$. Keep the post's coefficient
# $c_i = \sum_j|\alpha_{ij}|$ but count only the $d - 1$ partners of row $i$: which bound does $\frac{1}{2\eta} - c_i \ge 0$ at $z = 1$
# give, and what is its ratio to the exact bound? What is left of the gap?

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution", "hide-cell"]
# Worked solution (expand the cell to read it).
# 1/(2 eta) >= d - 1 gives eta <= 1/(2(d-1)): exactly half the exact bound for every d, so the double
# count costs a factor 2. The rest, 1/(2(d-1)) -> 1/(2d+1), comes from counting d partners instead of
# d - 1 and from the +1 added for strictness.
eta_s, d_s = sp.symbols("eta d", positive=True)
slip_bound = sp.solve(sp.Eq(1 / (2 * eta_s) - (d_s - 1), 0), eta_s)[0]
sp.simplify(slip_bound / (1 / (d_s - 1))) == sp.Rational(1, 2)

# %% [markdown]
# ### Exercise 5.6 (easy, your turn)
#
# Write the exact step-size bound for a sample with `d` non-zeros and label `y`: the supremum of the $\eta$ for which $S(z)$ is positive definite for every $z\in[0,1]$ (`math.inf` when there is none).
# The cell after yours runs this chapter's evidence on your function: it says whether it is right and,
# when it recognises the mistake, names it; `EXERCISES["exact_bound"].hint()` gives a hint.


# %% fmedu={"stub": "def my_exact_bound(d, y):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_exact_bound(d, y):
    if d <= 1:
        return math.inf
    return 1.0 / (d - 1) if y > 0 else 1.0


# %%
EXERCISES["exact_bound"].check(my_exact_bound).correct

# %% [markdown]
# ### Exercise 5.7 (easy, your turn)
#
# Write the smallest eigenvalue of $S(z) = (1+\eta yz)I - \eta yz\,\mathbf 1\mathbf 1^\top$ of size `d` $\ge 2$ for a step size `eta`,
# a label `y` and a `z` in $[0, 1]$, from its two eigenvalues (5.6), without an eigensolver. It may be negative: past
# the bound it is.
# The cell after yours runs this chapter's evidence on your function (float64 eigenvalues of the explicit
# matrix): it says whether it is right and, when it recognises the mistake, names it;
# `EXERCISES["s_min_eigenvalue"].hint()` gives a hint.


# %% fmedu={"stub": "def my_s_min_eigenvalue(d, eta, y, z):\n    raise NotImplementedError  # your code here\n"} jupyter={"source_hidden": true} tags=["your-turn"]
def my_s_min_eigenvalue(d, eta, y, z):
    beta = eta * y * z
    return min(1 - beta * (d - 1), 1 + beta)  # lambda_mean once, lambda_perp d - 1 times


# %%
EXERCISES["s_min_eigenvalue"].check(my_s_min_eigenvalue).correct

# %% [markdown]
# ### Every check of this chapter, caught
#
# A check that no wrong function can fail proves nothing. The table runs every check of this chapter
# that takes a function of yours (each exercise's check, and the chapter's other checks of the same
# function: the eigenvalues either side of the bound, section 7) on every wrong variant in the course's catalogue (the slips named above, and the errata
# that are code) and on the reference solution; "caught" means the check said wrong. The last line is
# True when every check catches at least one variant, every variant is caught by at least one check,
# and no check rejects a reference solution.

# %%
catch_rows = catch_table("05")
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
# 3. M. Sion, "On general minimax theorems," *Pacific Journal of Mathematics* 8(1), pp. 171–176, 1958.
# 4. H. Asi and J. C. Duchi, "Stochastic (Approximate) Proximal Point Methods: Convergence, Optimality,
#    and Adaptivity," *SIAM Journal on Optimization* 29(3), pp. 2257–2290, 2019.
# 5. S. Boyd and L. Vandenberghe, *Convex Optimization*, Cambridge University Press, 2004 (§3.1.4
#    second-order conditions, §3.3 conjugate functions, §A.3 closed functions),
#    https://web.stanford.edu/~boyd/cvxbook/.
# 6. P. Milgrom and I. Segal, "Envelope theorems for arbitrary choice sets," *Econometrica* 70(2),
#    pp. 583–601, 2002.
# 7. R. A. Horn and C. R. Johnson, *Topics in Matrix Analysis*, Cambridge University Press, 1991
#    (chapter 4, the Kronecker product).
# 8. N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002.

# %% [markdown]
# [← Previous: 04 · User–item data and identifiability](04_user_item.ipynb) · [Course index](00_index.ipynb) · [Next: 06 · The Sherman–Morrison prox solve →](06_prox_solve.ipynb)
