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
# # 04 · The step-size bound of stochastic proximal point
#
# Stochastic proximal point trains a model by taking, for one sample at a time, the step
#
# $$\theta_{t+1} = \operatorname*{argmin}_\theta\; F(\theta),\qquad
#   F(\theta) = \log\bigl(1 + e^{-y\,\hat y(\theta)}\bigr) + \frac{1}{2\eta}\|\theta - \theta_t\|^2 ,$$
#
# where $\theta = (w_0, w, V)$ are all the FM's parameters and the sample is one-hot / multi-hot:
# $x_i = 1$ for the $d$ indices in `idx`, $0$ elsewhere. The loss is not convex in $\theta$ (the
# pairwise term $\langle v_i, v_j\rangle$ is a product of parameters), so the argmin need not be
# unique, or computable. The blog seed derives a step-size condition that makes it well posed.
# This notebook re-derives that condition, finds a bookkeeping slip in it (erratum **E2**), gives
# the exact condition from the eigenvalues of a small matrix $S(z)$, and shows what breaks past it.
#
# **Notation.** design.md's symbols throughout. The blog uses other letters:
#
# | blog | here | meaning |
# |---|---|---|
# | $w\in\{0,1\}^m$ | $x$, with non-zeros `idx` | one sample's features |
# | $x = (b_0, b_1..b_m, v_1..v_m)$ | $\theta = (w_0, w, V)$ | the parameters |
# | $\sigma(w, x)$ | $\hat y(x)$ | the model's prediction |
# | $\hat y\in\{-1,1\}$ | $y$ | the label |
# | $m$ | $n$ | number of features |
# | $d$, $\lvert\mathrm{nz}(w)\rvert$ | $d$ = `nnz` | non-zeros of the sample |
# | $\eta$, $z$, $S(z)$, $\alpha_{ij}$ | same | step size, dual variable, the system matrix, pair weights |

# %%
from fractions import Fraction

import matplotlib.pyplot as plt
import sympy as sp
import torch

from fmedu import FMInputError, prox
from fmedu.figures import nb04
from fmedu.notebook import setup
from fmedu.prox import symbolic as prox_symbolic

setup()

# %% [markdown]
# ## The step as a saddle point
#
# The logistic loss is a maximum of linear functions of its argument: with the negative entropy
# $h^*(z) = z\log z + (1-z)\log(1-z)$ on $[0, 1]$,
#
# $$\log(1 + e^u) = \max_{z\in[0,1]}\; u z - h^*(z),$$
#
# attained at $z = 1/(1 + e^{-u})$. sympy confirms both the maximiser (the stationary point of the
# concave bracket) and the value:

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
# With $u = -y\hat y(\theta)$ the prox objective becomes $F(\theta) = \max_{z\in[0,1]}\varphi(\theta, z)$,
#
# $$\varphi(\theta, z) = -z\,y\,\hat y(\theta) + \frac{1}{2\eta}\|\theta-\theta_t\|^2 - h^*(z),$$
#
# and the step is $\min_\theta\max_z \varphi$. The plan of the blog: swap the order, so that the
# inner problem $q(z) = \min_\theta \varphi(\theta, z)$ is a quadratic (solved in closed form, notebook 05)
# and the outer one is a maximisation over one number $z$.
#
# ## Why the subproblem must be strictly convex in $\theta$
#
# * **Swapping min and max.** Sion's minimax theorem allows $\min_\theta\max_z = \max_z\min_\theta$
#   when $\varphi$ is continuous, *convex in $\theta$* for every $z$, concave in $z$ for every
#   $\theta$, and $z$ ranges over a compact set. Concavity in $z$ holds ($-h^*$ is concave:
#   $\partial_z^2 = -1/(z(1-z))$ above) and $[0, 1]$ is compact; convexity in $\theta$ is the condition.
# * **One answer.** If every $\varphi(\cdot, z)$ is convex then $F = \max_z \varphi(\cdot, z)$ is convex too
#   (a maximum of convex functions). *Strict* convexity makes its minimiser unique, and makes
#   $\theta(z) = \operatorname{argmin}_\theta \varphi(\theta, z)$ a single point, so that the
#   maximiser $z^*$ of $q$ hands back the step $\theta_{t+1} = \theta(z^*)$.
#
# ## Where convexity can fail
#
# $\hat y = w_0 + \sum_{i\in\mathrm{idx}} w_i + \sum_{i<j\in\mathrm{idx}}\langle v_i, v_j\rangle$. The
# biases enter linearly, so their part of $\varphi$ is a linear term plus $\|\cdot\|^2/(2\eta)$: always
# strictly convex. Rows of $V$ outside `idx` only appear in $\|\cdot\|^2/(2\eta)$. What remains is
# the "brown part" of the blog, for the $d$ rows in `idx`:
#
# $$B(V) = -z\,y\sum_{i<j}\langle v_i, v_j\rangle + \frac{1}{2\eta}\sum_i\|v_i - v_{i,t}\|^2 .$$
#
# Its Hessian is $\frac1\eta S(z)\otimes I_k$ with
#
# $$S(z) = (1 + \eta y z)\,I - \eta y z\,\mathbf 1\mathbf 1^\top\quad(d\times d).$$
#
# sympy, for $d = 4$ rows and $k = 3$ (rows flattened row-major), both labels:


