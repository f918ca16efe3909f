"""The base of every emorec pydantic config: unknown fields fail with a message naming them."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .seeds import MAX_SEED

__all__ = ["Seed", "StrictConfig", "dataclass_from_dict", "explain_validation", "package_toml", "unknown_field_message"]

T = TypeVar("T")

#: A random seed field of a pydantic config (``0 .. MAX_SEED``, :mod:`common.seeds`).
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="random seed, 0 to 2**32 - 1")]


class StrictConfig(BaseModel):
    """A pydantic config that rejects unknown fields with a message naming them and listing the
    valid ones (``section`` names the config in the message). Every emorec config builds on it;
    a subclass may add settings (``model_config = ConfigDict(frozen=True)``), which pydantic
    merges with ``extra="forbid"``. A field with an alias is accepted under either name and
    listed under its alias (the name a config file uses)."""

    model_config = ConfigDict(extra="forbid")
    section: ClassVar[str] = "config"

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            names = {n: f.alias or n for n, f in cls.model_fields.items()}
            unknown = [k for k in data if k not in names and k not in names.values()]
            if unknown:
                raise ValueError(unknown_field_message(unknown, list(names.values()), what=cls.config_name()))
        return data

    @classmethod
    def config_name(cls) -> str:
        """How error messages name this config."""
        return cls.section

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Self:
        """Build a config from a mapping (a parsed TOML/JSON section); ``None`` gives the defaults.

        Raises
        ------
        ValueError
            On an unknown field (the message lists the valid ones) or an invalid value.
        """
        return cls.model_validate(dict(data or {}))


def explain_validation(exc: ValidationError) -> str:
    """pydantic's errors on one line: ``field: message; field: message``."""
    parts = []
    for e in exc.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in e["loc"])
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def unknown_field_message(unknown: list[str], valid: list[str], what: str = "config") -> str:
    """``unknown <what> field 'x' (did you mean 'y'?); valid fields: a, b, c``."""
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), valid, n=1)
        parts.append(repr(name) + (f" (did you mean {close[0]!r}?)" if close else ""))
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown {what} field{plural} {', '.join(parts)}; valid fields: {', '.join(valid)}"


def dataclass_from_dict(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """Build the dataclass config ``cls`` from a mapping (a saved ``config.json``).

    Raises
    ------
    ConfigError
        Naming the unknown keys (and listing the valid ones): a key is never dropped silently.
    """
    valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ConfigError(unknown_field_message(unknown, valid, what=what))
    return cls(**data)


def package_toml(package: str, name: str) -> dict[str, Any]:
    """The TOML data file ``name`` shipped inside ``package`` (e.g. ``default_aspects.toml``)."""
    return tomllib.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))
