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
# Factorization machines (FMs) are the workhorse model for data made of many categorical
# features, such as users, items, ads and their attributes: they score every pair of features
# through a learned inner product, at a cost linear in the number of features. This course
# teaches second-order FMs from the model itself to a full experiment on MovieLens, and it
# **proves every step it teaches**: each derivation on a page is followed by code whose output
# (`True`, an exact `0`, an integer, a bound that holds) would be different if the step were
# wrong. Along the way it reads four published sources closely and corrects the mistakes it
# finds in them, with the evidence on the page. It is written for students and teachers who
# want to see every step, and for practitioners and researchers who want a trustworthy
# reference for FM predictions, gradients and proximal-point training steps.
#
# Symbols follow the course's [notation](../README.md#notation) table, the single place where
# every symbol is defined; each chapter links to it and says how its sources' letters map onto
# ours.

# %% [markdown]
# ## What you will learn
#
# * what an FM computes, why it can be evaluated and trained in time linear in the number of
#   features, and how to derive and check its gradient (chapters 01–02);
# * which interaction matrices an FM can represent, how large the factorisation dimension must
#   be, and what the data can and cannot identify (chapter 03);
# * how a stochastic proximal-point step for a logistic FM is made exact and cheap: when it is
#   well defined, and how to compute it through a one-dimensional dual problem (chapters 05–06);
# * how the published experiment on MovieLens 100k reproduces, where it goes wrong, and what
#   remains of its conclusions (chapter 07).
#
# ## What you need
#
# * Calculus (partial derivatives, the chain rule), linear algebra (inner products, matrices,
#   eigenvalues, positive definiteness) and basic probability (the logistic function).
# * Python with a little torch: tensors, `@` for matrix products, indexing. The chapters use
#   sympy for exact algebra; each use is explained where it appears.
# * No prior knowledge of factorization machines or of proximal methods.

# %% [markdown]
# ## How to read this course
#
# * **Read in order.** Each chapter builds on the ones before it; the list below says what
#   each one answers.
# * **Every chapter has the same shape**: a promise (the question it answers and why it
#   matters), what you will learn and what you need, a small worked example before the general
#   formula, then sections that each make one claim, derive it in short steps and check it,
#   followed by key takeaways, exercises and references.
# * **Read the checks.** A code cell after a derivation ends in an exact value: `True`, a sympy
#   `0`, an integer, or a comparison with a stated tolerance. The course is re-run and every
#   stored output is compared, so what you see is what the code computes. The only outputs not
#   compared are timings, because timings vary from machine to machine; claims about speed rest
#   on exact operation counts, and measured times illustrate them with stated tolerances.
# * **Errata boxes** (quoted blocks starting "Erratum") state what a source claims, in our
#   notation, the correct statement, and the check that decides between them. The source is
#   cited so that you can look the original up.
# * **Exercises** come at the end of each chapter, easy to hard. Try them before opening the
#   solution: each solution is folded away below its exercise and ends in its own exact check.
#   At least one exercise per chapter asks you to predict the effect of a change before running
#   it.
# * **Code on the page is short.** Longer helpers, all plotting, and everything that the tests
#   share live in the `fmedu` package; each helper's docstring names the chapter that teaches it.

# %% [markdown]
# ## Reading order
#
# * [00 · Course index](00_index.ipynb): this page.
# * [01 · Rendle's reformulation: an FM in O(nk)](01_rendle_reformulation.ipynb): what an FM
#   computes (three users, four movies), Rendle's identity proven for every n, exact and measured
#   cost of the naive, fast and sparse forms; erratum R1.
# * [02 · The O(nk) gradient, checked three ways](02_gradient.ipynb): the closed-form gradient
#   and why it is O(nk), errata E1 and E6, closed form against automatic differentiation and
#   finite differences, cost, and Adam training on a planted FM.
# * [03 · What an FM can express](03_expressiveness.ipynb): which interaction matrices an FM
#   can represent and how large k must be; errata E7 and E8.
# * [04 · User–item data and identifiability](04_user_item.ipynb): exactly which tables a
#   k-column FM produces on user–item data, and which parameters the predictions determine.
# * [05 · The step-size bound of stochastic proximal point](05_step_size_bound.ipynb): why the
#   proximal subproblem must be strictly convex, the exact step-size condition against the
#   published one (erratum E2), and what breaks beyond it.
# * [06 · The Sherman–Morrison prox solve](06_prox_solve.ipynb): the proximal step through a
#   one-dimensional concave dual, solved in closed form and checked against a generic optimiser;
#   erratum E3.
# * [07 · MovieLens 100k, end to end](07_movielens.ipynb): the data, the published experiment
#   reproduced and corrected (errata E3–E5), the full step-size sweep and held-out loss, and what
#   practitioners would use instead.
#
# The list is checked: every chapter it links to exists, with its paired source file, and the
# notation table is where the links say.

