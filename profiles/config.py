"""Configuration of the profile stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProfileConfig(BaseModel):
    """How per-review features are aggregated into user and item profiles.

    Attributes
    ----------
    half_life_days
        Recency weighting: a review ``half_life_days`` older than the newest review in the
        data counts half as much. Default 180 days, so a user who was happy two years ago
        and is angry now reads as angry now.
    item_prior_strength
        Item aggregates are shrunk toward the global mean as if each item had this many extra
        reviews at the global mean (``confidence = n / (n + item_prior_strength)``).
    negative_valence
        A review whose valence is below ``-negative_valence`` counts as negative.
    """

    model_config = ConfigDict(extra="forbid")

    half_life_days: float = Field(180.0, gt=0)
    item_prior_strength: float = Field(10.0, ge=0)
    negative_valence: float = Field(0.05, ge=0, le=1)