# %%
def hessian_is_kron_s(d, k, y):
    brown, V, _, z, eta = prox_symbolic.sym_brown(d, k, y)
    H = sp.hessian(brown, list(V))
    return sp.simplify(
        H - sp.kronecker_product(prox_symbolic.sym_s_matrix(d, eta * y * z) / eta, sp.eye(k))
    ).is_zero_matrix


[hessian_is_kron_s(4, 3, y) for y in (1, -1)]

# %% [markdown]
# So $\varphi(\cdot, z)$ is strictly convex exactly when $S(z)$ is positive definite.
#
# ## The blog's argument, and erratum E2
#
# The blog avoids eigenvalues. With $\alpha_{ij} = -z y x_i x_j$ (for the sample's pairs
# $|\alpha_{ij}| = z$, $\operatorname{sign}\alpha_{ij} = -y$; $\alpha_{ii} = 0$) it writes each product
# through $v_i^\top v_j = \tfrac12\|v_i + v_j\|^2 - \tfrac12\|v_i\|^2 - \tfrac12\|v_j\|^2$:
#
# $$B(V) = \tfrac12\sum_{i<j}|\alpha_{ij}|\,\|v_i + \operatorname{sign}(\alpha_{ij})v_j\|^2
#   + \sum_i\Bigl(\frac{1}{2\eta} - c_i\Bigr)\|v_i\|^2 + (\text{linear in } V),$$
#
# and asks for every coefficient $\frac{1}{2\eta} - c_i$ to be positive. Each pair $(i, j)$ puts
# $-\tfrac12|\alpha_{ij}|\|v_i\|^2$ on row $i$ and $-\tfrac12|\alpha_{ij}|\|v_j\|^2$ on row $j$, so
# $c_i = \tfrac12\sum_j|\alpha_{ij}|$. The blog writes $c_i = \sum_j|\alpha_{ij}|$. sympy checks the
# identity for $d = 2\ldots5$, $k = 3$, both labels, with either coefficient (`0` = exact):

# %%
{
    (d, y, c): prox_symbolic.sym_blog_decomposition(d, 3, y, c) == 0
    for d in range(2, 6)
    for y in (1, -1)
    for c in ("corrected", "published")
}

# %% [markdown]
# Only the corrected coefficient makes the rewriting an identity. The published one is off by
# exactly $\tfrac12 z(d-1)\sum_i\|v_i\|^2$ (for $d = 3$ and for all four sizes):

# %%
_, V3, _, z_sym, _ = prox_symbolic.sym_brown(3, 3, 1)
sp.factor(prox_symbolic.sym_blog_decomposition(3, 3, 1, "published"))


# %%
def published_offset_is_half(d, y):
    _, V, _, z, _ = prox_symbolic.sym_brown(d, 3, y)
    offset = sp.Rational(1, 2) * z * (d - 1) * sum(e**2 for e in V)
    return sp.expand(prox_symbolic.sym_blog_decomposition(d, 3, y, "published") - offset) == 0


all(published_offset_is_half(d, y) for d in range(2, 6) for y in (1, -1))

