"""profiles: per-user and per-item emotional aggregates (the second stage of emorec).

Input: scored reviews (reviews joined with ``review_scores``, see :mod:`sentiment.schema`),
optionally the item table. Output: one row per user (:func:`build_user_profiles`,
:func:`update_user_profiles`) and one row per item (:func:`build_item_profiles`). Column
contracts: :func:`user_profile_columns` / :func:`item_profile_columns` (and their
``*_dtypes``); :data:`USER_PROFILE_FIELDS` / :data:`ITEM_PROFILE_FIELDS` are the columns
that do not depend on the aspect set.
"""

from .config import ProfileConfig
from .items import (
    ITEM_ASPECT_PREFIXES,
    ITEM_PROFILE_FIELDS,
    ITEM_PROFILE_VERSION,
    build_item_profiles,
    item_profile_columns,
    item_profile_dtypes,
)
from .users import (
    USER_ASPECT_PREFIXES,
    USER_PROFILE_FIELDS,
    USER_PROFILE_VERSION,
    build_user_profiles,
    update_user_profiles,
    user_profile_columns,
    user_profile_dtypes,
)

__all__ = [
    "ITEM_ASPECT_PREFIXES", "ITEM_PROFILE_FIELDS", "ITEM_PROFILE_VERSION", "USER_ASPECT_PREFIXES",
    "USER_PROFILE_FIELDS", "USER_PROFILE_VERSION", "ProfileConfig", "build_item_profiles",
    "build_user_profiles", "item_profile_columns", "item_profile_dtypes", "update_user_profiles",
    "user_profile_columns", "user_profile_dtypes",
]
