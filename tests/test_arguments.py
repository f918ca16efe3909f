"""Numbers no run can use are refused where they enter, naming the flag or the field.

On the command line (argparse types from :mod:`jobs.arguments`), in the configs behind the flags
(``TrainingConfig``, the pydantic ``Seed`` fields, :func:`common.seeds.check_seed`) and in the
Python API (:func:`sentiment.finetune.finetune_polarity`, :func:`profiles.clusters.cluster_users`).
Before these checks, ``train-sentiment --epochs 0`` saved an untrained model, ``--max-train -5``
and ``segment --seed -1`` ended in an internal error, and ``train-emotions --augment-phrases -1``
in a pydantic traceback.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from emorec.common.config import explain_validation
from emorec.common.errors import ConfigError
from emorec.common.seeds import MAX_SEED, check_seed
from emorec.jobs.arguments import non_negative_int, positive_int, random_seed, whole_number
from emorec.jobs.cli import build_parser, main


@pytest.mark.parametrize("argv, flag, message", [
    (["train-sentiment", "--epochs", "0"], "--epochs", "must be at least 1, got 0"),
    (["train-sentiment", "--max-train", "-5"], "--max-train", "must be at least 1, got -5"),
    (["train-sentiment", "--max-length", "0"], "--max-length", "must be at least 1, got 0"),
    (["train-sentiment", "--threads", "0"], "--threads", "must be at least 1, got 0"),
    (["train-sentiment", "--seed", "-1"], "--seed", f"must be from 0 to {MAX_SEED}, got -1"),
    (["train", "--seed", str(MAX_SEED + 1)], "--seed", f"must be from 0 to {MAX_SEED}, got {MAX_SEED + 1}"),
    (["train", "--factors", "-2"], "--factors", "must be at least 1, got -2"),
    (["train", "--iterations", "0"], "--iterations", "must be at least 1, got 0"),
    (["recommend", "--top-n", "0"], "--top-n", "must be at least 1, got 0"),
    (["similar", "-n", "-1", "--item", "x"], "--top-n", "must be at least 1, got -1"),
    (["run", "--demo-users", "-3"], "--demo-users", "must be at least 1, got -3"),
    (["demo", "--items", "0"], "--items", "must be at least 1, got 0"),
    (["demo", "--seed", "-1"], "--seed", "must be from 0"),
    (["segment", "--seed", "-1"], "--seed", "must be from 0"),
    (["segment", "--clusters", "0"], "--clusters", "must be at least 1, got 0"),
    (["care", "--top", "0"], "--top", "must be at least 1, got 0"),
    (["monitor", "--window", "0"], "--window", "must be at least 1, got 0"),
    (["monitor", "--min-reviews", "-1"], "--min-reviews", "must be at least 1, got -1"),
    (["evaluate", "--k", "5", "0"], "--k", "must be at least 1, got 0"),
    (["evaluate", "--max-users", "0"], "--max-users", "must be at least 1, got 0"),
    (["evaluate", "--seed", "-4"], "--seed", "must be from 0"),
    (["train-sentiment", "--epochs", "two"], "--epochs", "expected a whole number, got 'two'"),
])
def test_the_command_line_refuses_numbers_no_run_can_use(tmp_path, capsys, argv, flag, message):
    with pytest.raises(SystemExit) as exit_:
        main([argv[0], "-w", str(tmp_path / "ws"), *argv[1:]])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert flag in err.splitlines()[-1] and message in err, err
    assert not (tmp_path / "ws").exists()  # refused before the workspace is touched


def test_the_command_line_keeps_its_defaults_and_takes_the_bounds(tmp_path):
    args = build_parser().parse_args(["train-sentiment", "-w", str(tmp_path)])
    assert (args.epochs, args.max_length, args.seed, args.max_train, args.threads) == (2, 160, 13, None, None)
    args = build_parser().parse_args(["train", "-w", str(tmp_path), "--seed", "0"])
    assert args.seed == 0
    args = build_parser().parse_args(["train", "-w", str(tmp_path), "--seed", str(MAX_SEED)])
    assert args.seed == MAX_SEED


def test_argument_types():
    assert positive_int("3") == 3 and non_negative_int("0") == 0 and random_seed("4294967295") == MAX_SEED
    for parse, text in ((positive_int, "0"), (non_negative_int, "-1"), (random_seed, "-1"), (random_seed, "4294967296"),
                        (whole_number(2, 5), "6"), (positive_int, "1.5"), (positive_int, "")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_train_emotions_refuses_bad_numbers_and_takes_a_precision(tmp_path, capsys, monkeypatch):
    import emorec.jobs.train_emotions as job

    data = tmp_path / "goemotions"
    data.mkdir()
    (data / "train.tsv").write_text("")
    seen: dict = {}
    monkeypatch.setattr(job, "train_emotion_model", lambda *a, **k: seen.update(training=a[2]))
    out = str(tmp_path / "out")
    assert job.main(["--data", str(data), "--out", out, "--precision", "bf16"]) == 0
    assert seen["training"].precision == "bf16"
    assert job.main(["--data", str(data), "--out", out]) == 0 and seen["training"].precision == "fp32"
    for argv, message in ((["--augment-phrases", "-1"], "argument --augment-phrases: must be at least 0, got -1"),
                          (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
                          (["--seed", "-1"], "argument --seed: must be from 0"),
                          (["--precision", "int8"], "argument --precision: invalid choice")):
        with pytest.raises(SystemExit):
            job.main(["--data", str(data), "--out", out, *argv])
        assert message in capsys.readouterr().err
    # a value argparse cannot check is refused by the config, as one line and exit code 2
    assert job.main(["--data", str(data), "--out", out, "--lr", "-1"]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be a whole number of at least 1, got 0"),
    ("epochs", 1.5, "epochs must be a whole number of at least 1, got 1.5"),
    ("epochs", True, "epochs must be a whole number"),
    ("lr", 0.0, "lr must be a number above 0"),
    ("lr", float("nan"), "lr must be a number above 0"),
    ("weight_decay", -0.1, "weight_decay must be a number of at least 0"),
    ("warmup_ratio", 1.0, "warmup_ratio must be a number from 0 up to (not including) 1"),
    ("max_length", 2, "max_length must be a whole number from 3 to 512, got 2"),
    ("max_length", 513, "max_length must be a whole number from 3 to 512, got 513"),
    ("max_tokens", 0, "max_tokens must be a whole number of at least 1"),
    ("max_batch", 0, "max_batch must be a whole number of at least 1"),
    ("eval_every", -1, "eval_every must be a whole number of at least 0"),
    ("patience", 0, "patience must be a whole number of at least 1"),
    ("emotion_weight", -1.0, "emotion_weight must be a number of at least 0"),
    ("seed", -1, "seed: a random seed must be a whole number from 0 to 4294967295, got -1"),
    ("threads", 0, "threads must be a whole number of at least 1 (or None), got 0"),
    ("max_steps", 0, "max_steps must be a whole number of at least 1 (or None)"),
    ("precision", "int8", "precision must be one of fp32, bf16, got 'int8'"),
])
def test_training_config_refuses_settings_no_run_can_use(field, value, message):
    from emorec.sentiment.finetune import SHOP_TRAINING
    from emorec.sentiment.training import TrainingConfig

    with pytest.raises(ConfigError) as exc:
        replace(SHOP_TRAINING, **{field: value})
    assert str(exc.value).startswith("training config: ") and message in str(exc.value)
    with pytest.raises(ConfigError, match=field):
        TrainingConfig.from_dict({**TrainingConfig().__dict__, field: value})


def test_training_config_takes_numpy_numbers_and_none():
    from emorec.sentiment.finetune import SHOP_TRAINING

    config = replace(SHOP_TRAINING, epochs=np.int64(3), lr=np.float32(1e-4), seed=np.int64(7), threads=None, max_steps=None)
    assert config.epochs == 3 and config.seed == 7


@pytest.mark.parametrize("kwargs, message", [
    ({"max_train": -5}, "max_train must be a whole number of at least 1 (or None), got -5"),
    ({"max_train": 0}, "max_train must be a whole number of at least 1"),
    ({"long_reviews": -1}, "long_reviews must be a whole number of at least 0 (or None), got -1"),
    ({"augment_share": -0.1}, "augment_share must be at least 0"),
    ({"test_share": 0.0}, "test_share and dev_share must each be above 0"),
    ({"test_share": 0.6, "dev_share": 0.4}, "together below 1"),
])
def test_finetune_refuses_bad_arguments_before_loading_anything(tmp_path, kwargs, message):
    from emorec.sentiment.finetune import finetune_polarity

    with pytest.raises(ConfigError, match="fine-tuning: ") as exc:  # the base model path does not exist: never reached
        finetune_polarity(["good", "bad"], [5, 1], ["u1", "u2"], base_model=tmp_path / "no-model", progress=False, **kwargs)
    assert message in str(exc.value)


def test_seeds_are_checked_in_one_place():
    assert check_seed(0) == 0 and check_seed(np.int64(MAX_SEED)) == MAX_SEED
    for bad in (-1, MAX_SEED + 1, 1.0, True, "3", None):
        with pytest.raises(ConfigError, match="my seed: a random seed must be a whole number from 0 to 4294967295"):
            check_seed(bad, "my seed")


def test_seed_fields_of_the_configs_are_bounded():
    from pydantic import ValidationError

    from emorec.jobs.demo_shop import DemoConfig
    from emorec.jobs.evaluation.config import ExperimentConfig
    from emorec.recommender.als import ALSConfig
    from emorec.recommender.bpr import BPRConfig
    from emorec.recommender.hybrid import HybridConfig
    from emorec.recommender.satisfaction import LightGBMConfig, MFConfig
    from emorec.sentiment.augment import AugmentConfig

    for cls in (ALSConfig, BPRConfig, HybridConfig):  # recommender configs raise ConfigError naming the field
        assert cls(seed=MAX_SEED).seed == MAX_SEED
        for bad in (-1, MAX_SEED + 1):
            with pytest.raises(ConfigError, match="seed: Input should be"):
                cls(seed=bad)
    for cls in (MFConfig, LightGBMConfig, AugmentConfig, DemoConfig):
        assert cls(seed=0).seed == 0
        with pytest.raises(ValidationError) as exc:
            cls(seed=-1)
        assert explain_validation(exc.value) == "seed: Input should be greater than or equal to 0"
    with pytest.raises(ValidationError, match="seed"):
        ExperimentConfig.model_validate({"variant": [{"name": "a", "model": "popular"}], "seed": MAX_SEED + 1})


def test_clustering_refuses_a_bad_seed():
    from emorec.profiles.clusters import cluster_users

    profiles = pd.DataFrame({"user_id": ["a", "b", "c", "d"]})
    with pytest.raises(ConfigError, match="clustering seed: a random seed must be"):
        cluster_users(profiles, seed=-1)