# %% [markdown]
# With the correct coefficient, $c_i = \tfrac12 z(d-1)$ and the condition
# $\frac{1}{2\eta} > \tfrac12 z(d-1)$ for all $z\in[0,1]$ reads
#
# $$\eta < \frac{1}{d-1}\qquad(d\ge 2),$$
#
# not $\eta \le \frac{1}{2d}$. (The blog's $2d$ has two sources: the doubled coefficient, and
# bounding $\sum_j|\alpha_{ij}|$ by $d$ rather than $d-1$, since $\alpha_{ii} = 0$.) The decomposition
# gives a *sufficient* condition; the eigenvalues of $S(z)$ give the exact one.
#
# ## The eigenvalues of $S(z)$ for every $d$
#
# Write $J = \mathbf 1\mathbf 1^\top$ and $\beta = \eta y z$, so $S = (1+\beta)I - \beta J$. Because
# $J\mathbf 1 = d\,\mathbf 1$ and $Ju = 0$ whenever $\mathbf 1^\top u = 0$, a matrix $aI + bJ$ has eigenvalue
# $a + bd$ on $\mathbf 1$ and $a$ on the $(d-1)$-dimensional complement; products stay in the family,
# $(aI + bJ)(a'I + b'J) = aa'I + (ab' + ba' + bb'd)J$ (from $J^2 = dJ$). With $d$ a sympy symbol:

# %%
general = prox_symbolic.sym_s_general_d()
general

# %% [markdown]
# Every entry is `0`: for symbolic $d$,
#
# $$\lambda_{\text{mean}} = 1 - \beta(d-1)\ \text{(on } \mathbf 1),\qquad
#   \lambda_{\perp} = 1 + \beta\ \text{(multiplicity } d-1),\qquad
#   \det S = (1+\beta)^{d-1}\bigl(1 - \beta(d-1)\bigr),$$
#
# and the inverse used in notebook 05. Cross-check with concrete matrices: the characteristic
# polynomial of $S$ for $d = 1\ldots7$ is exactly $(\lambda - (1+\beta))^{d-1}(\lambda - (1 - \beta(d-1)))$:

# %%
beta, lam = sp.symbols("beta lambda")
all(
    sp.expand(
        prox_symbolic.sym_s_matrix(d, beta).charpoly(lam).as_expr()
        - (lam - (1 + beta)) ** (d - 1) * (lam - (1 - beta * (d - 1)))
    )
    == 0
    for d in range(1, 8)
)

# %% [markdown]
# ## The exact bound
#
# $S(z)$ must be positive definite for every $z\in[0,1]$:
#
# * $y = +1$ ($\beta = \eta z \ge 0$): $\lambda_\perp > 0$ always; $\lambda_{\text{mean}} = 1 - \eta z(d-1)$ is
#   smallest at $z = 1$, so **$\eta < 1/(d-1)$**. This is the corrected sufficient condition: for
#   positive labels it is also necessary.
# * $y = -1$ ($\beta = -\eta z$): $\lambda_{\text{mean}} > 0$ always; $\lambda_\perp = 1 - \eta z$ needs
#   **$\eta < 1$** (when $d \ge 2$).
# * A bound for both labels: $1/(d-1)$. With $d \le 1$ there are no pairs and any $\eta > 0$ works.
#
# `prox.step_size_bound` returns these; exact rationals for the sample sizes of the MovieLens
# experiment (6 to 11 non-zeros), next to the blog's $1/(2d)$ and its published $1/(2d+1)$:

# %%
rows = []
for d in range(2, 12):
    exact = Fraction(1, d - 1)
    rows.append((d, Fraction(1, 2 * d + 1), Fraction(1, 2 * d), exact, exact / Fraction(1, 2 * d + 1)))
    assert prox.step_size_bound(d, "exact", 1) == float(exact) == prox.step_size_bound(d, "exact")
    assert prox.step_size_bound(d, "exact", -1) == 1.0
    assert prox.step_size_bound(d, "published") == float(Fraction(1, 2 * d + 1))
[("d", "published 1/(2d+1)", "blog 1/(2d)", "exact 1/(d-1)", "exact/published")] + [
    tuple(str(v) for v in r) for r in rows
]

# %% [markdown]
# The published bound is *safe* — always below the exact one — but about half of it: the
# MovieLens experiment ($d \le 11$) could use any $\eta < 1/10$ instead of $1/23$. Notebook 06 uses
# the published value to reproduce the published numbers.
#
# ## The smallest eigenvalue of the subproblem's Hessian
#
# Now the whole Hessian of $\theta\mapsto\varphi(\theta, z)$ over the sample's coordinates
# $(w_0, w_{\mathrm{idx}}, V_{\mathrm{idx}})$, computed by torch autograd and `eigvalsh` — no formula
# involved — at the worst case $y = +1$, $z = 1$. Scaled by $\eta$ its smallest eigenvalue should be
# $\min(1, 1 - \eta(d-1)) = 1 - \eta(d-1)$, crossing zero at $\eta = 1/(d-1)$:

