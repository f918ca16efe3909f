"""Paired statistics of jobs.evaluation.stats against exact and hand-computed references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from emorec.jobs.evaluation.stats import (
    adjust_pvalues,
    compare,
    finalize,
    mean_ci,
    minimum_detectable_effect,
    paired_bootstrap,
    paired_t_test,
    randomization_test,
    wilcoxon_test,
)


def test_holm_matches_hand_computed_example():
    # p sorted: 0.01, 0.02, 0.03, 0.04 -> *4, *3, *2, *1 = 0.04, 0.06, 0.06, 0.04 -> monotone 0.04, 0.06, 0.06, 0.06
    p = [0.03, 0.01, 0.04, 0.02]
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.12, 0.04, 0.16, 0.08])
    np.testing.assert_allclose(adjust_pvalues(p, "none"), p)
    out = adjust_pvalues([0.2, np.nan, 0.3], "holm")  # NaN does not count: m = 2, 0.2*2 = 0.4, max(0.3*1, 0.4)
    np.testing.assert_allclose(out[[0, 2]], [0.4, 0.4])
    assert np.isnan(out[1])
    assert adjust_pvalues([0.6, 0.7], "holm").max() <= 1.0
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_pvalues([0.1], "fdr")


def test_randomization_test_matches_exact_enumeration():
    rng = np.random.default_rng(3)
    a = rng.normal(size=12)
    b = a + rng.normal(0.5, 1.0, size=12)
    d = b - a
    flips = np.array(list(itertools.product([-1, 1], repeat=len(d))))
    exact = np.mean(np.abs(flips @ d) >= abs(d.sum()) - 1e-12)
    p = randomization_test(a, b, n_perm=20000, seed=1)
    assert abs(p - exact) < 0.01, (p, exact)
    assert randomization_test(a, a, n_perm=100) == 1.0
    assert randomization_test(a, a + 10.0, n_perm=999) == pytest.approx(1 / 1000)  # floor: observed counts once


def test_t_and_wilcoxon_agree_with_scipy_and_handle_degenerate_inputs():
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50)
    assert paired_t_test(a, b) == pytest.approx(sps.ttest_rel(b, a).pvalue)
    assert wilcoxon_test(a, b) == pytest.approx(sps.wilcoxon(b - a).pvalue)
    z = np.zeros(10)
    assert paired_t_test(z, z) == 1.0 and wilcoxon_test(z, z) == 1.0
    assert paired_t_test(z, z + 1) == 0.0
    # NaN pairs are dropped, not propagated
    a2, b2 = a.copy(), b.copy()
    a2[0] = np.nan
    assert paired_t_test(a2, b2) == pytest.approx(sps.ttest_rel(b[1:], a[1:]).pvalue)


def test_paired_bootstrap_ci_contains_the_difference_and_shrinks_with_n():
    rng = np.random.default_rng(5)
    a = rng.binomial(1, 0.10, 4000).astype(float)
    b = np.where(rng.random(4000) < 0.5, a, rng.binomial(1, 0.13, 4000))
    r = paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert r["diff"] == pytest.approx(b.mean() - a.mean())
    assert r["ci_low"] < r["diff"] < r["ci_high"]
    assert r["rel"] == pytest.approx(b.mean() / a.mean() - 1)
    assert r["rel_low"] < r["rel"] < r["rel_high"]
    small = paired_bootstrap(a[:400], b[:400], n_boot=2000, seed=0)
    assert (small["ci_high"] - small["ci_low"]) > 2 * (r["ci_high"] - r["ci_low"])  # ~ sqrt(10) wider
    # deterministic for a seed
    assert paired_bootstrap(a, b, n_boot=500, seed=7) == paired_bootstrap(a, b, n_boot=500, seed=7)
    zero = paired_bootstrap(np.zeros(10), np.ones(10), n_boot=200)
    assert zero["diff"] == 1.0 and np.isnan(zero["rel"])


def test_bootstrap_interval_has_roughly_nominal_coverage():
    rng = np.random.default_rng(11)
    hits = 0
    for i in range(120):
        a = rng.normal(0, 1, 200)
        b = a + rng.normal(0.1, 1, 200)
        r = paired_bootstrap(a, b, n_boot=400, seed=i)
        hits += r["ci_low"] <= 0.1 <= r["ci_high"]
    assert 0.85 <= hits / 120 <= 0.995


def test_minimum_detectable_effect_formula_and_power():
    assert minimum_detectable_effect(1.0, 100, 0.05, 0.8) == pytest.approx((1.959964 + 0.841621) / 10, rel=1e-5)
    assert np.isnan(minimum_detectable_effect(1.0, 1))
    # simulate: a true effect equal to the MDE is detected about 80% of the time by the t-test
    rng = np.random.default_rng(2)
    n, sd = 150, 1.0
    mde = minimum_detectable_effect(sd, n)
    detected = sum(sps.ttest_1samp(rng.normal(mde, sd, n), 0).pvalue < 0.05 for _ in range(400))
    assert 0.72 <= detected / 400 <= 0.88


def test_mde_of_a_planted_comparison_by_hand():
    a = np.array([1.0, 0.0, 0.0, 0.0] * 25)  # 100 users, baseline mean 0.25
    d = np.array([1.0, 0.0] * 50)  # paired differences: mean 0.5, sd (ddof 1) 0.5 * sqrt(100 / 99)
    c = compare(a, a + d, "hr@10", "B", "A", n_boot=50, n_perm=50, seed=0)
    # z(0.975) + z(0.8) = 1.959964 + 0.841621 (normal tables); sqrt(n) = 10
    mde = (1.959964 + 0.841621) * 0.5 * np.sqrt(100 / 99) / 10
    assert c.mde == pytest.approx(mde, rel=1e-5)
    assert c.mde_rel == pytest.approx(mde / 0.25, rel=1e-5)  # relative to the baseline's mean (the variant's is 0.75)
    # two comparisons: alpha / 2 per test, z(0.9875) = 2.241403
    two = compare(a, a + d, "hr@10", "B", "A", n_boot=50, n_perm=50, n_comparisons=2, seed=0)
    assert two.mde == pytest.approx((2.241403 + 0.841621) * 0.5 * np.sqrt(100 / 99) / 10, rel=1e-5)
    # the metric in other units (x 10): the MDE scales with it, the relative MDE does not
    scaled = compare(10 * a, 10 * (a + d), "hr@10", "B", "A", n_boot=50, n_perm=50, seed=0)
    assert scaled.mde == pytest.approx(10 * c.mde) and scaled.mde_rel == pytest.approx(c.mde_rel)


def test_compare_and_finalize_mark_significance_after_correction():
    rng = np.random.default_rng(1)
    a = rng.binomial(1, 0.1, 1500).astype(float)
    strong = np.clip(a + rng.binomial(1, 0.08, 1500), 0, 1)
    same = a.copy()
    rng.shuffle(same)
    cs = [compare(a, strong, "hr@10", "B", "A", n_boot=300, n_perm=500, seed=0),
          compare(a, same, "hr@10", "C", "A", n_boot=300, n_perm=500, seed=0)]
    finalize(cs, "holm", 0.05)
    assert cs[0].significant and cs[0].diff > 0 and cs[0].p_adjusted <= 2 * cs[0].p + 1e-12
    assert not cs[1].significant
    assert cs[0].mde > 0
    m = mean_ci(a, 500, 0.05, 0)
    assert m["ci_low"] < m["mean"] < m["ci_high"] and m["n"] == 1500
