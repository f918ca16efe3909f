"""Short explanations of hybrid recommendations, built from the features that drove them.

For each listed item per-feature contributions are summed by feature group (the group of each
feature spec, ``model.feature_groups_``): ``method="shap"`` uses the ranker's exact TreeSHAP
contributions (LightGBM ``pred_contrib``, about 0.1 ms per item); ``method="fast"`` (the
serving default) approximates them by each feature's share of the ranker's total gain times
its standardised value (training mean and spread). The group that pushed the item up most
picks the sentence, and the item's share of positive
reviews (or its mean stars without text scores) follows it, e.g.

    "people who, like you, care about durability praise how sturdy it is; 92% positive"
"""

from __future__ import annotations

import numpy as np

#: How an aspect is praised in an explanation.
ASPECT_PRAISE = {
    "durability": "how sturdy it is", "quality": "its build quality", "value": "its value for money",
    "delivery": "how fast it arrives", "ease_of_use": "how easy it is to use", "design": "its design",
    "size_fit": "its size and fit", "customer_service": "the seller's service", "sound": "its sound",
}


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


def explain_rows(model, X: np.ndarray, item: np.ndarray, ctx: dict, pos: np.ndarray, method: str = "fast") -> list[str]:
    """One sentence per row of ``X`` (features of the listed (user, item) pairs)."""
    if not len(X):
        return []
    names = model.feature_names_
    col = {n: j for j, n in enumerate(names)}
    groups, G = _group_contributions(model, X, method)
    top = np.array(groups)[np.argmax(G, axis=1)]
    state = model.state_
    out = []
    for r in range(len(X)):
        x = X[r]
        g = top[r]
        reason = None
        if g == "emotion" and state.emotion and state.aspects:
            reason = _aspect_reason(state, item[r], ctx["emotion"][pos[r]])
            if reason is None and np.isfinite(x[col["match_enjoyed_cosine"]]) and x[col["match_enjoyed_cosine"]] > 0:
                reason = "its reviews sound like the ones of products you enjoyed"
        if reason is None and g in ("cf", "emotion"):
            last = ctx["last_item"][pos[r]]
            if last < 0:
                reason = "it matches your history"
            elif "gen_markov_rank" in col and x[col["gen_markov_rank"]] <= 10 and x[col["gen_markov_score"]] > 0:
                reason = "customers often choose it next after what you reviewed last"
            else:
                reason = "customers who reviewed what you reviewed also chose it"
        if reason is None and g == "popularity":
            n90 = x[col["pop_90d"]]
            reason = f"popular right now: {int(n90)} reviews in the 90 days up to your last visit" if n90 > 0 else "a steady favourite"
        if reason is None:
            n = int(state.item_count_[item[r]])
            reason = f"well reviewed by {n} customers"
        out.append(f"{reason}; {_polarity(x, col, state, item[r])}")
    return out


def _aspect_reason(state, item: int, user_emotion: np.ndarray) -> str | None:
    """The aspect the user cares about most that this item is praised for (if any)."""
    from .features import ITEM_EMOTION_COLUMNS, USER_EMOTION_COLUMNS

    n_a = len(state.aspects)
    share = user_emotion[len(USER_EMOTION_COLUMNS):len(USER_EMOTION_COLUMNS) + n_a]
    strength = state.item_emotion_[item, len(ITEM_EMOTION_COLUMNS):len(ITEM_EMOTION_COLUMNS) + n_a]
    with np.errstate(invalid="ignore"):
        value = np.where((strength > 0.05) & (share > 0), share * strength, 0.0)
    value = np.nan_to_num(value)
    if not value.any():
        return None
    best = state.aspects[int(np.argmax(value))]
    praise = ASPECT_PRAISE.get(best, f"its {best.replace('_', ' ')}")
    return f"people who, like you, care about {best.replace('_', ' ')} praise {praise}"


def _polarity(x: np.ndarray, col: dict, state, item: int) -> str:
    if "item_share_positive" in col and np.isfinite(x[col["item_share_positive"]]):
        return f"{x[col['item_share_positive']]:.0%} positive"
    r = state.item_rating_[item]
    return f"{r:.1f} stars on average" if np.isfinite(r) else "no ratings yet"


def text_explanations(state, weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Explanations of a list made from texts alone (aspect ``weights`` of the texts, listed ``ids``)."""
    w = np.asarray(weights, np.float64).ravel()
    top_aspect = state.aspects[int(np.argmax(w))] if w.sum() > 0 else None
    share_pos = state.item_emotion_[:, 0]
    return np.array([None if i < 0 else
                     (f"you mentioned {top_aspect.replace('_', ' ')}; customers praise "
                      f"{ASPECT_PRAISE.get(top_aspect, top_aspect.replace('_', ' '))}; " if top_aspect else
                      "well liked by customers; ")
                     + (f"{share_pos[i]:.0%} positive" if np.isfinite(share_pos[i]) else "no reviews yet")
                     for i in ids], dtype=object)