# %%
eig_rows = nb04.min_eigenvalue_rows()
max(abs(r["scaled_min_eig"] - r["formula"]) for r in eig_rows) <= 1e-12

# %%
at_bound = [r for r in eig_rows if r["eta"] == r["exact_bound"]]
[(r["d"], abs(r["scaled_min_eig"]) <= 1e-12) for r in at_bound]

# %%
nb04.plot_min_eigenvalue(eig_rows)
plt.show()

# %% [markdown]
# (`figures/04_min_eigenvalue.png`, with its CSV.) The crosses, the published bound, sit well
# inside the positive region; the circles, the exact bound, are where convexity is lost.
#
# ## Beyond the bound
#
# Take a sample with $d = 11$, $y = +1$, and $\eta = 0.3$, three times the bound $1/10$.
#
# **$S(z)$ becomes singular** at $z_s = 1/(\eta(d-1)) = 1/3$: from the general determinant,

# %%
d_sym, eta_sym = sp.symbols("d eta", positive=True)
det_s = (1 + beta) ** (d_sym - 1) * (1 - beta * (d_sym - 1))
sp.simplify(det_s.subs(beta, eta_sym * (1 / (eta_sym * (d_sym - 1)))))

# %% [markdown]
# **Past $z_s$ the inner problem has no minimum**: moving every $v_i$ along the same direction (the
# eigenvector $\mathbf 1$ of $S$) sends $\varphi(\cdot, z)$ to $-\infty$ when $z > z_s$, while below $z_s$ it
# grows. So the true $q(z) = \min_\theta\varphi(\theta, z)$ is $-\infty$ on $(z_s, 1]$:

# %%
idx, w0, w, V = nb04.beyond_bound_case()
eta = 0.3
y = 1
above = nb04.unbounded_direction_values(idx, y, w0, w, V, eta, z=0.5)
below = nb04.unbounded_direction_values(idx, y, w0, w, V, eta, z=0.2)
all(a > b for a, b in zip(above, above[1:])) and above[-1] < -1e4, below[-1] > below[1]

# %% [markdown]
# **$F$ itself is no longer convex.** Its Hessian is $\ell''\,\nabla\hat y\nabla\hat y^\top$ plus the Hessian of
# $\varphi(\cdot, z(\theta))$ with $z(\theta) = 1/(1 + e^{y\hat y(\theta)})$; where $z(\theta) > z_s$ the
# rank-one term cannot repair a $k$-dimensional negative eigenspace. At $\theta_t$ with the global
# bias moved to $-20$ (so $z(\theta)\approx 1$), the smallest Hessian eigenvalue of $F$ is negative:


# %%
def prox_hessian_min_eig(w0_at):
    k = V.shape[1]
    d = idx.numel()

    def F_flat(theta):
        w_at, V_at = w.clone(), V.clone()
        w_at[idx] = theta[1 : 1 + d]
        V_at[idx] = theta[1 + d :].reshape(d, k)
        return prox.prox_objective(idx, y, theta[0], w_at, V_at, eta, w0, w, V)

    theta = torch.cat([w0_at.reshape(1), w[idx], V[idx].reshape(-1)])
    return float(torch.linalg.eigvalsh(torch.autograd.functional.hessian(F_flat, theta))[0])


prox_hessian_min_eig(torch.tensor(-20.0, dtype=torch.float64)) < 0

# %% [markdown]
# **The closed form blows up.** Applied blindly, the closed-form $q$ of notebook 05 (formula (C))
# has a pole at $z_s$: it tends to $-\infty$ from the left, like the true $q$, but to $+\infty$ from the
# right, where the "solution" of $S(z)V = V_t$ is a saddle point, not a minimum. The published
# golden-section search over $[0, 1]$ assumes $q$ unimodal and walks into the pole:

# %%
golden = prox.prox_step(idx, y, w0, w, V, eta, solver="golden", allow_beyond_bound=True)
dual = prox.prox_step(idx, y, w0, w, V, eta, allow_beyond_bound=True)
abs(golden.z - 1 / 3) <= 1e-7, dual.z < 1 / 3

