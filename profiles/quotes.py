"""Example quotes per segment, chosen by the segment's defining signal.

A quote under ``frustrated_at_risk`` must read as frustrated: quotes are picked by what defines
the segment, not as "typical" reviews. The signal is read from the segment's rules, in order;
the first rule on a field that text can show decides (:func:`quote_signal`):

==========================================  ===============================================
rule                                        quotes
==========================================  ===============================================
valence (``recent_valence``, ...) ``<``     the members' most negative clauses
valence ``>``; ``share_negative`` ``<``     the most positive clauses
``share_negative`` / ``recent_p_negative``  the most negative clauses
``>``
``aspect_share_<a>`` ``>``                  the strongest clauses about aspect ``a``
``aspect_sentiment_<a>`` ``<`` / ``>``      the most negative / positive clauses about ``a``
``rating_text_gap`` ``<``                   reviews whose stars are furthest below their
                                            text (shown with the stars)
``rating_text_gap`` ``>``                   stars furthest above the text
``recent_ekman_<e>`` ``>``                  the reviews most charged with emotion ``e``
no such rule (``unassigned``, activity)     typical clauses: valence nearest the segment's
                                            mean recent valence
==========================================  ===============================================

Clauses are scored on their own (:func:`sentiment.aspects.lexicon_clause_valence`); a quote for
a negative signal has a negative clause valence and vice versa, or it is not shown. Each quote
carries its review's stars and the clause valence, PII-scrubbed, at most 160 characters.
Reviews of the last 365 days before ``as_of`` are preferred; older ones fill in. Each quote
comes from a different customer and repeats no other quote's text (in any segment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emorec.sentiment.aspects import AspectExtractor, lexicon_clause_valence, split_clauses
from emorec.sentiment.base import review_text
from emorec.sentiment.text import scrub_pii

from .care import _truncate, _worded
from .metric_directions import EMOTION_DIRECTIONS
from .segments import UNASSIGNED, Segment, SegmentConfig

__all__ = ["Quote", "QuoteSignal", "quote_signal", "segment_quotes"]

_VALENCE_FIELDS = ("recent_valence", "mean_valence", "top_aspect_sentiment", "recent_p_positive", "mean_p_positive")
_NEGATIVE_FIELDS = ("share_negative", "recent_p_negative", "mean_p_negative")
MIN_VALENCE = 0.05
RECENT_DAYS = 365
MAX_QUOTE = 160


@dataclass(frozen=True)
class QuoteSignal:
    """How a segment's quotes are chosen (see the module docstring)."""

    kind: str  # "valence", "aspect", "gap", "emotion" or "typical"
    direction: str | None = None  # "negative" / "positive"
    target: str | None = None  # the aspect or emotion
    rule: str = ""  # the rule it comes from, in words

    def describe(self) -> str:
        """How the quotes were picked, in words for the report."""
        what = {
            "valence": f"their most {self.direction} statements",
            "aspect": f"their strongest statements about {str(self.target).replace('_', ' ')}"
                      if self.direction is None else
                      f"their most {self.direction} statements about {str(self.target).replace('_', ' ')}",
            "gap": "reviews whose stars are furthest " + ("below" if self.direction == "positive" else "above")
                   + " what the text says",
            "emotion": f"the reviews most charged with {self.target}",
            "typical": "typical statements (valence nearest the segment's mean)",
        }[self.kind]
        return f"{what} (defining rule: {self.rule})" if self.rule else what


def _is_upper(op: str) -> bool | None:
    """True for ``>``/``>=``, False for ``<``/``<=``, None for other operators."""
    return True if op in (">", ">=") else False if op in ("<", "<=") else None


def quote_signal(segment: Segment | None) -> QuoteSignal:
    """The defining signal of a segment (``None``: the unassigned users)."""
    for rule in segment.rules if segment is not None else ():
        up, f, words = _is_upper(rule.op), rule.field, rule.describe()
        if up is None:
            continue
        if f in _VALENCE_FIELDS:
            return QuoteSignal("valence", "positive" if up else "negative", rule=words)
        if f in _NEGATIVE_FIELDS:
            return QuoteSignal("valence", "negative" if up else "positive", rule=words)
        if f.startswith("aspect_share_") and up:
            return QuoteSignal("aspect", None, f.removeprefix("aspect_share_"), words)
        if f.startswith("aspect_sentiment_"):
            return QuoteSignal("aspect", "positive" if up else "negative", f.removeprefix("aspect_sentiment_"), words)
        if f == "rating_text_gap":  # gap < 0: stars below the text (the text is the positive side)
            return QuoteSignal("gap", "negative" if up else "positive", rule=words)
        if f.startswith(("recent_ekman_", "mean_ekman_")) and up:
            emotion = f.split("_ekman_", 1)[1]
            if EMOTION_DIRECTIONS.get(emotion, "neutral") != "neutral":
                return QuoteSignal("emotion", "negative" if EMOTION_DIRECTIONS[emotion] == "lower" else "positive",
                                   emotion, words)
    return QuoteSignal("typical")


@dataclass(frozen=True)
class Quote:
    """One example: the clause, its own valence, the review's stars."""

    text: str
    valence: float
    rating: float
    user_id: str
    review_id: str


