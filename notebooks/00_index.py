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
# # 00 · Course index
#
# A **factorization machine** (FM) predicts from a feature vector $x \in \mathbb R^n$ with
#
# $$\hat y(x) \;=\; w_0 \;+\; \sum_{i=1}^{n} w_i x_i \;+\; \sum_{i=1}^{n}\sum_{j=i+1}^{n} \langle v_i, v_j\rangle\, x_i x_j ,
# \tag{0.1}$$
#
# a global bias $w_0$, one weight $w_i$ per feature, and one **latent vector**
# $v_i \in \mathbb R^k$ per feature, so that every pair of features gets a weight
# $\langle v_i, v_j\rangle$ without a parameter of its own. FMs are the workhorse model for
# data made of many categorical features (users, items, ads and their attributes), where $x$ is
# the row of a **one-hot design matrix**: one column per feature, a 1 where the sample has that
# feature and 0 elsewhere. The picture shows six movie ratings of the example that chapter 01
# works by hand:

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown

from fmedu import course
from fmedu.figures import nb00
from fmedu.notebook import setup

setup()
nb00.plot_design_matrix(nb00.design_rows())
plt.show()

# %% [markdown]
# Each row is one rating: a 1 in the column of its user, a 1 in the column of its movie, zeros
# elsewhere. Of all the pairs in (0.1), only the pair (user, movie) has $x_i x_j \ne 0$, so the
# model adds exactly one interaction per rating, written at the right of each row.
#
# This course teaches second-order FMs from the formula (0.1) to a full experiment on the
# MovieLens ratings, and it **derives every step on the page, then checks it**: each derivation
# is a chain of equations you can redo with a pencil, followed by code whose output (`True`, an
# exact `0`, an integer, a bound that holds) would be different if the step were wrong. Along
# the way it reads four sources closely and corrects the mistakes it finds in them, with the
# evidence on the page: two published ones (a blog post on proximal-point training of FMs, and
# the reference page and code of the SystemDS project) and two unpublished ones (a note on the
# FM gradient and a set of research notes on what FMs can express).
#
# ## What you will learn
#
# * why (0.1) can be evaluated and differentiated in time linear in $n$, and how to derive and
#   check its gradient (chapters 01–02);
# * which interaction matrices an FM can represent, how large $k$ must be, and what user–item
#   data can and cannot identify (chapters 03–04);
# * how a stochastic proximal-point step for a logistic FM is made exact and cheap: when each step
#   is a strictly convex problem (and why that does not make the iteration stable), and how to
#   compute it through a one-dimensional dual problem (chapters 05–06);
# * how the published experiment on MovieLens 100k reproduces, where it goes wrong, and what
#   remains of its conclusions (chapter 07); whether an FM beats a linear model on new ratings,
#   with intervals that include the test set's sampling error (chapter 08).
#
# ## What you need
#
# * Calculus (partial derivatives, the chain rule), linear algebra (inner products, matrices,
#   eigenvalues, positive definiteness) and basic probability (the logistic function).
# * Python with a little torch: tensors, `@` for matrix products, indexing. The chapters use
#   sympy for exact algebra and explain each use where it appears.
# * No prior knowledge of factorization machines or of proximal methods.

# %% [markdown]
# ## Reading order
#
# * [01 · Rendle's reformulation](01_rendle_reformulation.ipynb): what an FM computes (three
#   users, four movies), Rendle's identity derived and proven for every $n$, rounding bounds,
#   and the exact and measured cost of the naive, fast and sparse forms; erratum R1.
# * [02 · The O(nk) gradient, checked three ways](02_gradient.ipynb): the closed-form gradient
#   and why it is O(nk), errata E1 and E6, closed form against automatic differentiation and
#   finite differences, and training on a planted FM.
# * [03 · What an FM can express](03_expressiveness.ipynb): which interaction matrices an FM
#   can represent and how large $k$ must be; errata E7 and E8.
# * [04 · User–item data and identifiability](04_user_item.ipynb): exactly which tables a
#   $k$-column FM produces on user–item data, and which parameters the predictions determine.
# * [05 · The step-size bound of stochastic proximal point](05_step_size_bound.ipynb): why the
#   proximal subproblem must be strictly convex, the exact step-size condition against the
#   published one (erratum E2), and what breaks beyond it.
# * [06 · The Sherman–Morrison prox solve](06_prox_solve.ipynb): the proximal step through a
#   one-dimensional concave dual, solved in closed form and checked against a generic
#   optimiser; errata E3 and E9.
# * [07 · MovieLens 100k: the published experiment, reproduced and corrected](07_movielens.ipynb):
#   the data and the published join (erratum E4), the 10-epoch curve of a linear model (E3), why
#   the exact step fails at the published step size, and the stability sweeps (E5).
# * [08 · Does an FM beat a linear model?](08_fm_vs_linear.ipynb): train, validation and test
#   rows; logistic regression and a Bayesian FM as peers; the sampling error of a test log-loss
#   and paired bootstrap intervals; a step-size robustness measure that does not depend on the
#   grid.
# * [09 · Regularised proximal point](09_regularised_prox.ipynb): the proximal step with libFM's
#   per-touch L2 penalty derived and its new step-size bound; why the exact step inflates the
#   vectors every sample touches (an implicit step amplifies indefinite directions) and what
#   the penalty does about it; five folds with intervals against a linear model and a Bayesian FM.
#
# **Minutes per chapter.** Each chapter is meant for one sitting. The table below estimates the
# reading time of each lesson (exercises apart) from the chapter files as they are now, with
# one rule: 100 words of prose a minute (about half the speed of ordinary prose, because the
# prose is full of formulas; a formula counts by its space-separated pieces) plus 10 lines of
# code a minute, rounded to 5 minutes. The exercises are not counted: working them takes
# longer than reading them.