# %%
nb04.plot_beyond_bound(nb04.beyond_bound_rows(eta), golden.z, dual.z)
plt.show()

# %% [markdown]
# (`figures/04_beyond_bound.png`.) The point golden section returns is not the minimiser of the prox
# objective: the latent vectors are scaled by $1/\lambda_{\text{mean}}\approx 10^{8}$ and $F$ there is
# astronomically larger than the minimum a generic optimiser finds (L-BFGS-B from a dozen starting
# points, since $F$ is not convex):


# %%
def F_at(r):
    return float(prox.prox_objective(idx, y, r.w0, r.w, r.V, eta, w0, w, V))


numerical = nb04.multistart_minimum(idx, y, w0, w, V, eta)
F_at(golden) > 1e10 * F_at(numerical), float(golden.V.abs().max()) > 1e6

# %% [markdown]
# ### What still works past the bound
#
# The maximiser of the *true* $q$ — searched only below the pole, where $q$ is finite and concave —
# does give the minimiser. The reason is weak duality, which needs no convexity: for all $\theta, z$,
# $q(z) \le \varphi(\theta, z) \le F(\theta)$. At the root $z^* < z_s$ of $q'$, $S(z^*)\succ 0$, the point
# $\theta(z^*)$ minimises $\varphi(\cdot, z^*)$, and $q'(z^*) = \partial_z\varphi(\theta(z^*), z^*) = 0$ makes $z^*$ the
# maximiser of the concave $\varphi(\theta(z^*), \cdot)$; hence $F(\theta(z^*)) = \varphi(\theta(z^*), z^*) = q(z^*) \le \min F$.
# So $\theta(z^*)$ is a global minimiser of $F$ (and the only one: any other would also minimise
# $\varphi(\cdot, z^*)$, whose minimiser is unique). This needs $q \to -\infty$ at the pole, i.e. $V_{\mathrm{idx}}$
# not exactly orthogonal to the pole's eigenvector — true for all but a measure-zero set of
# parameters. `prox_step(..., allow_beyond_bound=True)` with the default solver cuts its search at the
# pole; the result matches the generic optimiser and is a stationary point of $F$:

# %%
agree = max(
    float((dual.w0 - numerical.w0).abs()),
    float((dual.w - numerical.w).abs().max()),
    float((dual.V - numerical.V).abs().max()),
)
agree <= 1e-6, prox.kkt_residual(dual, idx, y, w0, w, V, eta) <= 1e-12

# %% [markdown]
# Still, `prox_step` refuses such step sizes by default: past the bound Sion's theorem no longer
# covers the derivation, $F$ is not convex, and an unguarded search over $[0,1]$ — the published one —
# fails as shown. The error states the bound:

# %%
try:
    prox.prox_step(idx, y, w0, w, V, eta)
except FMInputError as error:
    print(error)

# %% [markdown]
# ## Summary
#
# * The prox subproblem's Hessian in $V$ is $\frac1\eta S(z)\otimes I_k$, $S(z) = (1+\eta yz)I - \eta yz\,\mathbf 1\mathbf 1^\top$
#   (sympy); its eigenvalues are $1 - \eta yz(d-1)$ and $1 + \eta yz$ for every $d$ (sympy, symbolic $d$).
# * **Erratum E2.** In the blog's decomposition of $v_i^\top v_j$ each $\|v_i\|^2$ carries
#   $\tfrac12\sum_j|\alpha_{ij}|$, not $\sum_j|\alpha_{ij}|$ (sympy: the published version is off by
#   $\tfrac12 z(d-1)\sum_i\|v_i\|^2$). The condition is $\eta < 1/(d-1)$, not $\eta \le 1/(2d)$, and it is exact
#   for $y = +1$ ($\eta < 1$ for $y = -1$). The published $1/(2d+1)$ is safe but about half the exact bound.
# * The autograd Hessian's smallest eigenvalue crosses zero exactly at $1/(d-1)$.
# * Past the bound $S(z)$ is singular at $z_s = 1/(\eta(d-1))$, $\varphi(\cdot, z)$ is unbounded below for
#   $z > z_s$, $F$ is not convex, and the blind closed form plus golden section returns a point with
#   huge $F$. A dual search that stops at the pole still finds the minimiser (weak duality).
#
# Next: notebook 05 computes $q$, its maximiser and the step in closed form.
