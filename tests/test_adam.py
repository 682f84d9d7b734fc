"""fmedu.engine.adam: torch.optim.Adam's zero-gradient steps in O(1), against torch and exact sums.

Tolerances, in ulps of the larger of the parameter and its move over the gap: a parameter after
a gap is within 32 ulps of torch.optim.Adam (torch's own sequential rounding leaves it up to
~20 ulps from the exact sum), and, where a closed form applies, within 4 ulps of the exact sum
(mpmath, 200 bits) of the same zero-gradient steps.
"""

import math

import mpmath
import numpy as np
import pytest
import torch
from numba import njit

from fmedu.engine import adam

TABLES = adam.tables()
LR = 0.01


@njit
def catch_up_compiled(p, m, v, lr, t0, K, tables):
    work = np.empty(adam.SERIES_TERMS + 1)
    return adam.catch_up(p, m, v, lr, t0, K, tables, work)


def catch_up_python(p, m, v, lr, t0, K):
    """The same source, interpreted (as the GPU simulator runs it)."""
    return adam.catch_up(p, m, v, lr, t0, K, TABLES, np.empty(adam.SERIES_TERMS + 1))


def closed_form_applies(m, v, t0, K):
    """Whether the engine uses a closed form (not a replay) for this gap."""
    if t0 + 1 >= adam.T_BC:
        return bool(adam.late_applies(m, v, TABLES[6], min(K, adam.GEOM_LEN - 1)))
    coefs = adam.gap_coefficients(t0, K, TABLES, np.empty(adam.SERIES_TERMS + 1))
    return bool(adam.series_applies(m, v, coefs))


def ulps(a, b, scale=0.0):
    """|a − b| in units in the last place of max(|b|, scale)."""
    return abs(a - b) / np.spacing(max(abs(b), scale))


def test_bias_corrections_are_exactly_one_from_step_37412():
    assert adam.T_BC == 37_412
    assert 1.0 - adam.BETA2 ** (adam.T_BC - 1) != 1.0
    assert all(1.0 - adam.BETA2**t == 1.0 and 1.0 - adam.BETA1**t == 1.0 for t in range(adam.T_BC, adam.T_BC + 5000))
    bias1, bias2_sqrt = TABLES[0], TABLES[1]
    assert bias1[adam.T_BC] == 1.0 and bias2_sqrt[adam.T_BC] == 1.0
    # the tables hold torch's values: 1 - beta1 ** step and (1 - beta2 ** step) ** 0.5
    for t in (1, 2, 10, 355, 356, 1000, 37_411):
        assert bias1[t] == 1 - 0.9**t and bias2_sqrt[t] == (1 - 0.999**t) ** 0.5
    assert adam.step_factors(10**6, LR, TABLES) == (LR, 1.0)


def test_zero_gradient_moves_shrink_at_every_step():
    """The replay stops at the first step that leaves p unchanged: no later move is larger.

    With zero gradients u_s/u_{s-1} ≤ β1 (c1(s−1)/c1(s)) √(c2(s)/(β2 c2(s−1))) (ε only lowers
    it); below 0.92 for every step s ≥ 2.
    """
    s = np.arange(2, adam.T_BC + 1, dtype=float)
    c1 = lambda t: 1 - adam.BETA1**t
    c2 = lambda t: 1 - adam.BETA2**t
    ratio = adam.BETA1 * c1(s - 1) / c1(s) * np.sqrt(c2(s) / (adam.BETA2 * c2(s - 1)))
    assert ratio.max() < 0.92


def test_series_tables_match_exact_sums():
    mpmath.mp.prec = 120
    bias1, bias2_sqrt, series, geom, geom_sums, decay, late, _ = TABLES
    b1, b2 = mpmath.mpf(adam.BETA1), mpmath.mpf(adam.BETA2)
    for n in (0, 3, adam.SERIES_TERMS):
        r = b1 * b2 ** (-mpmath.mpf(n + 1) / 2)
        for t0 in (0, 1, 7, 355, 5000, 37_000, adam.T_BC - 1, adam.T_BC):
            exact, term, i = mpmath.mpf(0), mpmath.mpf(1), 0
            while i < 1200:  # r^1200 < 1e-50
                i += 1
                term *= r
                s = min(t0 + i, adam.T_BC)
                exact += term * mpmath.mpf(bias2_sqrt[s]) ** (n + 1) / mpmath.mpf(bias1[s])
            assert abs(series[t0, n] - exact) <= 2**-52 * exact, (n, t0)
        for K in (1, 2, 17, 500, adam.GEOM_LEN - 1):
            exact = r * (1 - r**K) / (1 - r)
            assert abs(geom_sums[K, n] - exact) <= 2**-52 * exact
            assert abs(geom[K, n] - r**K) <= 2**-52 * r**K
    assert decay[7, 0] == 0.9**7 and decay[700, 1] == 0.999**700
    r0 = b1 / mpmath.sqrt(b2)
    for n in (0, 1, 5, adam.LATE_TERMS):
        for K in (1, 3, 40, adam.GEOM_LEN - 1):
            exact = mpmath.fsum(r0**i * (b2 ** (-mpmath.mpf(i) / 2) - 1) ** n for i in range(1, K + 1))
            assert abs(late[K, n] - exact) <= 2**-52 * exact, (n, K)
    # the late-regime expansion's remainder bound holds for every delta: T_12 / T_0 < 2^-55
    assert late[-1, adam.LATE_TERMS] / late[-1, 0] < 2**-55