def _order(part: pd.DataFrame, signal: QuoteSignal, mean_valence: float) -> pd.DataFrame:
    """The member reviews in the order the signal prefers them (best candidates first)."""
    val = part["valence"].to_numpy(dtype=np.float64, na_value=np.nan)
    if signal.kind == "valence":
        key = val if signal.direction == "negative" else -val
    elif signal.kind == "aspect":
        col = f"asp_{signal.target}_sentiment"
        if col not in part.columns:
            return part.iloc[:0]
        s = part[col].to_numpy(dtype=np.float64, na_value=np.nan)
        key = -np.abs(s) if signal.direction is None else (s if signal.direction == "negative" else -s)
    elif signal.kind == "gap":
        stars = (part["rating"].to_numpy(dtype=np.float64, na_value=np.nan) - 3.0) / 2.0 if "rating" in part else np.nan
        gap = stars - val
        key = gap if signal.direction == "positive" else -gap
    elif signal.kind == "emotion":
        col = f"ekman_{signal.target}"
        if col not in part.columns:
            return part.iloc[:0]
        key = -part[col].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        key = np.abs(val - mean_valence)
    return part.assign(_key=key).loc[np.isfinite(key)].sort_values(["_key", "timestamp"], ascending=[True, False],
                                                                        kind="stable")


def _clause(text: str, signal: QuoteSignal, direction: str, extractor: AspectExtractor) -> tuple[str, float] | None:
    """The review's clause that shows the signal, and its valence; None when none does."""
    spans: list[tuple[int, int]] = []
    if signal.kind == "aspect":
        spans = [(s, e) for s, e, a in extractor.mentions([text])[0] if a == signal.target]
    else:
        spans = split_clauses(text)
    spans = [spans[i] for i in _worded([text[s:e] for s, e in spans])]
    spans = [(s, e) for s, e in spans if e - s >= 8]
    if not spans:
        return None
    vals = lexicon_clause_valence([text], [spans])[0]
    k = int(np.argmin(vals)) if direction == "negative" else int(np.argmax(vals))
    v = float(vals[k])
    if (direction == "negative" and v > -MIN_VALENCE) or (direction == "positive" and v < MIN_VALENCE):
        return None
    return _truncate(text[spans[k][0]:spans[k][1]], MAX_QUOTE), v


def segment_quotes(frame: pd.DataFrame, joined: pd.DataFrame | None, config: SegmentConfig, names: Sequence[str],
                   as_of: pd.Timestamp | None = None, per_segment: int = 2, candidates: int = 60
                   ) -> dict[str, tuple[QuoteSignal, list[Quote]]]:
    """Quotes per segment (see the module docstring).

    Parameters
    ----------
    frame
        ``user_id``, ``segment`` and (for typical quotes) ``recent_valence``.
    joined
        Reviews joined with their scores (``user_id``, ``review_id``, ``timestamp``, ``title``,
        ``text``, ``rating``, ``valence``, ``asp_*``, ``ekman_*``).
    config, names
        The segments and the names to quote (in order).
    as_of
        Reviews of the ``RECENT_DAYS`` before it are preferred.
    per_segment, candidates
        Quotes per segment (each from a different customer) and how many candidate reviews
        per segment are read.
    """
    need = {"user_id", "title", "text", "valence", "timestamp"}
    if joined is None or joined.empty or not need <= set(joined.columns):
        return {}
    seg_of = frame.set_index(frame["user_id"].astype("string"))["segment"]
    seg_of = seg_of[~seg_of.index.duplicated()]
    df = joined.assign(segment=joined["user_id"].astype("string").map(seg_of))
    df = df.loc[df["segment"].notna()]
    ts = pd.to_datetime(df["timestamp"], utc=True)
    ref = as_of if as_of is not None else ts.max()
    df = df.assign(_recent=(ts >= ref - pd.Timedelta(days=RECENT_DAYS)).to_numpy() if pd.notna(ref) else True)
    by_name = {s.name: s for s in config.segments}
    extractor = AspectExtractor()
    seen: set[str] = set()  # quote texts already used (in any segment)
    out: dict[str, tuple[QuoteSignal, list[Quote]]] = {}
    for name in names:
        signal = quote_signal(by_name.get(name)) if name != UNASSIGNED else QuoteSignal("typical")
        if signal.kind == "aspect" and signal.target not in extractor.aspects:
            signal = QuoteSignal("typical")
        members = frame.loc[frame["segment"] == name]
        mean_v = float(members["recent_valence"].mean()) if "recent_valence" in members and len(members) else 0.0
        mean_v = mean_v if np.isfinite(mean_v) else 0.0
        direction = signal.direction or ("negative" if mean_v < 0 else "positive")
        picked: list[Quote] = []
        users: set[str] = set()
        part = df.loc[df["segment"] == name]
        for pool in (part.loc[part["_recent"]], part.loc[~part["_recent"]]):
            for _, r in _order(pool, signal, mean_v).head(candidates).iterrows():
                uid = str(r["user_id"])
                if uid in users:
                    continue
                text = scrub_pii(review_text(pd.Series([r["title"]]), pd.Series([r["text"]])).iloc[0])
                found = _clause(text, signal, direction if signal.kind != "aspect" or signal.direction else
                                ("negative" if float(r.get(f"asp_{signal.target}_sentiment", 0) or 0) < 0 else "positive"),
                                extractor)
                if found is None or found[0].lower() in seen:
                    continue
                seen.add(found[0].lower())
                picked.append(Quote(found[0], found[1], float(r["rating"]) if "rating" in r and pd.notna(r["rating"])
                                    else float("nan"), uid, str(r.get("review_id", ""))))
                users.add(uid)
                if len(picked) >= per_segment:
                    break
            if len(picked) >= per_segment:
                break
        out[name] = (signal, picked)
    return out
