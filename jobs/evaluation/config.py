"""What ``emorec evaluate`` compares: variants, split, metrics and statistics, from TOML/YAML/JSON.

A config file names the variants and, optionally, the protocol::

    name = "hybrid-vs-als"
    baseline = "A"                      # default: the first variant
    ks = [5, 10, 20]
    primary_metric = "ndcg@10"

    [split]
    method = "leave_last_out"           # or "global_cutoff" (with cutoff = "2014-01-01"), "random_holdout"

    [[variant]]
    name = "A"
    model = "als"
    params = { factors = 32 }

    [[variant]]
    name = "B"
    model = "hybrid"

Every section rejects unknown fields, naming them and listing the valid ones. Model names and
model parameters are checked by :class:`recommender.service.ServiceConfig` before anything is
trained (:func:`check_variants`), so a typo fails at once instead of after an hour of training.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from emorec.common.config import Seed, StrictConfig, explain_validation, unknown_field_message
from emorec.common.errors import ConfigError
from emorec.recommender.outcomes import OutcomeConfig

__all__ = [
    "OUTCOME_METRICS", "BreakdownConfig", "ExperimentConfig", "SplitConfig", "StatsConfig", "TuningConfig", "VariantConfig",
    "check_variants", "load_config", "yaml_available",
]

_VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
#: Per-user metric families computed for every k (names as in ``recommender.metrics``).
ACCURACY_METRICS: tuple[str, ...] = ("hr", "recall", "precision", "ndcg", "map", "mrr")
#: Per-user beyond-accuracy metrics computed for every k (see :mod:`jobs.evaluation.beyond`).
BEYOND_METRICS: tuple[str, ...] = ("novelty", "ild", "long_tail", "arp", "emotional_fit")
#: Outcome-aware metrics computed for every k when the test reviews have stars or scores
#: (``recommender.metrics.outcome_metrics``); ``regret`` is lower-is-better.
OUTCOME_METRICS: tuple[str, ...] = ("sat_hr", "sat_ndcg", "regret")
#: Metrics where lower is better: never the primary metric (the verdict reads "beats" as higher).
LOWER_IS_BETTER: tuple[str, ...] = ("regret",)


class _Strict(StrictConfig):
    """A config section that names unknown fields and lists the valid ones."""

    @classmethod
    def config_name(cls) -> str:  # messages name the TOML section: "unknown [split] field ..."
        return f"[{cls.section}]"


class TuningConfig(_Strict):
    """A grid of parameter values searched on the validation split."""

    section: ClassVar[str] = "tune"

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    trials: int = Field(8, ge=1)


class VariantConfig(_Strict):
    """One variant: a model, its parameters, optionally a tuning grid."""

    section: ClassVar[str] = "variant"

    name: str
    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    #: Optional grid searched on the validation split (``trials`` combinations, seeded).
    tune: TuningConfig | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _VARIANT_NAME.match(v):
            raise ConfigError(f"variant name {v!r} must be 1-64 letters, digits, '_', '.', '+' or '-' (it names files and columns)")
        return v


class SplitConfig(_Strict):
    """How reviews are split into training and test."""

    section: ClassVar[str] = "split"

    method: Literal["leave_last_out", "global_cutoff", "random_holdout"] = "leave_last_out"
    #: Reviews after this time are test reviews, those at or before it train (``global_cutoff`` only; ISO date/time).
    cutoff: str | None = None
    #: Share of each user's reviews held out (``random_holdout`` only).
    fraction: float = Field(0.2, gt=0, lt=1)
    #: Users with fewer reviews are excluded from per-user splits (counted in the report).
    min_history: int = Field(2, ge=2)
    #: Evaluate at most this many test users (a seeded sample; all when unset).
    max_users: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check_cutoff(self) -> SplitConfig:
        if self.method == "global_cutoff" and not self.cutoff:
            raise ConfigError("split method 'global_cutoff' needs cutoff = \"YYYY-MM-DD\"")
        if self.method != "global_cutoff" and self.cutoff:
            raise ConfigError(f"cutoff is only used by split method 'global_cutoff', not {self.method!r}")
        return self


class StatsConfig(_Strict):
    """Confidence intervals, tests and the multiple-comparison correction."""

    section: ClassVar[str] = "stats"

    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.8, gt=0, lt=1)
    bootstrap: int = Field(2000, ge=100)
    permutations: int = Field(5000, ge=100)
    #: Multiple-comparison correction across the variants compared with the baseline.
    correction: Literal["holm", "bonferroni", "none"] = "holm"
    #: The p-value that decides significance (the others are reported too).
    test: Literal["randomization", "t", "wilcoxon"] = "randomization"


class BreakdownConfig(_Strict):
    """Where B wins and where it loses: segments, activity, item popularity."""

    section: ClassVar[str] = "breakdown"

    #: Segment rules (TOML, as for ``emorec segment``); the shipped defaults when unset.
    segments: str | None = None
    #: Lower edges of the activity bins, in training reviews per user.
    activity_bins: list[int] = Field(default_factory=lambda: [1, 3, 6, 11])
    #: Share of the catalogue (most reviewed first) that is the "head"; the rest is the long tail.
    head_share: float = Field(0.2, gt=0, lt=1)
    #: Groups with fewer test users are reported but never get a verdict.
    min_users: int = Field(20, ge=1)

    @field_validator("activity_bins")
    @classmethod
    def _check_bins(cls, v: list[int]) -> list[int]:
        if not v or any(b < 0 for b in v) or sorted(set(v)) != v:
            raise ConfigError(f"activity_bins must be strictly increasing non-negative integers, got {v}")
        return v


class EmotionalFitConfig(_Strict):
    """How often recommended items are praised for the aspects the user cares about."""

    section: ClassVar[str] = "emotional_fit"

    #: An aspect a user mentions in at least this share of their reviews is one they care about.
    care_share: float = Field(0.2, gt=0, le=1)
    #: At most this many aspects per user (highest share first).
    max_aspects: int = Field(2, ge=1)
    #: An item is praised for an aspect when its (shrunk) aspect strength is at least this ...
    praise_threshold: float = Field(0.2, gt=-1, le=1)
    #: ... and at least this many training reviews mention the aspect.
    min_mentions: int = Field(3, ge=1)


class ExperimentConfig(_Strict):
    """The whole experiment."""

    section: ClassVar[str] = "evaluation config"

    name: str = "evaluation"
    variants: list[VariantConfig] = Field(min_length=1, alias="variant")
    baseline: str | None = None
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20])
    primary_metric: str = "ndcg@10"
    seed: Seed = 0
    split: SplitConfig = Field(default_factory=SplitConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    breakdown: BreakdownConfig = Field(default_factory=BreakdownConfig)
    emotional_fit: EmotionalFitConfig = Field(default_factory=EmotionalFitConfig)
    #: What makes a held-out review satisfied / regretted (``sat_*`` and ``regret`` metrics).
    outcome: OutcomeConfig = Field(default_factory=OutcomeConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            valid = [f for f in cls.model_fields if f != "variants"] + ["variant"]
            unknown = [k for k in data if k not in valid and k != "variants"]
            if unknown:
                raise ConfigError(unknown_field_message(unknown, valid, what="evaluation config"))
        return data

    @field_validator("ks")
    @classmethod
    def _check_ks(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ConfigError(f"ks must be positive integers, got {v}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        names = [v.name for v in self.variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"variant names must be unique; repeated: {', '.join(dup)}")
        if self.baseline is None:
            self.baseline = names[0]
        elif self.baseline not in names:
            raise ConfigError(f"baseline {self.baseline!r} is not a variant; variants: {', '.join(names)}")
        metric, _, k = self.primary_metric.partition("@")
        if metric in LOWER_IS_BETTER:
            raise ValueError(f"primary_metric {self.primary_metric!r}: {metric} is lower-is-better and cannot decide "
                             "the verdict; use sat_ndcg or sat_hr (it is still measured and compared)")
        valid = ACCURACY_METRICS + OUTCOME_METRICS + BEYOND_METRICS
        if metric not in valid or not k.isdigit() or int(k) not in self.ks:
            raise ConfigError(f"primary_metric {self.primary_metric!r} must be <metric>@<k> with metric one of "
                             f"{', '.join(valid)} and k one of ks {self.ks}")
        return self

    @property
    def max_k(self) -> int:
        return max(self.ks)

    def variant(self, name: str) -> VariantConfig:
        return next(v for v in self.variants if v.name == name)


def yaml_available() -> bool:
    """Whether YAML configs can be read (PyYAML importable)."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        return False
    return True


