"""One config convention: every pydantic config is a StrictConfig; dataclass configs reject unknown keys."""

import importlib
import inspect
import json
import pkgutil

import pytest
from conftest import ROOT
from pydantic import BaseModel

from emorec.common.config import StrictConfig
from emorec.common.errors import ConfigError

STAGES = ("common", "sentiment", "profiles", "recommender", "jobs")


def _modules():
    for stage in STAGES:
        pkg = importlib.import_module(f"emorec.{stage}")
        yield pkg
        for info in pkgutil.walk_packages(pkg.__path__, f"emorec.{stage}."):
            if ".spark" in info.name:  # needs pyspark (an extra)
                continue
            yield importlib.import_module(info.name)


def test_every_pydantic_config_is_a_strict_config():
    models = {obj for m in _modules() for _, obj in inspect.getmembers(m, inspect.isclass)
              if issubclass(obj, BaseModel) and obj.__module__.startswith("emorec.")}
    assert len(models) > 20  # the walk found the configs
    loose = sorted(f"{c.__module__}.{c.__qualname__}" for c in models if not issubclass(c, StrictConfig))
    assert not loose, f"pydantic models that are not StrictConfig: {loose}"


def test_strict_config_names_the_unknown_field_and_accepts_aliases():
    from emorec.profiles.segments import SegmentConfig

    seg = [{"name": "unhappy", "rules": [["recent_valence", "<", 0]]}]
    assert SegmentConfig.model_validate({"segment": seg}).names == SegmentConfig.model_validate({"segments": seg}).names
    with pytest.raises(ValueError, match=r"unknown segment config field 'segmnt' \(did you mean 'segment'"):
        SegmentConfig.model_validate({"segmnt": seg})


def test_dataclass_configs_reject_unknown_keys_and_the_shipped_model_loads():
    from emorec.sentiment.encoder import EncoderConfig
    from emorec.sentiment.training import TrainingConfig

    saved = json.loads((ROOT / "sentiment/models/default/config.json").read_text())
    config = EncoderConfig.from_dict(saved)
    assert config.emotion_labels == tuple(saved["emotion_labels"]) and config.version == saved["version"]
    with pytest.raises(ConfigError, match="unknown encoder config field 'lora_rank'"):
        EncoderConfig.from_dict({**saved, "lora_rank": 4})
    assert TrainingConfig.from_dict({"epochs": 1}).epochs == 1
    with pytest.raises(ConfigError, match=r"unknown training config field 'epoch' \(did you mean 'epochs'"):
        TrainingConfig.from_dict({"epoch": 1})