# %%
table = course.reading_table(".")
header = "| chapter | prose words | code lines | minutes | exercises |\n|---|---:|---:|---:|---:|\n"
Markdown(
    header
    + "\n".join(
        f"| {r['title']} | {r['words']:,} | {r['code_lines']} | {r['minutes']} | {r['exercises']} |" for r in table
    )
)

# %% [markdown]
# ## How to read this course
#
# * **Read in order.** Each chapter builds on the ones before it and says which of their
#   numbered equations it uses: equation (1.4) is the fourth numbered equation of chapter 01.
# * **Every chapter has the same shape**: a promise (the question it answers and why it
#   matters), what you will learn and what you need, a small example worked by hand, then
#   sections that each make one claim, derive it as a displayed chain of equations with each
#   move named, and check it; then key takeaways, exercises and references.
# * **Read the checks.** A code cell after a derivation ends in an exact value: `True`, a sympy
#   `0`, an integer, or a comparison with a tolerance that the chapter derives. The course is
#   re-run and every stored output is compared, so what you see is what the code computes. The
#   only outputs not compared are timings, which vary from machine to machine; claims about
#   speed rest on exact operation counts, and measured times illustrate them.
# * **Errata boxes** (quoted blocks starting "Erratum") state what a source claims, in our
#   notation, the correct statement, and the check that decides between them.
# * **Exercises** come at the end of each chapter, easy to hard. Try them before opening the
#   solution: each solution is folded away below its exercise and ends in its own exact check.
# * **References are numbered per chapter.** Each chapter numbers its own reference list from
#   1, so [3] in chapter 01 and [3] in chapter 02 can be different works; the
#   [bibliography](#bibliography) at the end lists every work once, with its number in each
#   chapter.
# * **Code on the page is short.** Longer helpers and all plotting live in the `fmedu` package;
#   each helper's docstring names the chapter that teaches it.

# %% [markdown]
# ## Notation
#
# One meaning per symbol, in every chapter, in the code and in the
# [README](../README.md#notation). A chapter introduces its own extra symbols where it first
# uses them, and says how its sources' letters map onto these.
#
# | symbol | in code | meaning |
# |---|---|---|
# | $n$ | `n` | number of features (columns of the design matrix) |
# | $k$ | `k` | factorization dimension (length of each latent vector) |
# | $x \in \mathbb R^n$ | `x` | one sample's feature vector; for one-hot data its non-zero indices `idx` |
# | $w_0,\ w \in \mathbb R^n,\ V \in \mathbb R^{n\times k}$ | `w0`, `w`, `V` | global bias, linear weights, latent vectors ($v_i$ is row $i$ of $V$, $v_{if}$ its entry $f$) |
# | $\hat y(x)$ | `predict` | the prediction (0.1) |
# | $d = \operatorname{nnz}(x)$ | `nnz` | number of non-zeros of one sample |
# | $y \in \{-1, +1\}$ | `y` | label for the logistic and hinge losses |
# | $\eta$ | `eta` | step size |
# | $z \in [0, 1]$ | `z` | dual variable of the logistic loss in the proximal step |

# %% [markdown]
# ## How to run things
#
# From the root of the project (the commands set up a local Python environment on first use):
#
# * `make lab` opens JupyterLab on the chapters. Edit a chapter's `.py` file or the notebook;
#   the two are kept paired.
# * `make test` runs the package's tests and re-executes every chapter, comparing each stored
#   output with the new one.
# * `make figures` regenerates every figure in `figures/` together with the CSV of the numbers
#   it shows; `python -m fmedu figures --only 01 02` regenerates those of chapters 01 and 02.
# * `make notebooks` re-executes the chapters in place (`make notebooks NB=notebooks/01_rendle_reformulation.py`
#   for one), with one thread and fixed seeds, so that re-runs give the same outputs.
# * `python -m fmedu --help` lists the command line: `figures`, `experiment` (the MovieLens
#   experiments, resumable) and `bench` (speed benchmarks).
#
# **Data.** Chapters 07 and 08 use MovieLens 100k, which may not be redistributed, so it is not part
# of the project. On a machine with network access there is nothing to do: the first use
# downloads the official archive once into a per-user cache folder and checks every file. To
# use a copy you already have, point the environment variable `FMEDU_DATA` at the unpacked
# `ml-100k` folder; to download from a mirror, set `FMEDU_MOVIELENS_URL` to the mirror's
# address of the zip file. The [README](../README.md#data) has the details.
#
# **Links.** Every link on this page to a chapter, a heading or a file of the project is
# checked: the cell below reads this page's own markdown, collects every link, and lists the
# ones whose target (file, or heading in it) does not exist. Links to the web are not followed.

# %%
links = course.markdown_links("00_index.py")
local = [link for link in links if ":" not in link]
len(local), course.broken_links("00_index.py")

# %% [markdown]
# ## Bibliography
#
# Every work that a chapter lists under its "References", each listed once. The list is
# generated from the chapters' reference lists when this page runs, so it cannot miss a work a
# chapter cites; after each entry, the chapters that list it and the number it has there, so
# "(01 [5])" means reference [5] of chapter 01.

# %%
Markdown(course.bibliography_markdown("."))

# %% [markdown]
# [Next: 01 · Rendle's reformulation →](01_rendle_reformulation.ipynb)
