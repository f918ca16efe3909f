"""profiles: per-user and per-item emotional aggregates (the second stage of emorec)."""

from .config import ProfileConfig
from .items import ITEM_PROFILE_VERSION, build_item_profiles
from .users import USER_PROFILE_VERSION, build_user_profiles

__all__ = ["ITEM_PROFILE_VERSION", "USER_PROFILE_VERSION", "ProfileConfig", "build_item_profiles", "build_user_profiles"]