# %%
from pathlib import Path

chapters = [
    "00_index",
    "01_rendle_reformulation",
    "02_gradient",
    "03_expressiveness",
    "04_user_item",
    "05_step_size_bound",
    "06_prox_solve",
    "07_movielens",
]
(
    all(Path(f"{name}.py").exists() for name in chapters),  # every chapter's source
    all(Path(f"{name}.ipynb").exists() for name in chapters[1:]),  # every other chapter's notebook
    "\n## Notation\n" in Path("../README.md").read_text(),  # the notation table's home
)

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
#   experiments of chapter 07, resumable) and `bench` (speed benchmarks).
# * Chapter 07 needs MovieLens 100k [24], which may not be redistributed: download it from
#   GroupLens and point the `FMEDU_DATA` environment variable at the unpacked `ml-100k` folder
#   (the README's "Data" section has the details).

# %% [markdown]
# ## Bibliography
#
# Every source a chapter uses or corrects, with the chapters that cite it.
#
# **Factorization machines**
#
# 1. Steffen Rendle. "Factorization Machines." *Proceedings of the 10th IEEE International
#    Conference on Data Mining (ICDM)*, pp. 995–1000, 2010. doi:10.1109/ICDM.2010.127
#    (ch. 01–03)
# 2. Steffen Rendle. "Factorization Machines with libFM." *ACM Transactions on Intelligent
#    Systems and Technology* 3(3), article 57, 2012. doi:10.1145/2168752.2168771 (ch. 01, 02)
# 3. Christoph Freudenthaler, Lars Schmidt-Thieme and Steffen Rendle. "Bayesian Factorization
#    Machines." *NIPS Workshop on Sparse Representation and Low-rank Approximation*, 2011.
#    (ch. 06)
# 4. Tomoki Ohtsuki. *myFM*: Bayesian factorization machines by Gibbs sampling, software,
#    https://github.com/tohtsky/myFM (ch. 06)
#
# **The sources this course reads closely, and corrects**
#
# 5. Alex Shtoff. "Proximal Point to the Extreme — Factorization Machines." Blog post, 14 April
#    2021, https://alexshtf.github.io/2021/04/14/ProximalPointFM.html: stochastic proximal-point
#    training of a logistic FM, its step-size bound, the Sherman–Morrison solve and the
#    MovieLens experiments. Errata E2, E3 (through its code), E4, E5, E9. (ch. 01, 04–06)
# 6. Alex Shtoff. *proxpt_fm*: the code of the blog post [5], https://github.com/alexshtf/proxpt_fm
#    (ch. 05, 06)
# 7. Andrew Bai. "FM O(dk) weight gradient calculation." Unpublished note, July 2022: an O(dk)
#    gradient of an FM with the logistic loss. Erratum E1. (ch. 02)
# 8. Apache SystemDS. "Algorithms Reference: Factorization Machines." Project documentation,
#    https://apache.github.io/systemds/site/algorithms-factorization-machines (source:
#    `docs/site/algorithms-factorization-machines.md` in https://github.com/apache/systemds):
#    the FM model, Rendle's reformulation, the gradient, Adam-trained regression and
#    classification scripts. Errata R1, E8. (ch. 01–03)
# 9. Apache SystemDS. `scripts/nn/layers/fm.dml`, the FM layer (`forward`, `backward`, `init`),
#    https://github.com/apache/systemds/blob/main/scripts/nn/layers/fm.dml. Erratum E6. (ch. 02)
# 10. "Factorisation machines." Unpublished research notes (undated, author not named): can
#     $VV^\top$ represent any interaction matrix (free diagonal, diagonal dominance, Gram
#     matrices), the user–item block structure, identifiability, regularisation. Erratum E7.
#     (ch. 03)

