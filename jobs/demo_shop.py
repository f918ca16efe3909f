"""A deterministic generator of a realistic small web shop: the project's built-in demo data.

``emorec run`` with no arguments runs the whole pipeline on this shop, the tests use it, and
the benchmarks scale it up to a million reviews. Everything is drawn from a seeded
:class:`numpy.random.Generator` (one independent child stream per stage), so the same
:class:`DemoConfig` always gives byte-identical tables.

The shop
--------
* Five categories (kitchen, electronics, outdoor, apparel, home). Item titles are composed
  from category-specific word lists ("Stainless Steel Kettle 1.7L"), prices are log-normal
  per category, popularity is Zipf-like (a long tail of rarely bought items).
* Every item has a latent strength in [-1, 1] on each of the eight :data:`ASPECTS`. Most
  strengths are near 0, about one in six is clearly strong or weak; ``size_fit`` exists only
  for apparel (0 elsewhere) and ``value`` is lower for items that are expensive within their
  category.
* Users have a heavy-tailed number of reviews (at least ``min_reviews_per_user``), a
  favourite category, a harshness (a rating offset) and, for ``aspect_carer_share`` of them,
  one aspect they care about. Each user's reviews fall inside a personal active span of the
  window and are in time order.
* Ratings follow the user's experience of the item (its aspect strengths, weighted towards
  the cared aspect, minus harshness, plus noise) and are mapped to stars by fixed quantiles,
  so the distribution looks like a real shop (about 60 % five-star, 10 % one or two stars).
* Review texts are natural English: an opening, 1-3 aspect sentences (10+ phrasings per
  aspect and polarity, with negation such as "not sturdy at all" or "can't complain about the
  price", contrast such as "... but the handle came loose", intensifiers and exclamation),
  sometimes a context sentence and a closing; also short reviews ("Love it!"), title-only
  reviews (empty body), emoji (``emoji_rate``) and typos (``typo_rate``). The polarity of an
  aspect sentence follows the item's latent strength on that aspect (and the review's tone).
* In ``rating_text_disagreement`` of the reviews the stars disagree with the text: praising
  text with three stars (more often from harsh users), complaining text with four or five
  stars, and sarcasm ("Wow, amazing quality, the kettle lasted a whole week!") with one or
  two stars.

The planted signal
------------------
Only emotion- and aspect-aware methods can find it; the ground truth is in the
:class:`DemoShop` frames.

1. **Aspect carers talk about their aspect.** A carer's cared aspect is written about in
   most of their reviews (about 80 %, versus 10-25 % for other users; ``size_fit`` carers
   only when they buy clothes), usually with strong emotion (intensifiers, exclamation marks,
   emotional tails such as "..., love it").
2. **Aspect carers buy by aspect.** Every purchase is drawn with probability proportional to
   popularity x category preference (the favourite category weighs ``favourite_boost``
   times more). After a carer's first ``warmup_reviews`` reviews, the weight is multiplied by
   ``exp(beta * strength of the item on the cared aspect)``. Because an item's aspect
   strength is visible only through what other reviewers write about that aspect of that
   item, text features predict a carer's next item beyond co-occurrence.
   ``review_truth.aspect_choice`` marks the purchases drawn this way.
3. **A complaint burst.** One moderately popular item gets, in one two-week window near the
   end of the period, a burst of one- and two-star reviews that complain strongly about one
   aspect (``delivery`` or ``durability`` by default: "it arrived broken", "it stopped
   working after 2 days" 😡): every review of that item in the window, plus reviews by extra
   users, so the burst is several times the item's normal rate. It is recorded in
   ``incidents`` and flagged in ``review_truth.incident``.

4. **Defective items: purchases a customer regrets.** ``defect_share`` of the items (never the
   burst's item) carry a hidden defect on their *strongest* aspect, the one they are bought
   for ("the sturdy tent whose zip breaks"): the listing, the choice model and the latent
   strengths do not show it, so carers of that aspect keep buying the item. Of an
   ``aspect`` defect, a buyer who cares about the aspect regrets the purchase with probability
   ``defect_regret_carer`` (0.85), any other buyer with ``defect_regret_other`` (0.1); a
   ``general`` defect (``defect_general_share`` of the defective items) disappoints every buyer
   with probability ``defect_regret_general`` (0.7). A regretted purchase gets one or two
   stars and a text that complains about the defect aspect. Only reviews (and their aspects)
   reveal a defect, and for an ``aspect`` defect only to buyers sensitive to the aspect, so a
   satisfaction model that reads aspects can see the regret coming where star averages, diluted
   by the buyers who do not care, cannot. ``review_truth.planted_regret`` marks these reviews,
   ``defects`` lists the items and ``sensitivities`` every user's regret probability per aspect.

5. **What comes next** (``next_item_rate``, off in the default shop; the scale benchmarks turn it
   on with :meth:`DemoConfig.at_scale`). Every item has ``follow_ups_per_item`` follow-up items
   in its category (accessories, refills, the next thing one buys: "the tent, then the sleeping
   bag"), drawn with probability proportional to the square root of popularity. A share
   ``next_item_rate`` of the purchases after a user's first is one of the previous purchase's
   follow-ups instead of a draw by popularity and taste: the order of a user's reviews predicts
   the next one, which only a sequence-aware model sees. ``follow_ups`` lists them and
   ``review_truth.next_item`` marks the purchases drawn this way.

The shop scales: the catalog (``n_items``; items per category follow the category shares),
the users and their heavy-tailed activity grow independently, popularity is a long Zipf tail at
any size, and the texts come from a fixed bank of phrasings (``jobs/demo_shop_vocabulary.toml``),
so a shop of two million reviews takes a few minutes (``benchmarks/scale_hybrid.py`` measures
quality and cost on the same shop at any size).

Ground truth frames: ``users`` (cared aspect, harshness, favourite category),
``item_aspects`` (every item x aspect strength), ``review_aspects`` (one row per aspect
sentence written, with its polarity), ``incidents``, ``defects`` (item, aspect, kind, purchases,
regrets), ``sensitivities`` (user x aspect: cares, regret probability on a defect of it),
``follow_ups`` (item, rank, follow-up item; only with ``next_item_rate > 0``) and
``review_truth`` (per review: text tone, disagreement, sarcasm, incident, aspect-driven choice,
purchase of a defective item, planted regret, planted next item).

Examples
--------
>>> shop = generate_demo_shop(n_users=50, n_items=40)  # doctest: +SKIP
>>> shop.write("demo")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, field_validator, model_validator

from emorec.common.config import Seed, StrictConfig, package_toml
from emorec.common.errors import ConfigError, InputError
from emorec.common.time import SECONDS_PER_DAY
from emorec.jobs.contract import ITEM_COLUMNS, REVIEW_COLUMNS, conform

__all__ = [
    "ASPECTS",
    "CATEGORIES",
    "DemoConfig",
    "DemoShop",
    "generate_demo_shop",
]

logger = logging.getLogger(__name__)

ASPECTS: tuple[str, ...] = (
    "quality",
    "value",
    "delivery",
    "durability",
    "ease_of_use",
    "design",
    "size_fit",
    "customer_service",
)
CATEGORIES: tuple[str, ...] = ("kitchen", "electronics", "outdoor", "apparel", "home")

_A = {a: k for k, a in enumerate(ASPECTS)}
_C = {c: k for k, c in enumerate(CATEGORIES)}
_N_ASPECTS = len(ASPECTS)
_N_CATS = len(CATEGORIES)

SOURCE = "demo"
_VOCABULARY_FILE = "demo_shop_vocabulary.toml"


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------

#: A share or a probability: a float in [0, 1].
Share = Annotated[float, Field(ge=0, le=1)]


class DemoConfig(StrictConfig):
    """Size, randomness and planted-signal parameters of the demo shop.

    Attributes
    ----------
    n_users, n_items
        Number of users and items (at least 1 user and 10 items).
    mean_reviews_per_user
        Mean reviews per user (heavy-tailed, at least ``min_reviews_per_user`` each; capped at
        half the number of items because nobody reviews the same item twice). The incident
        adds a few reviews on top.
    min_reviews_per_user
        Minimum number of reviews of every user (default 3).
    seed
        Seed of the random generator; the same config gives byte-identical tables.
    start, days
        The reviews fall in ``[start, start + days)`` (UTC).
    typo_rate, emoji_rate
        Share of reviews with one or two typos (adjacent-letter swaps or drops) / an emoji.
    rating_text_disagreement
        Share of reviews whose star rating disagrees with the text's sentiment.
    aspect_carer_share
        Share of users who care about one aspect.
    beta
        Strength of the planted aspect-driven item choice (see the module docstring).
    warmup_reviews
        A carer's first reviews that are chosen without the aspect preference.
    favourite_boost
        Weight of the favourite category relative to any other category.
    zipf_exponent
        Exponent of the Zipf-like item popularity.
    short_review_rate, title_only_rate
        Share of short ("Love it!") and of title-only (empty body) reviews.
    incident
        Whether to plant the complaint burst.
    incident_aspect
        Aspect of the burst; ``None`` draws ``delivery`` or ``durability``.
    incident_min_reviews
        Minimum number of burst reviews; otherwise three times the item's normal rate in
        the window.
    incident_days
        Length of the burst window in days.
    defect_share
        Share of the items with a hidden defect on their strongest aspect (0 disables it).
    defect_general_share
        Share of the defective items whose defect disappoints every buyer (the others
        disappoint the buyers who care about the aspect).
    defect_regret_carer, defect_regret_other, defect_regret_general
        Probability that a purchase of a defective item is regretted: by a buyer who cares about
        the defect aspect / by any other buyer (``aspect`` defects) / by any buyer (``general``).
    next_item_rate
        Share of the purchases after a user's first that are a follow-up of the previous
        purchase (the planted "next item" structure; 0 disables it).
    follow_ups_per_item
        Follow-up items of every item (same category).
    """

    model_config = ConfigDict(frozen=True)
    section: ClassVar[str] = "demo config"

    n_users: int = Field(1000, ge=1)
    n_items: int = Field(300, ge=10)
    mean_reviews_per_user: float = Field(8.0, gt=0)
    min_reviews_per_user: int = Field(3, ge=1)
    seed: Seed = 42
    start: str = "2022-01-01"
    days: int = Field(730, ge=1)
    typo_rate: Share = 0.03
    emoji_rate: Share = 0.15
    rating_text_disagreement: float = Field(0.12, ge=0, le=0.5)
    aspect_carer_share: Share = 0.6
    beta: float = Field(2.5, ge=0, le=10)
    warmup_reviews: int = Field(2, ge=0)
    favourite_boost: float = Field(4.0, ge=1)
    zipf_exponent: float = Field(1.0, ge=0, le=3)
    short_review_rate: Share = 0.12
    title_only_rate: Share = 0.03
    incident: bool = True
    incident_aspect: str | None = None
    incident_min_reviews: int = Field(15, ge=1)
    incident_days: int = Field(14, ge=1)
    defect_share: float = Field(0.05, ge=0, le=0.5)
    defect_general_share: Share = 0.3
    defect_regret_carer: Share = 0.85
    defect_regret_other: Share = 0.1
    defect_regret_general: Share = 0.7
    next_item_rate: Share = 0.0
    follow_ups_per_item: int = Field(3, ge=1, le=50)

    @field_validator("start")
    @classmethod
    def _check_start(cls, v: str) -> str:
        try:
            pd.Timestamp(v)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"start is not a date: {v!r}") from exc
        return v

    @field_validator("incident_aspect")
    @classmethod
    def _check_aspect(cls, v: str | None) -> str | None:
        if v is not None and v not in ASPECTS:
            raise ConfigError(f"incident_aspect must be one of {ASPECTS}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _check_counts(self) -> DemoConfig:
        if self.mean_reviews_per_user < self.min_reviews_per_user:
            raise ConfigError("mean_reviews_per_user must be >= min_reviews_per_user")
        if self.min_reviews_per_user > self.n_items // 2:
            raise ConfigError("min_reviews_per_user must be <= n_items // 2")
        if self.short_review_rate + self.title_only_rate > 0.9:
            raise ConfigError("short_review_rate + title_only_rate must be <= 0.9")
        return self

    @classmethod
    def at_scale(cls, n_users: int, n_items: int, reviews_per_user: float = 10.0, seed: int = 42,
                 **overrides: Any) -> DemoConfig:
        """A shop for measuring recommendation quality and cost at any size: ``n_users`` with
        ``reviews_per_user`` reviews on average (at least 2 each) on ``n_items``, with the planted
        "next item" structure on (``next_item_rate`` 0.3) besides the aspect preferences."""
        params: dict[str, Any] = dict(n_users=n_users, n_items=n_items, mean_reviews_per_user=reviews_per_user,
                                      min_reviews_per_user=2, seed=seed, next_item_rate=0.3)
        return cls(**{**params, **overrides})

    @property
    def start_timestamp(self) -> pd.Timestamp:
        """``start`` as a UTC timestamp."""
        ts = pd.Timestamp(self.start)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------


@dataclass
class DemoShop:
    """The generated shop and its ground truth.

    Attributes
    ----------
    reviews
        Canonical review table (:data:`jobs.contract.REVIEW_COLUMNS`), in time order,
        ``source == "demo"`` and ``line`` 1..n.
    items
        Item table (:data:`jobs.contract.ITEM_COLUMNS`): item_id, title, category, price.
    users
        Truth per user: user_id, cared_aspect (``<NA>`` for non-carers), harshness,
        favourite_category, n_reviews.
    item_aspects
        Truth: item_id, aspect, strength in [-1, 1] for every item and aspect (``size_fit``
        is 0 outside apparel).
    review_aspects
        Truth: review_id, aspect, polarity (+1/-1) for every aspect sentence written.
    incidents
        Planted complaint bursts: item_id, aspect, start, end, n_reviews.
    review_truth
        Truth per review: review_id, tone (1..5, the sentiment the text was written with;
        for sarcasm its surface tone, 4 or 5),
        disagreement (stars disagree with text), sarcasm, incident, aspect_choice (item
        drawn with the carer's aspect preference), defect (a purchase of a defective item),
        planted_regret (the defect made the buyer regret it: one or two stars, a complaint
        about the defect aspect), next_item (a follow-up of the user's previous purchase).
    defects
        Truth: item_id, aspect, kind (``aspect`` or ``general``), n_purchases, n_regrets.
    sensitivities
        Truth per user and aspect: user_id, aspect, cares (the user's cared aspect),
        p_regret_aspect_defect (probability of regretting an item with an ``aspect`` defect
        on this aspect).
    follow_ups
        Truth (with ``next_item_rate > 0``): item_id, rank, follow_up_id - the items that tend
        to come next after each item.
    config
        The configuration the shop was generated from.
    """

    reviews: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    item_aspects: pd.DataFrame
    review_aspects: pd.DataFrame
    incidents: pd.DataFrame
    review_truth: pd.DataFrame | None = None
    config: DemoConfig | None = None
    defects: pd.DataFrame | None = None
    sensitivities: pd.DataFrame | None = None
    follow_ups: pd.DataFrame | None = None

    def regret_probability(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        """The planted probability that each user regrets buying each item (element-wise).

        0 for an item without a defect; a ``general`` defect's probability for any buyer; for an
        ``aspect`` defect, the user's ``p_regret_aspect_defect`` on the defect aspect (the
        truth tables ``defects`` and ``sensitivities``). Measures a list against the truth: the
        sum over its items is the number of planted regrets it is expected to cause.
        """
        users = pd.Series(np.asarray(user_ids, dtype=object)).astype(str)
        items = pd.Series(np.asarray(item_ids, dtype=object)).astype(str)
        if len(users) != len(items):
            raise InputError(f"regret_probability: {len(users)} users for {len(items)} items")
        out = np.zeros(len(items))
        if self.defects is None or not len(self.defects):
            return out
        cfg = self.config or DemoConfig()
        d = self.defects.set_index(self.defects["item_id"].astype(str))
        kind = items.map(d["kind"].astype(str)).fillna("").to_numpy(dtype=object)
        aspect = items.map(d["aspect"].astype(str)).fillna("").to_numpy(dtype=object)
        out[kind == "general"] = cfg.defect_regret_general
        on_aspect = np.flatnonzero(kind == "aspect")
        if len(on_aspect) and self.sensitivities is not None:
            sens = self.sensitivities.set_index([self.sensitivities["user_id"].astype(str),
                                                 self.sensitivities["aspect"].astype(str)])["p_regret_aspect_defect"]
            keys = pd.MultiIndex.from_arrays([users.to_numpy()[on_aspect], aspect[on_aspect].astype(str)])
            p = sens.reindex(keys).to_numpy(dtype=np.float64)
            out[on_aspect] = np.where(np.isnan(p), cfg.defect_regret_other, p)
        return out

    def input_reviews(self) -> pd.DataFrame:
        """The reviews as a shop would export them: the input contract's columns, without the
        store's own bookkeeping (``source``, ``line``, ``extra``), which an ingest would list as
        columns no field uses."""
        return self.reviews.drop(columns=["source", "line", "extra"], errors="ignore")

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write the shop as files.

        Parameters
        ----------
        out_dir
            Directory to write to (created if missing).

        Returns
        -------
        dict of str to Path
            ``reviews`` and ``items`` (UTF-8 CSV with header), ``users``, ``item_aspects``,
            ``review_aspects``, ``incidents``, ``review_truth``, ``defects`` and
            ``sensitivities`` (Parquet under ``truth/``) and ``readme`` (``README.md``
            describing the planted signal).
        """
        out = Path(out_dir)
        truth = out / "truth"
        truth.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {
            "reviews": out / "reviews.csv",
            "items": out / "items.csv",
        }
        self.input_reviews().to_csv(paths["reviews"], index=False, encoding="utf-8", lineterminator="\n")
        self.items.to_csv(paths["items"], index=False, encoding="utf-8", lineterminator="\n")
        frames = {
            "users": self.users,
            "item_aspects": self.item_aspects,
            "review_aspects": self.review_aspects,
            "incidents": self.incidents,
        }
        for name in ("review_truth", "defects", "sensitivities", "follow_ups"):
            if getattr(self, name) is not None:
                frames[name] = getattr(self, name)
        for name, frame in frames.items():
            paths[name] = truth / f"{name}.parquet"
            frame.to_parquet(paths[name], index=False)
        paths["readme"] = out / "README.md"
        paths["readme"].write_text(self._readme(), encoding="utf-8")
        logger.info("demo shop written to %s (%d reviews)", out, len(self.reviews))
        return paths

    def _readme(self) -> str:
        cfg = self.config
        n_carers = int(self.users["cared_aspect"].notna().sum())
        lines = [
            "# emorec demo shop",
            "",
            "Synthetic, deterministic web-shop data generated by `jobs.demo_shop`.",
            "",
            f"* {len(self.reviews):,} reviews by {len(self.users):,} users on "
            f"{len(self.items):,} items in {self.items['category'].nunique()} categories",
        ]
        if len(self.reviews):
            ts = self.reviews["timestamp"]
            lines.append(f"* reviews from {ts.min()} to {ts.max()}")
        if cfg is not None:
            lines.append(f"* config: `{cfg.model_dump_json()}`")
        lines += [
            "",
            "## Files",
            "",
            "* `reviews.csv`: the canonical review table (review_id, user_id, item_id, rating,"
            " title, text, timestamp, helpful_votes, verified, source, line).",
            "* `items.csv`: item_id, title, category, price.",
            "* `truth/users.parquet`: user_id, cared_aspect (empty for non-carers), harshness,"
            " favourite_category, n_reviews.",
            "* `truth/item_aspects.parquet`: item_id, aspect, strength in [-1, 1].",
            "* `truth/review_aspects.parquet`: review_id, aspect, polarity (+1/-1) for every"
            " aspect sentence written.",
            "* `truth/incidents.parquet`: item_id, aspect, start, end, n_reviews.",
            "* `truth/review_truth.parquet`: review_id, tone, disagreement, sarcasm, incident,"
            " aspect_choice, defect (a purchase of a defective item), planted_regret (the defect"
            " made the buyer regret it).",
            "* `truth/defects.parquet`: item_id, aspect, kind (aspect / general), n_purchases,"
            " n_regrets.",
            "* `truth/sensitivities.parquet`: user_id, aspect, cares, p_regret_aspect_defect"
            " (the user's probability of regretting an item with an aspect defect on it).",
            *(["* `truth/follow_ups.parquet`: item_id, rank, follow_up_id (the items that tend to"
               " come next after each item)."] if self.follow_ups is not None else []),
            "",
            "## Planted signal",
            "",
            f"1. **Aspect carers** ({n_carers:,} of {len(self.users):,} users, see"
            " `users.cared_aspect`) write about their cared aspect in most of their reviews,"
            " with strong emotion.",
            "2. **Aspect-driven purchases.** Items are drawn with probability proportional to"
            " popularity x category preference; after a carer's first"
            f" {cfg.warmup_reviews if cfg else 2} reviews the weight is multiplied by"
            f" exp({cfg.beta if cfg else 2.5:g} x the item's strength on the cared aspect)."
            " The strength is visible only through what other reviews say about that aspect"
            " of that item, so text features predict the carer's next item beyond"
            " co-occurrence.",
            "3. **Complaint burst.** One moderately popular item gets a burst of strongly"
            " negative one- and two-star reviews about one aspect in a two-week window near"
            " the end:",
            "",
        ]
        lines += _bullets(self.incidents, "(no incident planted)",
                          lambda r: f"item {r.item_id}, aspect {r.aspect}, {r.start} to {r.end}, {r.n_reviews} reviews")
        lines += [
            "4. **Defective items.** Items with a hidden defect on their strongest aspect (the"
            " one carers of that aspect buy them for). Buyers who care about the aspect regret"
            f" an `aspect` defect with probability {cfg.defect_regret_carer if cfg else 0.85:g},"
            f" others with {cfg.defect_regret_other if cfg else 0.1:g}; a `general` defect"
            f" disappoints any buyer with probability {cfg.defect_regret_general if cfg else 0.7:g}."
            " A regretted purchase has one or two stars and complains about the defect aspect"
            " (`review_truth.planted_regret`):",
            "",
        ]
        lines += _bullets(self.defects, "(no defective items)",
                          lambda r: f"item {r.item_id}, {r.kind} defect on {r.aspect}: {r.n_regrets} of {r.n_purchases} purchases regretted")
        if cfg is not None and cfg.next_item_rate > 0:
            lines += [
                f"5. **What comes next.** {cfg.next_item_rate:.0%} of the purchases after a user's first"
                f" are one of the {cfg.follow_ups_per_item} follow-up items of the previous purchase"
                " (`follow_ups`, `review_truth.next_item`).",
            ]
        lines += [
            "",
            "Stars disagree with the text in about"
            f" {cfg.rating_text_disagreement if cfg else 0.12:.0%} of the reviews (praising"
            " text with three stars, complaints with high stars, sarcasm with low stars);"
            " see `review_truth.disagreement`.",
            "",
        ]
        return "\n".join(lines)


def _bullets(rows: pd.DataFrame | None, none: str, describe: Callable[[Any], str]) -> list[str]:
    """The README's indented bullet list: ``describe(row)`` for each row, or ``none`` without rows."""
    if rows is None or not len(rows):
        return [f"   * {none}"]
    return [f"   * {describe(row)}" for row in rows.itertuples(index=False)]


# --------------------------------------------------------------------------------------
# vocabulary: items
# --------------------------------------------------------------------------------------

#: Item names and review phrasings, read once from ``demo_shop_vocabulary.toml`` next to this
#: module (data, not code: see that file for what each table is and why its order must be kept).
_VOCABULARY: dict[str, Any] = package_toml(__package__, _VOCABULARY_FILE)


def _tuples(groups: list[list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(g) for g in groups)


# (title noun, noun used in review text, adjectives, specs) per category
_PRODUCTS: dict[str, list[tuple[str, str, list[str], list[str]]]] = {
    category: [(p["title"], p["noun"], p["adjectives"], p["specs"]) for p in products]
    for category, products in _VOCABULARY["products"].items()
}

# median price and log-sd per category
_PRICE = {
    "kitchen": (35.0, 0.6),
    "electronics": (70.0, 0.75),
    "outdoor": (55.0, 0.7),
    "apparel": (35.0, 0.45),
    "home": (30.0, 0.6),
}
_CATEGORY_SHARE = np.array([0.22, 0.2, 0.18, 0.22, 0.18])

# How often each aspect is written about, per category (0 = not applicable)
_MENTION_BASE = np.array(
    [
        #  qual  value deliv durab ease  design size  cs
        [1.0, 0.9, 0.7, 0.9, 0.7, 0.5, 0.0, 0.3],  # kitchen
        [1.0, 0.9, 0.7, 0.9, 0.8, 0.4, 0.0, 0.4],  # electronics
        [1.0, 0.8, 0.6, 1.0, 0.6, 0.4, 0.0, 0.3],  # outdoor
        [0.9, 0.8, 0.6, 0.7, 0.1, 0.8, 1.3, 0.3],  # apparel
        [0.9, 0.8, 0.7, 0.6, 0.3, 1.0, 0.0, 0.3],  # home
    ]
)
# share of carers per cared aspect
_CARED_SHARE = np.array([0.17, 0.15, 0.13, 0.15, 0.11, 0.11, 0.06, 0.12])


# --------------------------------------------------------------------------------------
# vocabulary: review text
# --------------------------------------------------------------------------------------

# Aspect clauses. "{i}" is an intensifier slot, "{n}" the item's noun.
_CLAUSES: dict[str, dict[str, list[str]]] = _VOCABULARY["clauses"]
# Category-specific extra clauses
_CATEGORY_CLAUSES: dict[str, dict[str, dict[str, list[str]]]] = _VOCABULARY["category_clauses"]
# intensifiers per polarity
_INTENS_NORMAL = {sign: tuple(words) for sign, words in _VOCABULARY["intensifiers"]["normal"].items()}
_INTENS_STRONG = {sign: tuple(words) for sign, words in _VOCABULARY["intensifiers"]["strong"].items()}

# Openers, closings, short reviews and titles per tone (index 0 = one star ... 4 = five stars)
_OPENERS: tuple[tuple[str, ...], ...] = _tuples(_VOCABULARY["tone"]["openers"])
_CLOSINGS: tuple[tuple[str, ...], ...] = _tuples(_VOCABULARY["tone"]["closings"])
_SHORT: tuple[tuple[str, ...], ...] = _tuples(_VOCABULARY["tone"]["short"])
_TITLES: tuple[tuple[str, ...], ...] = _tuples(_VOCABULARY["tone"]["titles"])
_ASPECT_TITLES: dict[str, dict[str, list[str]]] = _VOCABULARY["aspect_titles"]
_FILLERS: tuple[str, ...] = tuple(_VOCABULARY["text"]["fillers"])
# emotional interjections after the aspect sentences, per tone
_EMOTION: tuple[tuple[str, ...], ...] = _tuples(_VOCABULARY["tone"]["emotion"])
# emotional tails of an aspect clause (negative, positive)
_TAILS: tuple[tuple[str, ...], ...] = _tuples(_VOCABULARY["text"]["tails"])
_JOINERS: tuple[str, ...] = tuple(_VOCABULARY["text"]["joiners"])

# (text, aspect) of sarcastic reviews (read positively by a lexicon, one or two stars)
_SARCASM: tuple[tuple[str, str], ...] = tuple((r["text"], r["aspect"]) for r in _VOCABULARY["sarcasm"]["reviews"])
_SARCASM_TITLES: tuple[str, ...] = tuple(_VOCABULARY["sarcasm"]["titles"])

_INCIDENT_CLAUSES: dict[str, tuple[str, ...]] = {a: tuple(c) for a, c in _VOCABULARY["incident"]["clauses"].items()}
_INCIDENT_TITLES: dict[str, tuple[str, ...]] = {a: tuple(t) for a, t in _VOCABULARY["incident"]["titles"].items()}

# typos that would make an embarrassing word ("clock" -> "cock") are skipped
_UNFORTUNATE = re.compile(r"cock|shit|fart|butt|tit\b|cunt|dick|piss", re.IGNORECASE)

_EMOJI_POS = tuple(_VOCABULARY["emoji"]["positive"])
_EMOJI_MID = tuple(_VOCABULARY["emoji"]["mixed"])
_EMOJI_NEG = tuple(_VOCABULARY["emoji"]["negative"])
_EMOJI_SARC = tuple(_VOCABULARY["emoji"]["sarcastic"])


@dataclass(frozen=True)
class _Pools:
    """Flat string tables built from the vocabulary, with offsets for vectorised picks."""

    clause_cap: np.ndarray  # object: capitalised clauses
    clause_low: np.ndarray  # object: clauses as written
    clause_off: np.ndarray  # (n_cats, n_aspects, 2 polarities, 2 strengths) start offsets
    clause_cnt: np.ndarray  # same shape: counts
    strings: np.ndarray  # object: all other phrases
    off: dict[str, np.ndarray]  # name -> offsets per class
    cnt: dict[str, np.ndarray]  # name -> counts per class
    sarcasm_aspect: np.ndarray  # aspect index per sarcasm text


_ARTICLE = re.compile(r"\b([Aa])n? (?=(\w))")


def _articled(s: str) -> str:
    """Fix "a"/"an" before the next word ("a incredibly" -> "an incredibly")."""
    return _ARTICLE.sub(lambda m: m.group(1) + ("n " if m.group(2).lower() in "aeiou" else " "), s)


@functools.lru_cache(maxsize=1)
def _pools() -> _Pools:
    cap: list[str] = []
    low: list[str] = []
    shape = (_N_CATS, _N_ASPECTS, 2, 2)
    c_off = np.zeros(shape, dtype=np.int64)
    c_cnt = np.zeros(shape, dtype=np.int64)
    for ci, cat in enumerate(CATEGORIES):
        for ai, asp in enumerate(ASPECTS):
            for pi, sign in enumerate(("-", "+")):
                templates = list(_CLAUSES[asp][sign])
                templates += _CATEGORY_CLAUSES.get(cat, {}).get(asp, {}).get(sign, [])
                for si, intens in enumerate((_INTENS_NORMAL[sign], _INTENS_STRONG[sign])):
                    c_off[ci, ai, pi, si] = len(cap)
                    for t in templates:
                        for word in intens:  # every template equally likely
                            s = t.replace("{i}", word)
                            if "a {i}" in t or "an {i}" in t:
                                s = _articled(s)
                            low.append(s)
                            cap.append(s[0].upper() + s[1:])
                    c_cnt[ci, ai, pi, si] = len(cap) - c_off[ci, ai, pi, si]

    strings: list[str] = []
    off: dict[str, np.ndarray] = {}
    cnt: dict[str, np.ndarray] = {}

    def add(name: str, groups: list[tuple[str, ...]] | list[list[str]]) -> None:
        o, c = [], []
        for g in groups:
            o.append(len(strings))
            strings.extend(g)
            c.append(len(g))
        off[name] = np.asarray(o, dtype=np.int64)
        cnt[name] = np.asarray(c, dtype=np.int64)

    add("opener", list(_OPENERS))
    add("closing", list(_CLOSINGS))
    add("short", list(_SHORT))
    add("title", list(_TITLES))
    add("aspect_title", [_ASPECT_TITLES[a][s] for a in ASPECTS for s in ("-", "+")])
    add("filler", [_FILLERS])
    add("emotion", list(_EMOTION))
    add("tail", list(_TAILS))
    add("sarcasm", [tuple(t for t, _ in _SARCASM)])
    add("sarcasm_title", [_SARCASM_TITLES])
    add("incident", [_INCIDENT_CLAUSES.get(a, ()) for a in ASPECTS])
    add("incident_title", [_INCIDENT_TITLES.get(a, ("DO NOT BUY", "Awful")) for a in ASPECTS])
    add("emoji", [_EMOJI_NEG, _EMOJI_MID, _EMOJI_POS, _EMOJI_SARC])
    add("joiner", [_JOINERS])
    return _Pools(
        clause_cap=np.asarray(cap, dtype=object),
        clause_low=np.asarray(low, dtype=object),
        clause_off=c_off,
        clause_cnt=c_cnt,
        strings=np.asarray(strings, dtype=object),
        off=off,
        cnt=cnt,
        sarcasm_aspect=np.asarray([_A[a] for _, a in _SARCASM], dtype=np.int64),
    )


def _pick(pools: _Pools, name: str, cls: np.ndarray | int, u: np.ndarray) -> np.ndarray:
    """Index into ``pools.strings``: a uniform pick (``u`` in [0, 1)) within class ``cls``."""
    off = pools.off[name][cls]
    cnt = pools.cnt[name][cls]
    return off + np.minimum((u * cnt).astype(np.int64), cnt - 1)


# --------------------------------------------------------------------------------------
# generation stages
# --------------------------------------------------------------------------------------


def _ids(prefix: str, n: int, min_width: int) -> np.ndarray:
    width = max(min_width, len(str(n)))
    return np.asarray([f"{prefix}{k:0{width}d}" for k in range(1, n + 1)], dtype=object)


@dataclass
class _ItemsOut:
    frame: pd.DataFrame
    ids: np.ndarray
    cat: np.ndarray
    noun: np.ndarray
    pop: np.ndarray
    strength: np.ndarray  # (n_items, n_aspects)
    overall: np.ndarray


def _make_items(cfg: DemoConfig, rng: np.random.Generator) -> _ItemsOut:
    n = cfg.n_items
    # balanced categories (every category has items), shares roughly _CATEGORY_SHARE
    base = np.repeat(np.arange(_N_CATS), 2)  # at least two items per category
    rest = rng.choice(_N_CATS, size=n - base.size, p=_CATEGORY_SHARE)
    cat = rng.permutation(np.concatenate([base, rest]))

    titles = np.empty(n, dtype=object)
    nouns = np.empty(n, dtype=object)
    price = np.empty(n)
    u = rng.random((n, 3))
    z = rng.standard_normal(n)
    for ci, cname in enumerate(CATEGORIES):
        idx = np.flatnonzero(cat == ci)
        products = _PRODUCTS[cname]
        pi = (u[idx, 0] * len(products)).astype(np.int64)
        med, sd = _PRICE[cname]
        price[idx] = np.maximum(np.floor(med * np.exp(sd * z[idx])) + 0.99, 4.99)
        for k, j, ua, us in zip(idx, pi, u[idx, 1], u[idx, 2]):
            tnoun, noun, adjs, specs = products[j]
            adj = adjs[int(ua * len(adjs))]
            spec = specs[int(us * len(specs))]
            titles[k] = f"{adj} {tnoun} {spec}"
            nouns[k] = noun

    # Zipf-like popularity on a random ranking
    ranks = rng.permutation(n) + 1
    pop = 1.0 / ranks.astype(float) ** cfg.zipf_exponent
    pop /= pop.sum()

    # latent aspect strengths: mostly near 0, some clearly strong or weak
    strength = rng.normal(0.0, 0.2, size=(n, _N_ASPECTS))
    strong = rng.random((n, _N_ASPECTS)) < 0.17
    sign = np.where(rng.random((n, _N_ASPECTS)) < 0.55, 1.0, -1.0)
    strength = np.where(strong, sign * rng.uniform(0.5, 1.0, size=(n, _N_ASPECTS)), strength)
    # value suffers when an item is expensive within its category
    strength[:, _A["value"]] -= 0.25 * z
    applicable = _MENTION_BASE[cat] > 0
    strength = np.where(applicable, np.clip(strength, -1.0, 1.0), 0.0)
    strength = np.round(strength, 3)

    w = _MENTION_BASE[cat]
    overall = (strength * w).sum(axis=1) / w.sum(axis=1) + rng.normal(0.0, 0.15, size=n)

    ids = _ids("I", n, 4)
    frame = conform(
        pd.DataFrame(
            {
                "item_id": ids,
                "title": titles,
                "category": np.asarray(CATEGORIES, dtype=object)[cat],
                "price": price,
            }
        ),
        ITEM_COLUMNS,
    )
    return _ItemsOut(frame, ids, cat, nouns, pop, strength, overall)


@dataclass
class _UsersOut:
    ids: np.ndarray
    fav: np.ndarray
    harsh: np.ndarray
    cared: np.ndarray  # aspect index or -1
    count: np.ndarray


def _make_users(cfg: DemoConfig, rng: np.random.Generator, items: _ItemsOut) -> _UsersOut:
    n = cfg.n_users
    cat_pop = np.bincount(items.cat, weights=items.pop, minlength=_N_CATS)
    fav = rng.choice(_N_CATS, size=n, p=cat_pop / cat_pop.sum())
    harsh = np.round(rng.normal(0.0, 0.5, size=n), 3)
    carer = rng.random(n) < cfg.aspect_carer_share
    cared = np.where(carer, rng.choice(_N_ASPECTS, size=n, p=_CARED_SHARE / _CARED_SHARE.sum()), -1)
    # people who care about fit buy clothes
    fav = np.where(cared == _A["size_fit"], _C["apparel"], fav)
    # heavy-tailed activity: Poisson with a log-normal rate
    extra_mean = cfg.mean_reviews_per_user - cfg.min_reviews_per_user
    lam = extra_mean * rng.lognormal(-0.5, 1.0, size=n)  # E[lognormal(-.5, 1)] = 1
    count = cfg.min_reviews_per_user + rng.poisson(lam)
    count = np.minimum(count, max(cfg.min_reviews_per_user, cfg.n_items // 2))
    return _UsersOut(_ids("U", n, 5), fav, harsh, cared.astype(np.int64), count.astype(np.int64))


def _choice_cdf(cfg: DemoConfig, items: _ItemsOut) -> np.ndarray:
    """Row ``fav * (n_aspects + 1) + cared`` (``cared == n_aspects``: none): the item CDF."""
    n_groups = _N_CATS * (_N_ASPECTS + 1)
    w = np.empty((n_groups, cfg.n_items))
    for f in range(_N_CATS):
        catw = np.where(items.cat == f, cfg.favourite_boost, 1.0)
        for a in range(_N_ASPECTS + 1):
            g = f * (_N_ASPECTS + 1) + a
            w[g] = items.pop * catw
            if a < _N_ASPECTS:
                w[g] *= np.exp(cfg.beta * items.strength[:, a])
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    return cdf


def _sample_items(cdf: np.ndarray, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    n_items = cdf.shape[1]
    flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()
    pos = np.searchsorted(flat, group + u, side="right")
    return np.clip(pos - group * n_items, 0, n_items - 1)


def _dedupe(
    user: np.ndarray,
    item: np.ndarray,
    group: np.ndarray,
    cdf: np.ndarray,
    starts: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Redraw repeated (user, item) pairs so that nobody reviews an item twice.

    ``user`` is sorted and user ``u``'s rows start at ``starts[u]``.
    """
    n_items = cdf.shape[1]
    item = item.copy()
    for _ in range(40):
        key = user * n_items + item
        order = np.argsort(key, kind="stable")
        sk = key[order]
        dup = order[1:][sk[1:] == sk[:-1]]
        if dup.size == 0:
            return item
        item[dup] = _sample_items(cdf, group[dup], rng.random(dup.size))
    # rare leftovers: give each the first unused item of a random permutation
    key = user * n_items + item
    order = np.argsort(key, kind="stable")
    sk = key[order]
    dup = np.sort(order[1:][sk[1:] == sk[:-1]])
    ends = np.append(starts[1:], user.size)
    logger.debug("demo shop: %d repeated purchases reassigned by hand", dup.size)
    for r in dup:
        u = user[r]
        mine = item[starts[u] : ends[u]]
        if int((mine == item[r]).sum()) < 2:
            continue  # an earlier reassignment already fixed it
        used = set(mine.tolist())
        for cand in rng.permutation(n_items):
            if int(cand) not in used:
                item[r] = cand
                break
    return item


def _follow_ups(cfg: DemoConfig, items: _ItemsOut, rng: np.random.Generator) -> np.ndarray:
    """``(n_items, follow_ups_per_item)``: each item's follow-ups, other items of its category
    drawn with probability proportional to the square root of their popularity."""
    k = cfg.follow_ups_per_item
    out = np.empty((cfg.n_items, k), dtype=np.int64)
    for c in range(_N_CATS):
        members = np.flatnonzero(items.cat == c)
        w = np.sqrt(items.pop[members])
        cdf = np.cumsum(w) / w.sum()
        draw = np.minimum(np.searchsorted(cdf, rng.random((members.size, k)), side="right"), members.size - 1)
        # never the item itself: its own draw moves to the next member of the category
        own = np.arange(members.size)[:, None]
        draw = np.where((draw == own) & (members.size > 1), (draw + 1) % members.size, draw)
        out[members] = members[draw]
    return out


def _plant_next_items(
    cfg: DemoConfig, item: np.ndarray, pos: np.ndarray, follow_ups: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replace ``next_item_rate`` of the purchases after a user's first with a follow-up of the
    user's previous purchase (rows are users' histories in order; ``pos`` 0 starts one)."""
    n = item.size
    follow = (rng.random(n) < cfg.next_item_rate) & (pos >= 1)
    pick = rng.integers(0, follow_ups.shape[1], size=n)
    item = item.copy()
    rows = np.flatnonzero(follow)
    by_pos = rows[np.argsort(pos[rows], kind="stable")]
    bounds = np.searchsorted(pos[by_pos], np.arange(1, int(pos.max(initial=0)) + 2))
    for p in range(len(bounds) - 1):  # position by position: a follow-up of a follow-up chains
        r = by_pos[bounds[p] : bounds[p + 1]]
        item[r] = follow_ups[item[r - 1], pick[r]]
    return item, follow


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------------------


def generate_demo_shop(config: DemoConfig | None = None, **overrides: Any) -> DemoShop:
    """Generate the demo shop.

    Parameters
    ----------
    config
        The configuration; defaults to ``DemoConfig()``.
    **overrides
        Fields of :class:`DemoConfig` that replace those of ``config`` (validated).

    Returns
    -------
    DemoShop
        Reviews, items and the ground truth of the planted signal.

    Examples
    --------
    >>> shop = generate_demo_shop(n_users=20, n_items=30, seed=1)
    >>> shop.reviews["user_id"].value_counts().min() >= 3
    True
    """
    if config is None:
        cfg = DemoConfig(**overrides)
    else:
        cfg = DemoConfig.model_validate({**config.model_dump(), **overrides}) if overrides else config
    t0 = time.perf_counter()
    # ten independent streams; the ninth (defects) and tenth (next items) were added later: spawn
    # keys are positional, so the first ones draw exactly what they drew before them
    seeds = np.random.SeedSequence(cfg.seed).spawn(10)
    r_items, r_users, r_inter, r_inc, r_rate, r_text, r_meta, r_dup, r_def, r_next = (
        np.random.default_rng(s) for s in seeds
    )

    items = _make_items(cfg, r_items)
    users = _make_users(cfg, r_users, items)

    # ---- interactions: who reviewed what, when --------------------------------------
    n_asp1 = _N_ASPECTS + 1
    user = np.repeat(np.arange(cfg.n_users), users.count)
    n = user.size
    starts = np.concatenate([[0], np.cumsum(users.count)[:-1]])
    pos = np.arange(n) - starts[user]  # 0-based position in the user's history
    secs_total = cfg.days * SECONDS_PER_DAY
    span = secs_total * r_inter.uniform(0.3, 1.0, size=cfg.n_users)
    ustart = r_inter.random(cfg.n_users) * (secs_total - span)
    x = r_inter.random(n)
    x = x[np.lexsort((x, user))]  # sorted within each user (user is already sorted)
    t = np.floor(ustart[user] + x * span[user]).astype(np.int64)
    aspect_choice = (users.cared[user] >= 0) & (pos >= cfg.warmup_reviews)
    group = users.fav[user] * n_asp1 + np.where(aspect_choice, users.cared[user], _N_ASPECTS)
    cdf = _choice_cdf(cfg, items)
    item = _sample_items(cdf, group, r_inter.random(n))
    follow_ups = None
    next_item = np.zeros(n, dtype=bool)
    if cfg.next_item_rate > 0:
        follow_ups = _follow_ups(cfg, items, r_next)
        item, next_item = _plant_next_items(cfg, item, pos, follow_ups, r_next)
    drawn = item
    item = _dedupe(user, item, group, cdf, starts, r_dup)
    # a follow-up redrawn because the user had it already is not one, nor is the follow-up of a
    # purchase that was redrawn
    changed = item != drawn
    next_item &= ~changed & ~np.r_[False, changed[:-1]]
    aspect_choice &= ~next_item

    # ---- the complaint burst ---------------------------------------------------------
    incident = np.zeros(n, dtype=bool)
    inc_rows: list[dict[str, Any]] = []
    inc_aspect = -1
    inc_item = -1
    if cfg.incident:
        rank = np.argsort(-items.pop, kind="stable")
        lo = min(4, cfg.n_items - 1)
        hi = max(lo + 1, min(cfg.n_items, max(15, cfg.n_items // 20)))
        inc_item = int(rank[r_inc.integers(lo, hi)])
        if cfg.incident_aspect is not None:
            inc_aspect = _A[cfg.incident_aspect]
        else:
            inc_aspect = _A[("delivery", "durability")[int(r_inc.integers(2))]]
        win = min(cfg.incident_days, cfg.days) * SECONDS_PER_DAY
        w_start = max(0, secs_total - 28 * SECONDS_PER_DAY - win)
        w_end = min(secs_total, w_start + win)
        in_window = (item == inc_item) & (t >= w_start) & (t < w_end)
        expected = int(in_window.sum())
        target = max(cfg.incident_min_reviews, 3 * expected)
        reviewed = np.unique(user[item == inc_item])
        candidates = np.setdiff1d(np.arange(cfg.n_users), reviewed)
        n_add = min(max(target - expected, 0), candidates.size)
        add_users = np.sort(r_inc.choice(candidates, size=n_add, replace=False))
        add_t = w_start + np.floor(r_inc.random(n_add) * (w_end - w_start)).astype(np.int64)
        user = np.concatenate([user, add_users])
        item = np.concatenate([item, np.full(n_add, inc_item)])
        t = np.concatenate([t, add_t])
        pos = np.concatenate([pos, np.full(n_add, -1)])
        aspect_choice = np.concatenate([aspect_choice, np.zeros(n_add, dtype=bool)])
        next_item = np.concatenate([next_item, np.zeros(n_add, dtype=bool)])
        incident = np.concatenate([in_window, np.ones(n_add, dtype=bool)])
        n = user.size
        start_ts = cfg.start_timestamp
        inc_rows.append(
            {
                "item_id": items.ids[inc_item],
                "aspect": ASPECTS[inc_aspect],
                "start": start_ts + pd.Timedelta(seconds=int(w_start)),
                "end": start_ts + pd.Timedelta(seconds=int(w_end)),
                "n_reviews": int(incident.sum()),
            }
        )

    # global time order (ties: user, then history position); review ids follow it
    order = np.lexsort((pos, user, t))
    user, item, t, incident, aspect_choice, next_item = (
        a[order] for a in (user, item, t, incident, aspect_choice, next_item)
    )
    cat = items.cat[item]
    cared = users.cared[user]
    is_carer = cared >= 0

    # ---- ratings, text tone, disagreement --------------------------------------------
    cared_s = np.where(is_carer, items.strength[item, np.maximum(cared, 0)], 0.0)
    latent = (
        1.6 * items.overall[item]
        + 1.4 * cared_s
        - users.harsh[user]
        + r_rate.normal(0.0, 0.55, size=n)
    )
    normal = ~incident
    cuts = np.quantile(latent[normal], [0.065, 0.10, 0.18, 0.40]) if normal.any() else np.zeros(4)
    rating = (1 + np.searchsorted(cuts, latent)).astype(np.int64)
    harsh_user = users.harsh[user] > 0.5
    wdis = np.array([0.0, 1.0, 1.0, 1.8, 1.0, 0.9])[rating] * np.where(harsh_user, 2.0, 1.0)
    wmean = wdis[normal].mean() if normal.any() else 1.0
    p_dis = np.clip(cfg.rating_text_disagreement * wdis / wmean, 0.0, 1.0)
    u_rate = r_rate.random((n, 3))
    disagree = normal & (u_rate[:, 0] < p_dis)
    tone = rating.copy()
    sarcasm = disagree & (rating <= 2) & (u_rate[:, 1] < 0.7)
    tone = np.where(disagree & (rating <= 2), np.where(u_rate[:, 2] < 0.5, 5, 4), tone)
    tone = np.where(disagree & (rating == 3), np.where(u_rate[:, 2] < 0.5, 5, 4), tone)
    # complaints or a lukewarm text with four or five stars
    tone = np.where(
        disagree & (rating >= 4),
        np.where(u_rate[:, 2] < 0.5, 3, np.where(u_rate[:, 2] < 0.9, 2, 1)),
        tone,
    )
    # the burst: one and two stars, strongly negative
    rating = np.where(incident, np.where(u_rate[:, 1] < 0.75, 1, 2), rating)
    tone = np.where(incident, rating, tone)
    sarcasm &= ~incident

    # ---- defective items: planted regrets ----------------------------------------------
    defect_aspect = np.full(cfg.n_items, -1, dtype=np.int64)
    defect_general = np.zeros(cfg.n_items, dtype=bool)
    if cfg.defect_share > 0:
        rank = np.argsort(-items.pop, kind="stable")
        pool = rank[max(3, cfg.n_items // 20) : max(4, cfg.n_items // 2)]  # not the head, not the long tail
        pool = pool[pool != inc_item]
        n_def = min(max(1, int(round(cfg.defect_share * cfg.n_items))), pool.size)
        chosen = np.sort(r_def.choice(pool, size=n_def, replace=False))
        applicable = _MENTION_BASE[items.cat[chosen]] > 0
        defect_aspect[chosen] = np.argmax(np.where(applicable, items.strength[chosen], -np.inf), axis=1)
        defect_general[chosen] = r_def.random(n_def) < cfg.defect_general_share
    d_asp = defect_aspect[item]
    defect = (d_asp >= 0) & ~incident
    p_regret = np.where(
        defect_general[item],
        cfg.defect_regret_general,
        np.where(cared == d_asp, cfg.defect_regret_carer, cfg.defect_regret_other),
    )
    u_def = r_def.random((n, 2))
    planted = defect & (u_def[:, 0] < p_regret)
    rating = np.where(planted, np.where(u_def[:, 1] < 0.6, 1, 2), rating)
    tone = np.where(planted, rating, tone)
    disagree &= ~planted
    sarcasm &= ~planted

    # ---- review text -----------------------------------------------------------------
    texts, titles, asp, pol, n_written = _write_texts(
        cfg, r_text, items, item, cat, cared, tone, disagree, sarcasm, incident, inc_aspect,
        np.where(planted, d_asp, -1),
    )

    # ---- assemble ------------------------------------------------------------------
    review_ids = _ids("R", n, 7)
    start_ns = cfg.start_timestamp.value
    ts = pd.to_datetime(start_ns + t * 1_000_000_000, utc=True)
    helpful = r_meta.negative_binomial(0.3, 0.35, size=n)
    verified = r_meta.random(n) < 0.88
    reviews = conform(
        pd.DataFrame(
            {
                "review_id": review_ids,
                "user_id": users.ids[user],
                "item_id": items.ids[item],
                "rating": rating.astype(np.float64),
                "title": titles,
                "text": texts,
                "timestamp": ts,
                "helpful_votes": helpful,
                "verified": verified,
                "source": SOURCE,
                "line": np.arange(1, n + 1),
            }
        ),
        REVIEW_COLUMNS,
    )

    slot_rows, slot_cols = np.nonzero(np.arange(3)[None, :] < n_written[:, None])
    review_aspects = pd.DataFrame(
        {
            "review_id": pd.array(review_ids[slot_rows], dtype="string"),
            "aspect": pd.array(
                np.asarray(ASPECTS, dtype=object)[asp[slot_rows, slot_cols]], dtype="string"
            ),
            "polarity": pol[slot_rows, slot_cols].astype(np.int8),
        }
    )
    users_df = pd.DataFrame(
        {
            "user_id": pd.array(users.ids, dtype="string"),
            "cared_aspect": pd.array(
                [ASPECTS[a] if a >= 0 else None for a in users.cared], dtype="string"
            ),
            "harshness": users.harsh,
            "favourite_category": pd.array(
                np.asarray(CATEGORIES, dtype=object)[users.fav], dtype="string"
            ),
            "n_reviews": np.bincount(user, minlength=cfg.n_users).astype(np.int64),
        }
    )
    item_aspects = pd.DataFrame(
        {
            "item_id": pd.array(np.repeat(items.ids, _N_ASPECTS), dtype="string"),
            "aspect": pd.array(np.tile(np.asarray(ASPECTS, dtype=object), cfg.n_items), dtype="string"),
            "strength": items.strength.ravel(),
        }
    )
    incidents = pd.DataFrame(
        inc_rows, columns=["item_id", "aspect", "start", "end", "n_reviews"]
    ).astype({"item_id": "string", "aspect": "string", "n_reviews": "int64"})
    if incidents.empty:
        incidents["start"] = pd.Series(dtype="datetime64[ns, UTC]")
        incidents["end"] = pd.Series(dtype="datetime64[ns, UTC]")
    else:
        incidents["start"] = incidents["start"].astype("datetime64[ns, UTC]")
        incidents["end"] = incidents["end"].astype("datetime64[ns, UTC]")
    review_truth = pd.DataFrame(
        {
            "review_id": pd.array(review_ids, dtype="string"),
            "tone": tone.astype(np.int8),
            "disagreement": disagree | sarcasm,
            "sarcasm": sarcasm,
            "incident": incident,
            "aspect_choice": aspect_choice,
            "defect": defect,
            "planted_regret": planted,
            "next_item": next_item,
        }
    )
    def_items = np.flatnonzero(defect_aspect >= 0)
    defects = pd.DataFrame(
        {
            "item_id": pd.array(items.ids[def_items], dtype="string"),
            "aspect": pd.array(np.asarray(ASPECTS, dtype=object)[defect_aspect[def_items]], dtype="string"),
            "kind": pd.array(np.where(defect_general[def_items], "general", "aspect"), dtype="string"),
            "n_purchases": np.bincount(item[defect], minlength=cfg.n_items)[def_items].astype(np.int64),
            "n_regrets": np.bincount(item[planted], minlength=cfg.n_items)[def_items].astype(np.int64),
        }
    )
    cares = users.cared[:, None] == np.arange(_N_ASPECTS)[None, :]
    sensitivities = pd.DataFrame(
        {
            "user_id": pd.array(np.repeat(users.ids, _N_ASPECTS), dtype="string"),
            "aspect": pd.array(np.tile(np.asarray(ASPECTS, dtype=object), cfg.n_users), dtype="string"),
            "cares": cares.ravel(),
            "p_regret_aspect_defect": np.where(cares, cfg.defect_regret_carer, cfg.defect_regret_other).ravel(),
        }
    )
    logger.info(
        "generated demo shop: %d reviews, %d users, %d items in %.2f s",
        n,
        cfg.n_users,
        cfg.n_items,
        time.perf_counter() - t0,
    )
    return DemoShop(
        reviews=reviews,
        items=items.frame,
        users=users_df,
        item_aspects=item_aspects,
        review_aspects=review_aspects,
        incidents=incidents,
        review_truth=review_truth,
        config=cfg,
        defects=defects,
        sensitivities=sensitivities,
        follow_ups=None if follow_ups is None else pd.DataFrame(
            {
                "item_id": pd.array(np.repeat(items.ids, follow_ups.shape[1]), dtype="string"),
                "rank": np.tile(np.arange(1, follow_ups.shape[1] + 1), cfg.n_items).astype(np.int64),
                "follow_up_id": pd.array(items.ids[follow_ups.ravel()], dtype="string"),
            }
        ),
    )


def _write_texts(
    cfg: DemoConfig,
    rng: np.random.Generator,
    items: _ItemsOut,
    item: np.ndarray,
    cat: np.ndarray,
    cared: np.ndarray,
    tone: np.ndarray,
    disagree: np.ndarray,
    sarcasm: np.ndarray,
    incident: np.ndarray,
    inc_aspect: int,
    complaint: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compose titles and bodies; return texts, titles, aspects, polarities, n aspect slots.

    ``complaint`` (aspect index per review, -1 for none) forces a full review whose first
    sentence is a strong complaint about that aspect (the planted regrets).
    """
    P = _pools()
    S = P.strings
    n = item.size
    ti = tone - 1  # 0..4
    is_carer = cared >= 0
    cared0 = np.maximum(cared, 0)
    strength = items.strength[item]  # (n, n_aspects)
    base = _MENTION_BASE[cat]
    cared_ok = is_carer & (base[np.arange(n), cared0] > 0)

    # review shape: short, title-only, regular (1-3 aspect sentences), long
    u = rng.random((n, 9))
    shape_scale = np.where(cared_ok, 0.4, 1.0)  # carers write real reviews more often
    title_only = u[:, 0] < cfg.title_only_rate * shape_scale
    short = ~title_only & (u[:, 0] < (cfg.title_only_rate + cfg.short_review_rate) * shape_scale)
    special = sarcasm | incident
    forced = np.zeros(n, dtype=bool) if complaint is None else complaint >= 0
    title_only &= ~(special | forced)
    short &= ~(special | forced)
    regular = ~(title_only | short | special)
    n_asp = np.where(u[:, 1] < 0.45, 1, np.where(u[:, 1] < 0.82, 2, 3))
    long = regular & (n_asp == 3) & (u[:, 2] < 0.6)

    # which aspects: Gumbel top-3 over mention weights (strong aspects get mentioned more)
    with np.errstate(divide="ignore"):
        keys = np.log(base * (0.2 + np.abs(strength))) + rng.gumbel(size=(n, _N_ASPECTS))
    force = cared_ok & (u[:, 3] < 0.85)
    keys[force, cared0[force]] = np.inf
    asp = np.argsort(-keys, axis=1, kind="stable")[:, :3]
    # polarity follows the item's latent strength and the review's tone
    # (a text written against the stars leans harder on its tone)
    # (a four-star text often names a downside)
    bias = np.array([0.0, -2.4, -1.3, 0.0, 0.5, 2.4])[tone] * np.where(disagree, 1.5, 1.0)
    logit = 3.5 * strength[np.arange(n)[:, None], asp] + bias[:, None]
    pol = np.where(rng.random((n, 3)) < _sigmoid(logit), 1, -1)
    # a three-star text is mixed: the last sentence contradicts an otherwise uniform text
    last = np.clip(n_asp - 1, 0, 2)
    mixed = (tone == 3) & (n_asp >= 2) & (pol[:, 0] == pol[np.arange(n), last])
    mixed &= (pol[:, 0] == pol[:, 1]) | (n_asp == 2)
    pol[mixed, last[mixed]] *= -1
    strong = rng.random((n, 3)) < np.array([0.0, 0.3, 0.08, 0.05, 0.08, 0.35])[tone][:, None]
    is_cared_slot = asp == cared[:, None]
    strong |= is_cared_slot & (rng.random((n, 3)) < 0.8)
    n_written = np.where(regular, n_asp, 0)
    if forced.any():  # the complaint takes slot 0 (swapped there when drawn in another slot)
        rows = np.flatnonzero(forced)
        for r in rows:
            j = np.flatnonzero(asp[r] == complaint[r])
            if j.size:
                asp[r, j[0]] = asp[r, 0]
            asp[r, 0] = complaint[r]
        pol[rows, 0] = -1
        strong[rows, 0] = True

    # sarcasm and incident reviews carry one aspect each (incident: maybe a second one)
    u2 = rng.random((n, 6))
    sarc_pick = _pick(P, "sarcasm", 0, u2[:, 0])
    sarc_asp = P.sarcasm_aspect[sarc_pick - P.off["sarcasm"][0]]
    asp[sarcasm, 0] = sarc_asp[sarcasm]
    pol[sarcasm, 0] = -1
    n_written = np.where(sarcasm, 1, n_written)
    if inc_aspect >= 0 and incident.any():
        asp[incident, 0] = inc_aspect
        pol[incident, 0] = -1
        strong[incident, 0] = True
        second = incident & (u2[:, 1] < 0.3) & (inc_aspect != _A["customer_service"])
        asp[second, 1] = _A["customer_service"]
        pol[second, 1] = -1
        n_written = np.where(incident, np.where(second, 2, 1), n_written)

    # clause strings for the three slots
    pidx = (pol > 0).astype(np.int64)
    sidx = strong.astype(np.int64)
    coff = P.clause_off[cat[:, None], asp, pidx, sidx]
    ccnt = P.clause_cnt[cat[:, None], asp, pidx, sidx]
    cidx = coff + np.minimum((rng.random((n, 3)) * ccnt).astype(np.int64), ccnt - 1)
    cap = P.clause_cap[cidx]
    low = P.clause_low[cidx]
    # incident clause replaces slot 0 where dedicated templates exist
    if inc_aspect >= 0 and P.cnt["incident"][inc_aspect] > 0:
        rows = np.flatnonzero(incident)
        inc_s = S[_pick(P, "incident", inc_aspect, u2[rows, 2])]
        cap[rows, 0] = np.asarray([s[0].upper() + s[1:] for s in inc_s], dtype=object)
        low[rows, 0] = inc_s

    # emotional tails ("..., so frustrating"), mostly on strong sentences
    u_tail = rng.random((n, 3, 2))
    tail = S[_pick(P, "tail", pidx, u_tail[..., 0])]
    has_tail = u_tail[..., 1] < np.where(strong, 0.35, 0.1)
    has_tail &= np.arange(3)[None, :] < np.where(incident, 0, n_written)[:, None]
    cap = np.where(has_tail, cap + tail, cap)
    low = np.where(has_tail, low + tail, low)

    # sentence ends: "!" more likely for strong emotion
    p_bang = np.where(strong, 0.6, np.array([0.0, 0.15, 0.05, 0.03, 0.08, 0.25])[tone][:, None])
    end = np.where(rng.random((n, 3)) < p_bang, "!", ".").astype(object)

    # aspect body, contrast-joined where polarity flips
    u3 = rng.random((n, 8))
    body = cap[:, 0].copy()
    contrasted = np.zeros(n, dtype=bool)  # at most one "but" per review
    for j in (1, 2):
        has = n_written > j
        if not has.any():
            continue
        contrast = has & (pol[:, j] != pol[:, j - 1]) & (u3[:, j] < 0.7) & ~contrasted
        contrasted |= contrast
        plain = has & ~contrast
        joiner = S[_pick(P, "joiner", 0, u3[:, 2 + j])]
        body[contrast] = body[contrast] + joiner[contrast] + low[contrast, j]
        body[plain] = body[plain] + end[plain, j - 1] + " " + cap[plain, j]
    last = np.clip(n_written - 1, 0, 2)
    body = body + end[np.arange(n), last]

    opener = S[_pick(P, "opener", ti, u3[:, 5])]
    closing = S[_pick(P, "closing", ti, u3[:, 6])]
    filler = S[_pick(P, "filler", 0, u3[:, 7])]
    use_opener = (regular & ((u[:, 4] < np.where(tone <= 2, 0.9, 0.75)) | long)) | incident
    emotion = S[_pick(P, "emotion", ti, u3[:, 0])]
    use_emotion = regular & (u[:, 8] > 1.0 - np.array([0.0, 0.35, 0.3, 0.05, 0.05, 0.2])[tone])
    use_closing = (regular & ((u[:, 5] < 0.3) | long)) | (incident & (u[:, 5] < 0.4))

    text = np.where(use_opener, opener + " ", "").astype(object)
    text = text + np.where(long, filler + " ", "")
    text = text + body
    text = text + np.where(use_emotion, " " + emotion, "")
    text = text + np.where(use_closing, " " + closing, "")
    text[short] = S[_pick(P, "short", ti[short], u2[short, 3])]
    text[sarcasm] = S[sarc_pick[sarcasm]]
    text[title_only] = ""

    # titles: tone-based, aspect-based when the first sentence agrees with the tone
    title = S[_pick(P, "title", ti, u2[:, 4])]
    agrees = regular & ((pol[:, 0] > 0) == (tone >= 4)) & (tone != 3) & (u[:, 6] < 0.3)
    at = _pick(P, "aspect_title", asp[:, 0] * 2 + pidx[:, 0], u2[:, 5])
    title[agrees] = S[at[agrees]]
    title[sarcasm] = S[_pick(P, "sarcasm_title", 0, u2[sarcasm, 5])]
    if inc_aspect >= 0 and incident.any():
        title[incident] = S[_pick(P, "incident_title", inc_aspect, u2[incident, 5])]
    no_title = (u[:, 7] < 0.08) & ~title_only
    title[no_title] = ""

    # item nouns
    noun = items.noun[item]
    text = np.asarray(
        [s.replace("{n}", w) if "{" in s else s for s, w in zip(text, noun)], dtype=object
    )
    title = np.asarray(
        [s.replace("{n}", w) if "{" in s else s for s, w in zip(title, noun)], dtype=object
    )

    # typos: one or two adjacent swaps or drops
    u4 = rng.random((n, 6))
    typo_rows = np.flatnonzero((u4[:, 0] < cfg.typo_rate) & (text != ""))
    for r in typo_rows:
        s = text[r]
        for k in range(1 + int(u4[r, 1] < 0.3)):
            if len(s) < 4:
                break
            p = 1 + int(u4[r, 2 + k] * (len(s) - 3))
            while p < len(s) - 2 and not (s[p].isalpha() and s[p + 1].isalpha()):
                p += 1
            if not (s[p].isalpha() and s[p + 1].isalpha()):
                break
            swap = u4[r, 4] < 0.5 and s[p] != s[p + 1]
            typo = s[:p] + s[p + 1] + s[p] + s[p + 2 :] if swap else s[:p] + s[p + 1 :]  # swap adjacent letters or drop one
            if not _UNFORTUNATE.search(typo[max(0, p - 8) : p + 8]):
                s = typo
        text[r] = s

    # emoji at the end of the body
    p_emoji = np.where(incident, max(cfg.emoji_rate, 0.5), cfg.emoji_rate) if cfg.emoji_rate > 0 else 0.0
    emo = (u4[:, 5] < p_emoji) & (text != "")
    eclass = np.where(sarcasm, 3, np.where(tone >= 4, 2, np.where(tone == 3, 1, 0)))
    rows = np.flatnonzero(emo)
    u_emoji = rng.random(n)  # one draw per review: a review's emoji never depends on other reviews
    if rows.size:
        e = S[_pick(P, "emoji", eclass[rows], u_emoji[rows])]
        text[rows] = text[rows] + " " + e

    return text, title, asp, pol, n_written
