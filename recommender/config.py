"""The config convention of every model, generator and service in ``recommender/``.

:class:`ModelConfig` is a pydantic model that rejects unknown fields by name (listing the valid
ones) and raises :class:`~emorec.common.errors.ConfigError` for any invalid value;
:func:`resolve_config` gives a component its config from a config object *or* keyword
parameters (both at once is an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError

from emorec.common.config import StrictConfig, explain_validation
from emorec.common.errors import ConfigError

C = TypeVar("C", bound="ModelConfig")


class ModelConfig(StrictConfig):
    """Base of every config in ``recommender/``: pydantic, unknown fields rejected by name, and
    any invalid value raised as :class:`~emorec.common.errors.ConfigError` (one line naming the
    setting) instead of pydantic's ``ValidationError``."""

    section: ClassVar[str] = "model"

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(f"invalid {type(self).config_name()} config: {explain_validation(exc)}") from None


def resolve_config(cls: type[C], config: Any, params: Mapping[str, Any], what: str) -> C:
    """The config of ``what``: ``config`` (a ``cls`` or a mapping of its fields) or ``params``.

    Both at once is a :class:`ConfigError`: a config object plus keyword arguments would keep
    one of them silently.
    """
    if config is not None and params:
        raise ConfigError(f"{what}: give either a config object or keyword parameters, not both "
                          f"(got a {type(config).__name__} and {', '.join(sorted(params))})")
    if config is None:
        return cls(**params)
    if isinstance(config, cls):
        return config
    if isinstance(config, Mapping):
        return cls(**config)
    raise ConfigError(f"{what} takes a {cls.__name__} (or a mapping of its fields), got a {type(config).__name__}")