# %% [markdown]
# **Optimisation**
#
# 11. Hilal Asi and John C. Duchi. "Stochastic (Approximate) Proximal Point Methods:
#     Convergence, Optimality, and Adaptivity." *SIAM Journal on Optimization* 29(3):2257–2290,
#     2019. (ch. 04–06)
# 12. Maurice Sion. "On general minimax theorems." *Pacific Journal of Mathematics*
#     8(1):171–176, 1958. (ch. 04, 05)
# 13. Jack Sherman and Winifred J. Morrison. "Adjustment of an Inverse Matrix Corresponding to a
#     Change in One Element of a Given Matrix." *Annals of Mathematical Statistics*
#     21(1):124–127, 1950. (ch. 05)
# 14. Jack Kiefer. "Sequential minimax search for a maximum." *Proceedings of the American
#     Mathematical Society* 4(3):502–506, 1953 (golden-section search). (ch. 04, 05)
# 15. Richard H. Byrd, Peihuang Lu, Jorge Nocedal and Ciyou Zhu. "A Limited Memory Algorithm for
#     Bound Constrained Optimization." *SIAM Journal on Scientific Computing* 16(5):1190–1208,
#     1995 (L-BFGS-B). (ch. 04, 05)
# 16. Diederik P. Kingma and Jimmy Ba. "Adam: A Method for Stochastic Optimization." *3rd
#     International Conference on Learning Representations (ICLR)*, 2015. arXiv:1412.6980
#     (ch. 02, 06)
# 17. John Duchi, Elad Hazan and Yoram Singer. "Adaptive Subgradient Methods for Online Learning
#     and Stochastic Optimization." *Journal of Machine Learning Research* 12:2121–2159, 2011
#     (Adagrad). (ch. 06)
#
# **Linear algebra and numerical computing**
#
# 18. Roger A. Horn and Charles R. Johnson. *Matrix Analysis*, 2nd ed. Cambridge University
#     Press, 2013 (positive definiteness, diagonal dominance, Gershgorin discs, Gram matrices).
#     (ch. 03, 04)
# 19. Nicholas J. Higham. *Accuracy and Stability of Numerical Algorithms*, 2nd ed. SIAM, 2002
#     (rounding errors of sums and products). (ch. 01, 02)
# 20. Atılım Güneş Baydin, Barak A. Pearlmutter, Alexey Andreyevich Radul and Jeffrey Mark
#     Siskind. "Automatic Differentiation in Machine Learning: a Survey." *Journal of Machine
#     Learning Research* 18(153):1–43, 2018. (ch. 02)
# 21. Arthur Sard. "The measure of the critical values of differentiable maps." *Bulletin of the
#     American Mathematical Society* 48(12):883–890, 1942. (ch. 03)
# 22. Peter H. Schönemann. "A generalized solution of the orthogonal Procrustes problem."
#     *Psychometrika* 31(1):1–10, 1966. (ch. 03)
# 23. Benjamin Recht, Maryam Fazel and Pablo A. Parrilo. "Guaranteed Minimum-Rank Solutions of
#     Linear Matrix Equations via Nuclear Norm Minimization." *SIAM Review* 52(3):471–501, 2010.
#     (ch. 03)
#
# **Data**
#
# 24. F. Maxwell Harper and Joseph A. Konstan. "The MovieLens Datasets: History and Context."
#     *ACM Transactions on Interactive Intelligent Systems* 5(4), article 19, 2015.
#     doi:10.1145/2827872 (ch. 06)
#
# **Software**
#
# 25. Fabian Pedregosa et al. "Scikit-learn: Machine Learning in Python." *Journal of Machine
#     Learning Research* 12:2825–2830, 2011. (ch. 06)
# 26. Adam Paszke et al. "PyTorch: An Imperative Style, High-Performance Deep Learning
#     Library." *Advances in Neural Information Processing Systems 32 (NeurIPS)*, 2019.
#     (all chapters)
# 27. Aaron Meurer et al. "SymPy: symbolic computing in Python." *PeerJ Computer Science*
#     3:e103, 2017. (ch. 01–05)
# 28. Pauli Virtanen et al. "SciPy 1.0: fundamental algorithms for scientific computing in
#     Python." *Nature Methods* 17:261–272, 2020. (ch. 04, 05)
# 29. Siu Kwan Lam, Antoine Pitrou and Stanley Seibert. "Numba: a LLVM-based Python JIT
#     compiler." *Proceedings of the Second Workshop on the LLVM Compiler Infrastructure in HPC
#     (LLVM-HPC)*, 2015. (ch. 06)
#
# [Course index](00_index.ipynb) · [Next: 01 · Rendle's reformulation: an FM in O(nk) →](01_rendle_reformulation.ipynb)
