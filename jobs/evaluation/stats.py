"""Paired statistics for offline A/B comparisons on per-user metric vectors.

Every test user got a list from every variant, so the comparison is *paired*: the unit is the
user and the quantity is the per-user difference ``d = metric_B - metric_A``. Users where
either value is missing (NaN, e.g. emotional fit for a user who cares about no aspect) are
dropped from that comparison only.

* :func:`paired_bootstrap` - percentile bootstrap CI of the mean difference and of the
  relative difference ``mean_B / mean_A - 1`` (users resampled with replacement).
* :func:`paired_t_test` - Student's paired t-test (``scipy.stats.ttest_rel``).
* :func:`wilcoxon_test` - Wilcoxon signed-rank test (zero differences dropped, as in
  ``scipy.stats.wilcoxon(zero_method="wilcox")``).
* :func:`randomization_test` - the paired (sign-flip) randomization test: under the null the
  sign of each user's difference is a coin flip. Assumption-light, so it is the default test
  that decides significance.
* :func:`adjust_pvalues` - Holm (step-down) or Bonferroni correction across comparisons.
* :func:`minimum_detectable_effect` - the smallest true mean difference the test would detect
  with the given power at this number of users: ``(z_{1-a/2} + z_power) * sd(d) / sqrt(n)``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

__all__ = [
    "Comparison", "adjust_pvalues", "compare", "finalize", "mean_ci", "minimum_detectable_effect", "paired_bootstrap",
    "paired_t_test", "randomization_test", "wilcoxon_test",
]

_CHUNK = 500  # resamples per vectorised block (bounds memory: CHUNK x n_users)


#: Resample blocks are cached (and shared by every metric of a run) up to this many entries.
_CACHE_LIMIT = 10_000_000


def _index_blocks(n: int, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    for s in range(0, n_boot, _CHUNK):
        yield rng.integers(0, n, size=(min(_CHUNK, n_boot - s), n), dtype=np.int64).astype(np.int32)


def _sign_blocks_gen(n: int, n_perm: int, seed: int):
    rng = np.random.default_rng(seed)
    for s in range(0, n_perm, _CHUNK):
        yield (rng.integers(0, 2, size=(min(_CHUNK, n_perm - s), n), dtype=np.int8) * 2 - 1).astype(np.float64)


@functools.lru_cache(maxsize=2)
def _cached(kind: str, n: int, count: int, seed: int) -> tuple[np.ndarray, ...]:
    blocks = tuple((_index_blocks if kind == "boot" else _sign_blocks_gen)(n, count, seed))
    for b in blocks:
        b.setflags(write=False)
    return blocks


def _resamples(n: int, n_boot: int, seed: int):
    """Bootstrap index blocks for ``n`` users; cached when small, so every metric of a run reuses them."""
    return _cached("boot", n, n_boot, seed) if n * n_boot <= _CACHE_LIMIT else _index_blocks(n, n_boot, seed)


def _sign_blocks(n: int, n_perm: int, seed: int):
    """Random +-1 sign blocks for the randomization test, cached like :func:`_resamples`."""
    return _cached("sign", n, n_perm, seed) if n * n_perm <= _CACHE_LIMIT else _sign_blocks_gen(n, n_perm, seed)


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired vectors must be 1-D and of equal length, got {a.shape} and {b.shape}")
    ok = ~(np.isnan(a) | np.isnan(b))
    return a[ok], b[ok]


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, alpha: float = 0.05,
                     seed: int = 0) -> dict[str, float]:
    """Percentile bootstrap CI of ``mean(b) - mean(a)`` and of ``mean(b) / mean(a) - 1``.

    Returns ``diff``, ``ci_low``, ``ci_high``, ``rel``, ``rel_low``, ``rel_high`` (relative
    values are NaN when ``mean(a) == 0``).
    """
    a, b = _paired(a, b)
    n = len(a)
    nan = float("nan")
    if n == 0:
        return {"diff": nan, "ci_low": nan, "ci_high": nan, "rel": nan, "rel_low": nan, "rel_high": nan}
    sum_a = np.concatenate([a[idx].sum(axis=1) for idx in _resamples(n, n_boot, seed)])
    sum_b = np.concatenate([b[idx].sum(axis=1) for idx in _resamples(n, n_boot, seed)])
    diffs = (sum_b - sum_a) / n
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    lo, hi = np.percentile(diffs, q)
    mean_a, mean_b = a.mean(), b.mean()
    out = {"diff": float(mean_b - mean_a), "ci_low": float(lo), "ci_high": float(hi)}
    if mean_a != 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(sum_a != 0, sum_b / sum_a - 1.0, np.nan)
        rel = rel[np.isfinite(rel)]
        r_lo, r_hi = np.percentile(rel, q) if len(rel) else (nan, nan)
        out.update(rel=float(mean_b / mean_a - 1.0), rel_low=float(r_lo), rel_high=float(r_hi))
    else:
        out.update(rel=nan, rel_low=nan, rel_high=nan)
    return out


def mean_ci(x: Sequence[float], n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> dict[str, float]:
    """Mean of ``x`` (NaN dropped) with a percentile bootstrap CI; ``n`` the values used."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    nan = float("nan")
    if len(x) == 0:
        return {"mean": nan, "ci_low": nan, "ci_high": nan, "n": 0}
    means = np.concatenate([x[idx].mean(axis=1) for idx in _resamples(len(x), n_boot, seed)])
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {"mean": float(x.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": len(x)}


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test (1.0 when every difference is zero)."""
    a, b = _paired(a, b)
    d = b - a
    if len(d) < 2:
        return float("nan")
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(sps.ttest_rel(b, a).pvalue)


def wilcoxon_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test (1.0 when every difference is zero)."""
    a, b = _paired(a, b)
    d = b - a
    if len(d) == 0:
        return float("nan")
    if not np.any(d != 0):
        return 1.0
    return float(sps.wilcoxon(d, zero_method="wilcox").pvalue)


def randomization_test(a: Sequence[float], b: Sequence[float], n_perm: int = 5000, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip randomization test.

    ``p = (1 + #{|mean(s * d)| >= |mean(d)|}) / (1 + n_perm)`` with random signs ``s``; the
    +1 counts the observed assignment, so ``p`` is never 0 (its floor is ``1 / (1 + n_perm)``).
    """
    a, b = _paired(a, b)
    d = b - a
    if len(d) == 0:
        return float("nan")
    observed = abs(d.mean())
    if observed == 0:
        return 1.0
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    hits = sum(int((np.abs(signs @ d) / len(d) >= observed - tol).sum()) for signs in _sign_blocks(len(d), n_perm, seed))
    return (1 + hits) / (1 + n_perm)


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> np.ndarray:
    """Family-wise adjusted p-values (NaN entries stay NaN and do not count).

    ``holm``: step-down Holm-Bonferroni (``p_(i) * (m - i + 1)``, made monotone, capped at 1);
    ``bonferroni``: ``p * m``; ``none``: unchanged.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = p.copy()
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if method == "none" or m == 0:
        return out
    if method == "bonferroni":
        out[ok] = np.minimum(p[ok] * m, 1.0)
        return out
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}; valid: holm, bonferroni, none")
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    adj = np.minimum(np.maximum.accumulate(vals[order] * (m - np.arange(m))), 1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def minimum_detectable_effect(sd_diff: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean paired difference detectable (two-sided ``alpha``, given ``power``)."""
    if n < 2 or not np.isfinite(sd_diff):
        return float("nan")
    return float((sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)) * sd_diff / np.sqrt(n))


@dataclass
class Comparison:
    """Variant ``b`` against the baseline ``a`` on one per-user metric."""

    metric: str
    variant: str
    baseline: str
    n_users: int
    mean_baseline: float
    mean_variant: float
    diff: float
    ci_low: float
    ci_high: float
    rel: float
    rel_low: float
    rel_high: float
    p_t: float
    p_wilcoxon: float
    p_randomization: float
    p: float  # the deciding test's p-value, before correction
    p_adjusted: float = float("nan")
    significant: bool = False
    mde: float = float("nan")  # absolute, at alpha / number of comparisons
    mde_rel: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def compare(a: Sequence[float], b: Sequence[float], metric: str, variant: str, baseline: str, *,
            n_boot: int = 2000, n_perm: int = 5000, alpha: float = 0.05, power: float = 0.8,
            test: str = "randomization", n_comparisons: int = 1, seed: int = 0) -> Comparison:
    """All statistics of one paired comparison (correction is applied later, over the family)."""
    pa, pb = _paired(a, b)
    boot = paired_bootstrap(pa, pb, n_boot=n_boot, alpha=alpha, seed=seed)
    p_t, p_w = paired_t_test(pa, pb), wilcoxon_test(pa, pb)
    p_r = randomization_test(pa, pb, n_perm=n_perm, seed=seed)
    p = {"randomization": p_r, "t": p_t, "wilcoxon": p_w}[test]
    mean_a = float(pa.mean()) if len(pa) else float("nan")
    sd = float(np.std(pb - pa, ddof=1)) if len(pa) > 1 else float("nan")
    mde = minimum_detectable_effect(sd, len(pa), alpha / max(1, n_comparisons), power)
    return Comparison(
        metric=metric, variant=variant, baseline=baseline, n_users=len(pa), mean_baseline=mean_a,
        mean_variant=float(pb.mean()) if len(pb) else float("nan"), diff=boot["diff"], ci_low=boot["ci_low"],
        ci_high=boot["ci_high"], rel=boot["rel"], rel_low=boot["rel_low"], rel_high=boot["rel_high"],
        p_t=p_t, p_wilcoxon=p_w, p_randomization=p_r, p=p, mde=mde,
        mde_rel=mde / mean_a if mean_a and np.isfinite(mean_a) and mean_a != 0 else float("nan"),
    )


def finalize(comparisons: list[Comparison], method: str, alpha: float) -> list[Comparison]:
    """Adjust the p-values of one family in place and set ``significant`` (``p_adjusted < alpha``)."""
    adj = adjust_pvalues([c.p for c in comparisons], method)
    for c, pa in zip(comparisons, adj):
        c.p_adjusted = float(pa)
        c.significant = bool(np.isfinite(pa) and pa < alpha)
    return comparisons