def _torch_trajectory(scales, last_grad, checkpoints, steps, seed=0):
    """torch.optim.Adam (float64) on one vector: entry j gets gradients up to step last_grad[j]."""
    rng = np.random.default_rng(seed)
    P = len(scales)
    p = torch.tensor(rng.normal(0, 0.01, P), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=LR)
    states, snaps = {}, {}
    for t in range(1, steps + 1):
        g = np.zeros(P)
        for j in range(P):
            if t <= last_grad[j] and (t <= 3 or t % 97 == 0 or t == last_grad[j]):
                g[j] = scales[j] * rng.standard_normal()
        p.grad = torch.from_numpy(g)
        opt.step()
        state = opt.state[p]
        if t in last_grad:
            states[t] = tuple(x.detach().numpy().copy() for x in (p, state["exp_avg"], state["exp_avg_sq"]))
        if t in checkpoints:
            snaps[t] = p.detach().numpy().copy()
    return states, snaps


def _exact(p, m, v, t0, K):
    """The same zero-gradient steps with 200-bit arithmetic (torch's bias corrections)."""
    mpmath.mp.prec = 200
    bias1, bias2_sqrt = TABLES[0], TABLES[1]
    p, m, v = mpmath.mpf(p), mpmath.mpf(m), mpmath.mpf(v)
    for i in range(1, K + 1):
        s = min(t0 + i, adam.T_BC)
        m, v = m * mpmath.mpf(adam.BETA1), v * mpmath.mpf(adam.BETA2)
        u = LR / mpmath.mpf(bias1[s]) * m / (mpmath.sqrt(v) / mpmath.mpf(bias2_sqrt[s]) + mpmath.mpf(adam.EPS))
        p -= u
        if abs(u) < abs(p) * mpmath.mpf(2) ** -90:
            break
    return float(p)


def test_catch_up_matches_torch_adam_across_both_regimes():
    """Gaps before, across and after step 37,412, with δ = ε/√v from 1e-7 to 1e5: before step
    37,412 the series in δ or (δ large) a replay, after it the expansion around δ for every δ."""
    scales = [1.0, 1e-2, 1e-4, 1e-6, 1e-9, 1e-12, 0.3, 1e-3, 1e-6, 1e-9, 1e-12]
    last_grad = [3, 3, 3, 3, 3, 30_000, 37_410, 38_000, 38_000, 38_000, 38_000]
    checkpoints = [4, 5, 10, 20, 100, 300, 1000, 29_999, 30_001, 30_010, 30_500, 37_409, 37_411, 37_412]
    checkpoints += [37_420, 38_001, 38_005, 38_100, 40_000]
    states, snaps = _torch_trajectory(scales, last_grad, checkpoints, 40_000)
    paths = set()
    for j, t0 in enumerate(last_grad):
        p0, m0, v0 = (float(a[j]) for a in states[t0])
        for t in checkpoints:
            if t <= t0:
                continue
            K = t - t0
            ours = catch_up_compiled(p0, m0, v0, LR, t0, K, TABLES)
            assert ours == catch_up_python(p0, m0, v0, LR, t0, K)  # one source, compiled or not
            move = abs(snaps[t][j] - p0)
            assert ulps(ours[0], snaps[t][j], move) <= 32, (j, t0, t)
            closed = closed_form_applies(m0, v0, t0, K)
            late = t0 + 1 >= adam.T_BC
            paths.add((closed, late, 1e-8 / math.sqrt(v0) > 1))
            if closed and K <= 3000:
                assert ulps(ours[0], _exact(p0, m0, v0, t0, K), move) <= 4, (j, t0, t)
    # before step 37,412: the series (small δ) and replays (large δ); after it the closed form
    # for small and for large δ, and never a replay
    assert {(True, False, False), (False, False, True), (True, True, False), (True, True, True)} <= paths
    assert not any(late and not closed for closed, late, _ in paths)