def _parse(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        if suffix in (".yaml", ".yml"):
            if not yaml_available():
                raise ConfigError(f"{path}: YAML configs need PyYAML (pip install pyyaml); or write the config as TOML or JSON")
            import yaml

            data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: the YAML document must be a mapping, got {type(data).__name__}")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        raise
    raise ConfigError(f"{path}: unknown config format {suffix or '(no suffix)'!r}; use .toml, .yaml/.yml or .json")


def load_config(source: str | Path | Mapping[str, Any]) -> ExperimentConfig:
    """Read and validate an experiment config (a TOML/YAML/JSON file or a mapping).

    Raises
    ------
    ValueError
        Unreadable file or invalid config; the message names the file and the offending field.
    FileNotFoundError
        ``source`` is a path that does not exist.
    """
    where = "config"
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"evaluation config {path} does not exist")
        data, where = _parse(path), str(path)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {explain_validation(exc)}") from None


def service_config(variant: VariantConfig, params: Mapping[str, Any] | None = None):
    """The :class:`recommender.service.ServiceConfig` that trains ``variant`` (``params`` override)."""
    from emorec.recommender.service import ServiceConfig

    merged = {**variant.params, **dict(params or {})}
    try:
        return ServiceConfig(model=variant.model, params=merged)
    except ValidationError as exc:
        raise ConfigError(f"variant {variant.name!r} (model {variant.model!r}): {explain_validation(exc)}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"variant {variant.name!r} (model {variant.model!r}): {exc}") from None


def check_variants(config: ExperimentConfig) -> None:
    """Fail before any training when a variant names an unknown model or parameter.

    Also checks every value of a variant's tuning grid.
    """
    for v in config.variants:
        service_config(v)
        if v.tune:
            for key, values in v.tune.grid.items():
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"variant {v.name!r}: tune.grid.{key} must be a non-empty list")
                for value in values:
                    service_config(v, {key: value})
