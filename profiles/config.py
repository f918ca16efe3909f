"""Configuration of the profile stage."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from emorec.common.config import StrictConfig


class ProfileConfig(StrictConfig):
    """How per-review features are aggregated into user and item profiles.

    Attributes
    ----------
    half_life_days
        Recency weighting of the ``recent_*`` columns: a review ``half_life_days`` older than
        the newest review *of the same user* (or item) counts half as much; reviews without a
        timestamp weigh 1. Default 180 days, so a user who was happy two years ago and is
        angry now reads as angry now. The reference is the profile's own last review, not the
        newest review in the data, so a profile depends only on its own reviews (which makes
        incremental updates exact, see :func:`profiles.update_user_profiles`).
    item_prior_strength
        Item aggregates are shrunk toward their category's mean (the global mean for items
        without a category) as if each item had this many extra reviews at that mean:
        ``confidence = n / (n + item_prior_strength)``. Default 10.
    negative_valence
        A review whose valence is below ``-negative_valence`` counts as negative (above
        ``+negative_valence``: positive). Default 0.05, VADER's neutral band.
    trend_window
        ``valence_trend`` is the least-squares slope of valence over a user's last
        ``trend_window`` reviews (at least 2). Default 5.
    min_aspect_mentions
        An aspect needs at least this many mentioning reviews of an item to be its
        ``top_strength`` or ``top_weakness``. Default 3.

    Unknown fields are rejected with a message that names them and lists the valid fields,
    whether the config is built with keywords or with :meth:`from_mapping`.

    Examples
    --------
    >>> ProfileConfig(half_life_days=90).half_life_days
    90.0
    >>> ProfileConfig.from_mapping({"half_lif": 3})  # doctest: +SKIP
    ValueError: unknown profile config field 'half_lif' (did you mean 'half_life_days'?); valid fields: ...
    """

    section: ClassVar[str] = "profile config"

    half_life_days: float = Field(180.0, gt=0)
    item_prior_strength: float = Field(10.0, ge=0)
    negative_valence: float = Field(0.05, ge=0, le=1)
    trend_window: int = Field(5, ge=2)
    min_aspect_mentions: int = Field(3, ge=1)