def test_moments_decay_in_closed_form():
    p, m, v = catch_up_compiled(0.01, 1e-3, 1e-6, LR, 40_000, 2000, TABLES)
    assert m == 1e-3 * 0.9**2000 and v == 1e-6 * 0.999**2000
    # m = 0: no move at all, only v decays
    assert catch_up_compiled(0.25, 0.0, 1e-6, LR, 5, 50, TABLES) == (0.25, 0.0, 1e-6 * 0.999**50)


@pytest.mark.parametrize("t0", [5, 40_000])
def test_a_gap_split_in_two_equals_one_gap(t0):
    """Catching up at an epoch's end and again later is the same as catching up once."""
    p, m, v = 0.02, 3e-4, 2e-7
    once = catch_up_compiled(p, m, v, LR, t0, 900, TABLES)
    mid = catch_up_compiled(p, m, v, LR, t0, 400, TABLES)
    twice = catch_up_compiled(*mid, LR, t0 + 400, 500, TABLES)
    assert ulps(twice[0], once[0]) <= 4
    assert math.isclose(twice[1], once[1], rel_tol=1e-13) and math.isclose(twice[2], once[2], rel_tol=1e-13)


class _CountingTables(tuple):
    """adam.tables() that counts the steps a replay takes (each reads the bias-correction table)."""

    def __new__(cls, tables):
        self = super().__new__(cls, tables)
        self.steps = 0
        return self

    def __getitem__(self, i):
        if i == 0:
            self.steps += 1
        return super().__getitem__(i)


def test_a_replay_stops_once_the_value_is_nan():
    """NaN == NaN is false, so 'stop when a step leaves p unchanged' alone replays a diverged
    parameter's whole gap; a NaN stays NaN at every later step, so the replay stops at once."""
    tables = _CountingTables(TABLES)
    p, m, v = adam.replay(math.nan, 1e-3, 1e-12, 0.1, 100, 5000, tables)
    assert math.isnan(p) and tables.steps <= 2
    _, m1, v1 = adam.adam_update(math.nan, 1e-3, 1e-12, 0.0, *adam.step_factors(101, 0.1, TABLES))
    d1, d2 = adam.decay_factors(4999, TABLES[5])
    assert (m, v) == (m1 * d1, v1 * d2)  # the moments of the remaining steps still decay
    # a finite parameter whose move overflows to NaN stops too, and returns the NaN
    tables = _CountingTables(TABLES)
    p, _, _ = adam.replay(1.0, math.inf, 1.0, 0.1, 100, 5000, tables)
    assert math.isnan(p) and tables.steps <= 2


def test_a_row_replay_stops_when_its_moving_columns_stop_even_with_a_nan_column():
    """The kernels' replay of a row's columns in lockstep: a NaN column does not keep it going."""
    from fmedu.engine import rules

    K, t0, lr = 5000, 100, 0.1
    for moving in (False, True):
        theta = np.array([[math.nan, 0.5, 0.25]])
        exp_avg = np.array([[1e-3, 1e-3 if moving else 0.0, 0.0]])
        exp_avg_sq = np.full((1, 3), 1e-12)
        tables = _CountingTables(TABLES)
        rules._replay_columns(theta[0], exp_avg[0], exp_avg_sq[0], t0, K, lr, 0, 3, 1, tables)
        assert math.isnan(theta[0, 0]) and theta[0, 2] == 0.25
        if moving:  # as long as the replay of the moving column alone
            alone = _CountingTables(TABLES)
            p, _, _ = adam.replay(0.5, 1e-3, 1e-12, lr, t0, K, alone)
            assert theta[0, 1] == p and 2 < tables.steps == alone.steps < K
        else:
            assert theta[0, 1] == 0.5 and tables.steps <= 2


def test_the_gap_terms_table_holds_the_floats_of_the_sequential_products():
    """Short early gaps read g_n(s) = (√c2(s)/c1(s))·√c2(s)^n from a table: the very floats of
    dividing once and multiplying term by term, at every step s and every term n."""
    bias1, bias2_sqrt, gap_terms = TABLES[0], TABLES[1], TABLES[7]
    assert gap_terms.shape == (adam.T_BC + 1, adam.SERIES_TERMS + 1)
    for s in [1, 2, 3, 17, 100, 1000, 20000, adam.T_BC - 1, adam.T_BC, *range(5, adam.T_BC, 997)]:
        g = bias2_sqrt[s] / bias1[s]
        for n in range(adam.SERIES_TERMS + 1):
            assert gap_terms[s, n] == g
            g *= bias2_sqrt[s]
