"""Explanations of hybrid recommendations: one reason with its evidence, and the item's polarity.

Every reason is a fact of the training reviews that clears its own threshold
(:class:`~recommender.evidence.EvidenceConfig`, by default 3 supporting reviews or customers),
taken from the evidence stored with the model (:class:`~recommender.evidence.Evidence`):

``aspect``
    ``customers praise its durability (4 of its 12 reviews, e.g. "the case survived two years on
    the road")``: at least 3 of the item's own reviews praise the aspect (a clause about it that
    is itself positive) and they are most of its reviews with a clear opinion on it; the quote
    is an exact substring of one of them. Among the aspects with evidence, the one the user
    writes about most.
``sequential``
    ``3 of the 40 customers who bought "Fender Strap" went on to buy it``: distinct other
    customers who reviewed the user's item (newest first among their five newest) and then, at
    a later time, this one.
``also_bought``
    ``5 of the 40 customers who bought "Fender Strap" also bought it``: in any order.
``popular``
    ``one of the most reviewed items in the 90 days before your last review (14 reviews, #3 of
    the 240 items reviewed then)``: at least 3 reviews in that window and within its top 10% of
    items.
``review_count`` (the popularity fallback of the service)
    ``52 customers reviewed it (#3 of 900 items)``, "one of the shop's most reviewed items" only
    within the top 10%.
``generic``
    ``picked for you from your review history``: no reason with enough evidence.

The feature group that pushed the item up most (per-feature contributions summed by group:
``method="shap"`` uses LightGBM's exact TreeSHAP contributions; ``"fast"``, the serving default,
each feature's share of the ranker's total gain times its standardised value) picks which
reason is tried first (``emotion`` -> aspect, ``cf`` -> sequential then also_bought,
``popularity`` -> popular); the others follow in a fixed order, so a reason is given whenever
one has evidence. The polarity always follows: ``92% of its 25 reviews read positive; 4.6 stars
on average``, and, when the share of positive texts and the share of 4-5 star ratings differ
by ``star_text_gap`` or more, a note that its texts read less (or more) positive than its stars.

Each explanation is an :class:`Explanation`: its ``text`` and its evidence as fields, which the
service writes as structured columns (:data:`EXPLANATION_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from .evidence import Evidence, aspect_label

#: The explanation columns of a recommendations table, after the service's own columns.
EXPLANATION_COLUMNS = {
    "explanation": "string", "reason_type": "string", "reason_aspect": "string", "evidence_item_id": "string",
    "evidence_title": "string", "evidence_count": "Int32", "evidence_total": "Int32", "evidence_rank": "Int32",
    "evidence_quote": "string", "evidence_review_id": "string", "item_reviews": "Int32",
    "item_positive_share": "float32", "item_mean_stars": "float32",
}
#: Reason types tried first for the feature group that pushed an item up most.
GROUP_REASONS = {"emotion": ("aspect",), "cf": ("sequential", "also_bought"), "popularity": ("popular",)}
#: Order of the reason types after those of the leading groups.
REASON_ORDER = ("sequential", "also_bought", "aspect", "popular")


@dataclass(frozen=True)
class Explanation:
    """Why an item is listed: the sentence shown and the evidence behind it.

    Attributes
    ----------
    text
        The sentence: the reason, then the item's polarity.
    reason_type
        ``aspect``, ``sequential``, ``also_bought``, ``popular``, ``review_count`` or ``generic``.
    reason_aspect
        The aspect of an ``aspect`` reason.
    evidence_item_id, evidence_title
        The other item a reason names (the user's item in ``sequential`` / ``also_bought``)
        and its catalog title.
    evidence_count, evidence_total, evidence_rank
        The counts the sentence states: praising reviews of all its reviews (aspect);
        customers who went on to it / also bought it of the customers of the named item;
        reviews in the window, items reviewed in the window and its rank (popular); customers
        and items reviewed, rank (review_count).
    evidence_quote, evidence_review_id
        The quoted clause (exact substring of the review's text) and its review.
    item_reviews, item_positive_share, item_mean_stars
        The recommended item's training reviews, share of them whose text reads positive and
        mean stars (NaN where unknown).
    """

    text: str
    reason_type: str
    reason_aspect: str | None = None
    evidence_item_id: str | None = None
    evidence_title: str | None = None
    evidence_count: int | None = None
    evidence_total: int | None = None
    evidence_rank: int | None = None
    evidence_quote: str | None = None
    evidence_review_id: str | None = None
    item_reviews: int | None = None
    item_positive_share: float = float("nan")
    item_mean_stars: float = float("nan")

    def __str__(self) -> str:
        return self.text


def explanation_table(explanations) -> pd.DataFrame:
    """The :data:`EXPLANATION_COLUMNS` of a sequence of :class:`Explanation` (``None`` -> nulls)."""
    names = [f.name for f in fields(Explanation)]
    rows = [[None] * len(names) if e is None else [getattr(e, n) for n in names] for e in explanations]
    frame = pd.DataFrame(rows, columns=names).rename(columns={"text": "explanation"})
    return frame[list(EXPLANATION_COLUMNS)].astype(EXPLANATION_COLUMNS)


# --- the sentences ------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def polarity(ev: Evidence, item: int, star_text_gap: float) -> tuple[str, dict]:
    """The item's polarity sentence and the fields it states."""
    n, scored, rated = int(ev.n_reviews_[item]), int(ev.n_scored_[item]), int(ev.n_rated_[item])
    share = ev.n_positive_[item] / scored if scored else float("nan")
    stars = ev.star_sum_[item] / rated if rated else float("nan")
    parts = []
    if scored:
        parts.append(f"{share:.0%} of its {scored} {'' if scored == n else 'scored '}review{'s' if scored != 1 else ''} "
                     "read positive")
    if rated:
        parts.append(f"{stars:.1f} stars on average" + ("" if rated == scored else f" from {_plural(rated, 'rating')}"))
    if scored and rated:
        star_share = ev.n_star_positive_[item] / rated
        if abs(share - star_share) >= star_text_gap:
            parts.append(f"its texts read {'less' if share < star_share else 'more'} positive than its stars "
                         f"({star_share:.0%} of its ratings are 4-5 stars)")
    if not parts:
        parts.append(f"{_plural(n, 'review')}, none scored or rated" if n else "no reviews yet")
    return "; ".join(parts), {"item_reviews": n, "item_positive_share": float(share), "item_mean_stars": float(stars)}


def aspect_reason(ev: Evidence, item: int, aspect: str) -> dict:
    count, total = ev.aspect_support(item, aspect), int(ev.n_reviews_[item])
    quote, review_id = ev.quote(item, aspect)
    return {"text": f'customers praise its {aspect_label(aspect)} ({count} of its {total} reviews, e.g. "{quote}")',
            "reason_type": "aspect", "reason_aspect": aspect, "evidence_count": count, "evidence_total": total,
            "evidence_quote": quote, "evidence_review_id": review_id}


def pair_reason(ev: Evidence, kind: str, src: int, count: int) -> dict:
    total = int(ev.n_customers_[src])
    verb = "went on to buy it" if kind == "later" else "also bought it"
    return {"text": f"{count} of the {total} customers who bought {ev.label(src)} {verb}",
            "reason_type": "sequential" if kind == "later" else "also_bought", "evidence_item_id": str(ev.item_ids_[src]),
            "evidence_title": ev.titles_[src], "evidence_count": int(count), "evidence_total": total}


def popular_reason(count: int, rank: int, active: int, days: int, known: bool) -> dict:
    when = f"in the {days} days before your last review" if known else f"in the latest {days} days of reviews"
    return {"text": f"one of the most reviewed items {when} ({count} reviews, #{rank} of the {active} items reviewed then)",
            "reason_type": "popular", "evidence_count": int(count), "evidence_total": int(active), "evidence_rank": int(rank)}


GENERIC = {"text": "picked for you from your review history", "reason_type": "generic"}


def _finish(reason: dict, pol: tuple[str, dict]) -> Explanation:
    return Explanation(**{**reason, "text": f"{reason['text']}; {pol[0]}", **pol[1]})


# --- hybrid lists -------------------------------------------------------------------------
def _group_contributions(model, X: np.ndarray, method: str = "fast") -> tuple[list[str], np.ndarray]:
    if method == "shap":
        contrib = model.booster_.predict(X, num_iteration=model.best_iteration_, pred_contrib=True,
                                         num_threads=model.config.num_threads)[:, :-1]
    else:
        gain = np.array([model.importances_[n]["gain"] for n in model.feature_names_], np.float64)
        share = gain / gain.sum() if gain.sum() > 0 else gain
        z = np.nan_to_num((X - model.feature_mean_) / model.feature_std_)
        contrib = z * share
    groups = sorted(set(model.feature_groups_))
    G = np.zeros((len(X), len(groups)))
    for j, g in enumerate(model.feature_groups_):
        G[:, groups.index(g)] += contrib[:, j]
    return groups, G


def _popularity(model, item: np.ndarray, t_ref: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row: reviews of the item in the window, its rank and the items reviewed in the window.

    Known users: the ``popular_days`` days before the day of their last review; new users:
    the latest ``popular_days`` days of the training reviews (up to the newest one). The item's
    count is two binary searches per row. Its rank (1 + the items reviewed more often in the
    window) and the number of items reviewed then come from the cumulative histogram of every
    item's count on that end day (:meth:`FeatureState.window_at_most`, cached per day), so
    serving every user of a big shop counts each day once."""
    days = model.config.evidence.popular_days
    state = model.state_
    end = np.where(known, np.floor(t_ref) - 1, state.max_day_[0]).astype(np.int64)
    count = state.window_counts(item, end, days).astype(np.int64)
    rank, active = np.zeros(len(item), np.int64), np.zeros(len(item), np.int64)
    uniq, inv = np.unique(end, return_inverse=True)
    for k, d in enumerate(uniq.tolist()):
        at_most = state.window_at_most(d, days)
        rows = np.flatnonzero(inv == k)
        n = int(at_most[-1])
        rank[rows] = 1 + n - at_most[np.minimum(count[rows], len(at_most) - 1)]
        active[rows] = n - int(at_most[0])
    return count, rank, active


def explain_rows(model, X: np.ndarray, item: np.ndarray, ctx: dict, pos: np.ndarray, known: np.ndarray | None = None,
                 method: str = "fast") -> list[Explanation]:
    """One :class:`Explanation` per row of ``X`` (features of the listed (user, item) pairs).

    ``item``: the listed items; ``ctx``/``pos``: the batch's user context and each row's user;
    ``known``: whether each row's user was seen at training (default: all).
    """
    if not len(X):
        return []
    ev: Evidence = model.evidence_
    cfg = model.config.evidence
    state = model.state_
    item = np.asarray(item, np.int64)
    known = np.ones(len(X), bool) if known is None else np.asarray(known, bool)
    groups, G = _group_contributions(model, X, method)
    recent = ctx["recent"][pos]
    counts = {kind: np.column_stack([ev.pair_counts(kind, recent[:, j], item) for j in range(recent.shape[1])])
              for kind in ("later", "also")}
    pop_count, pop_rank, pop_active = _popularity(model, item, ctx["t_ref"][pos], known)
    share = None
    if state.emotion and "emotion" in ctx and len(state.aspects):
        from .features import USER_EMOTION_COLUMNS

        n_uc = len(USER_EMOTION_COLUMNS)
        block = np.nan_to_num(ctx["emotion"][pos][:, n_uc:n_uc + len(state.aspects)])
        share = {a: block[:, k] for k, a in enumerate(state.aspects)}
    out = []
    for r in range(len(X)):
        it = int(item[r])
        order = [t for g in np.array(groups)[np.argsort(-G[r], kind="stable")] for t in GROUP_REASONS.get(g, ())]
        order += [t for t in REASON_ORDER if t not in order]
        reason = None
        for t in order:
            if t == "aspect":
                names = [a for a in ev.aspect_names_ if ev.aspect_support(it, a) >= cfg.min_support]
                if names:
                    best = max(names, key=lambda a: (share[a][r] if share and a in share else 0.0, ev.aspect_support(it, a)))
                    reason = aspect_reason(ev, it, best)
            elif t in ("sequential", "also_bought"):
                kind = "later" if t == "sequential" else "also"
                hit = np.flatnonzero(counts[kind][r] >= cfg.min_support)
                if len(hit):
                    reason = pair_reason(ev, kind, int(recent[r, hit[0]]), int(counts[kind][r, hit[0]]))
            elif t == "popular" and pop_count[r] >= cfg.min_support and pop_rank[r] <= cfg.popular_top_share * pop_active[r]:
                reason = popular_reason(pop_count[r], pop_rank[r], pop_active[r], cfg.popular_days, bool(known[r]))
            if reason is not None:
                break
        out.append(_finish(reason or GENERIC, polarity(ev, it, cfg.star_text_gap)))
    return out


def text_explanations(model, weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Explanations of a list made from texts alone (aspect ``weights`` of the texts over
    ``model.state_.aspects``, listed ``ids``): the aspects the texts mention are true of the
    texts; an aspect reason needs the item's own evidence, as in :func:`explain_rows`."""
    ev: Evidence = model.evidence_
    cfg = model.config.evidence
    w = np.nan_to_num(np.asarray(weights, np.float64).ravel())
    aspects = model.state_.aspects
    mentioned = [aspects[k] for k in np.argsort(-w, kind="stable") if w[k] > 0]
    wrote = f"you wrote about {aspect_label(mentioned[0])}; " if mentioned else ""
    out = np.full(len(ids), None, dtype=object)
    for j, i in enumerate(ids):
        if i < 0:
            continue
        reason = None
        for a in mentioned:
            if ev.aspect_support(int(i), a) >= cfg.min_support:
                reason = aspect_reason(ev, int(i), a)
                reason["text"] = (f"you wrote about {aspect_label(a)}; " if a != mentioned[0] else wrote) + reason["text"]
                break
        if reason is None:
            reason = ({"text": f"picked for you from what you wrote about {aspect_label(mentioned[0])}", "reason_type": "generic"}
                      if mentioned else {"text": "picked for you from its reviews", "reason_type": "generic"})
        out[j] = _finish(reason, polarity(ev, int(i), cfg.star_text_gap))
    return out


def review_count_explanations(customers: np.ndarray, ids: np.ndarray, top_share: float = 0.1) -> list[Explanation]:
    """Explanations of popularity-fallback items: how many customers reviewed each (``customers``
    per item) and its rank among the reviewed items; "one of the shop's most reviewed items"
    only within the top ``top_share``."""
    customers = np.asarray(customers)
    active = int((customers > 0).sum())
    out = []
    for i in ids:
        c = int(customers[i])
        rank = int(1 + (customers > customers[i]).sum())
        lead = "one of the shop's most reviewed items: " if c > 0 and rank <= top_share * active else ""
        out.append(Explanation(text=f"{lead}{_plural(c, 'customer')} reviewed it (#{rank} of {active} items)",
                               reason_type="review_count", evidence_count=c, evidence_total=active, evidence_rank=rank))
    return out
