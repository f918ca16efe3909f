"""The GoEmotions training job (reader, determinism) and the shipped emotion model."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from emorec.common.errors import InputError
from emorec.jobs.train_emotions import (
    DEFAULT_TRAINING,
    EVAL_FILE,
    carer_halves,
    main,
    read_carer,
    read_goemotions,
    read_groups,
    train_emotion_model,
)
from emorec.sentiment.augment import AugmentConfig
from emorec.sentiment.encoder import ADAPTER_FILE, EmotionEncoder
from emorec.sentiment.labels import EKMAN_GROUPS, GOEMOTIONS_LABELS, SENTIMENT_GROUPS

ROOT = Path(__file__).resolve().parents[1]
GOEMOTIONS = Path(__file__).resolve().parents[2] / "shared/data/goemotions"
CARER = Path(__file__).resolve().parents[2] / "shared/data/carer-val"
SUITE = Path(__file__).resolve().parent / "data" / "idiom_suite.csv"
SHIPPED = ROOT / "sentiment/models/default"
L = {name: i for i, name in enumerate(GOEMOTIONS_LABELS)}


def write_folder(folder: Path, rows: dict[str, list[str]]) -> Path:
    """A GoEmotions-shaped folder with the given TSV rows per split."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(GOEMOTIONS_LABELS) + "\n")
    (folder / "ekman_mapping.json").write_text(json.dumps({k: list(v) for k, v in EKMAN_GROUPS.items() if k != "neutral"}))
    (folder / "sentiment_dict.json").write_text(json.dumps({k: list(v) for k, v in SENTIMENT_GROUPS.items() if k != "neutral"}))
    for split, lines in rows.items():
        (folder / f"{split}.tsv").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


@pytest.fixture()
def tiny(tmp_path) -> Path:
    """40 train / 12 dev / 12 test synthetic comments."""
    phrases = [("I love this so much, thank you", f"{L['love']},{L['gratitude']}"), ("this makes me so angry", str(L["anger"])),
               ("what is going on here?", str(L["curiosity"])), ("it is a table", str(L["neutral"])),
               ("great, I'm so happy but also sad", f"{L['joy']},{L['sadness']}"), ("I am scared of that", str(L["fear"]))]
    rows = {split: [f"{phrases[i % 6][0]} #{i}\t{phrases[i % 6][1]}\t{split}{i}" for i in range(n)]
            for split, n in (("train", 40), ("dev", 12), ("test", 12))}
    return write_folder(tmp_path / "goemotions", rows)


def test_reader_multilabel_and_derived_polarity(tmp_path):
    rows = [f"Thanks, love it\t{L['gratitude']},{L['love']}\ta1", f"so annoying\t{L['annoyance']}\ta2",
            f"ok then\t{L['neutral']}\ta3", f"oh wow, really?\t{L['surprise']},{L['neutral']}\ta4",
            f"love it but it broke\t{L['love']},{L['disappointment']}\ta5", f"hmm, \"quoted\" text\t{L['curiosity']}\ta6"]
    data = read_goemotions(write_folder(tmp_path, {"train": rows}), splits=("train",))["train"]
    assert data.texts[5] == 'hmm, "quoted" text'
    assert data.emotions.shape == (6, 28) and data.emotions.dtype == np.float32
    assert data.emotions[0].nonzero()[0].tolist() == sorted([L["gratitude"], L["love"]])
    assert data.emotions.sum(1).tolist() == [2, 1, 1, 2, 2, 1]
    # POLARITY_LABELS = negative, neutral, positive; -1 when positive and negative are mixed
    assert data.polarity.tolist() == [2, 0, 1, 1, -1, 1]


@pytest.mark.parametrize("bad, message", [
    ("no tabs here", "line 2: expected 3 tab-separated fields"),
    ("text\t3,x\tid", "line 2: label ids must be comma-separated integers"),
    ("text\t3,28\tid", "line 2: unknown label id"),
    ("text\t\tid", "line 2: label ids"),
])
def test_reader_names_file_and_line_of_a_bad_row(tmp_path, bad, message):
    folder = write_folder(tmp_path, {"train": [f"fine\t{L['joy']}\tok1", bad, f"fine\t{L['joy']}\tok3"]})
    with pytest.raises(ValueError, match=message) as info:
        read_goemotions(folder, splits=("train",))
    assert "train.tsv" in str(info.value)


def test_reader_checks_label_order(tmp_path):
    folder = write_folder(tmp_path, {"train": ["x\t0\tid"]})
    (folder / "labels.txt").write_text("\n".join(reversed(GOEMOTIONS_LABELS)))
    with pytest.raises(ValueError, match=r"labels\.txt"):
        read_goemotions(folder, splits=("train",))


def test_tiny_training_is_deterministic_and_loadable(tiny, tmp_path):
    training = replace(DEFAULT_TRAINING, max_steps=3, eval_every=3, threads=2)
    reports = [train_emotion_model(tiny, tmp_path / name, training, progress=False) for name in ("a", "b")]
    a, b = ((tmp_path / name / ADAPTER_FILE).read_bytes() for name in ("a", "b"))
    assert a == b, "same seed and threads must give a bit-identical adapter"
    assert reports[0]["steps"] == 3 and reports[0]["seed"] == 13 and reports[0]["threads"] == 2
    report = json.loads((tmp_path / "a" / EVAL_FILE).read_text())
    for key in ("emotions_macro_f1", "ekman_macro_f1", "sentiment_macro_f1"):
        assert 0.0 <= report["test"][key] <= 1.0
    assert set(report["test"]["per_label_f1"]) == set(GOEMOTIONS_LABELS)
    assert report["test"]["polarity"]["n"] == 10  # 2 of 12 test rows mix joy and sadness
    model, _ = EmotionEncoder.from_pretrained(tmp_path / "a")
    assert len(model.config.emotion_thresholds) == 28 and model.config.version == "goemotions-minilm-lora-v3-seed13"
    assert set(model.config.extra["group_thresholds"]["ekman"]) == set(EKMAN_GROUPS)
    band = model.config.polarity_thresholds
    assert band["negative"] < band["positive"] and report["thresholds"]["domains"]["polarity"] == ["goemotions_dev"]


def test_tiny_training_under_bf16_records_its_precision(tiny, tmp_path):
    """``train-emotions --precision bf16``: the steps run under bfloat16 autocast, the saved model and its
    report say so, and the thresholds are still chosen (from fp32 predictions)."""
    training = replace(DEFAULT_TRAINING, max_steps=2, eval_every=2, threads=1, precision="bf16")
    report = train_emotion_model(tiny, tmp_path / "m", training, progress=False)
    assert report["training"]["precision"] == "bf16" and report["steps"] == 2
    model, _ = EmotionEncoder.from_pretrained(tmp_path / "m")
    assert model.config.extra["training"]["precision"] == "bf16"
    assert len(model.config.emotion_thresholds) == 28 and model.config.polarity_thresholds is not None


def test_tiny_training_with_phrases_and_carer(tiny, tmp_path):
    """The phrase suite and CARER calibrate (never train); eval.json reports their held-out parts."""
    carer = tmp_path / "carer"
    carer.mkdir()
    lines = [f"i feel so {w} today {i};{label}" for i, (w, label) in enumerate(
        [("happy", "joy"), ("angry", "anger"), ("scared", "fear"), ("sad", "sadness"), ("amazed", "surprise"), ("loving", "love")] * 4)]
    (carer / "val.txt").write_text("\n".join(lines) + "\n")
    training = replace(DEFAULT_TRAINING, max_steps=2, eval_every=2, threads=1)
    report = train_emotion_model(tiny, tmp_path / "m", training, progress=False, phrases=SUITE, carer=carer,
                                 augment=AugmentConfig(phrases=40, reviews=20, feelings=20, facts=5))
    comp = report["train_composition"]
    assert comp["goemotions"] == 40 and comp["phrase_suite_train"] == 181 and comp["synthetic"] > 50
    assert report["carer_evaluation_half"]["n"] == 12 and report["data"]["carer"]["calibration_rows"] == 12
    assert set(report["phrase_suite"]) >= {"train", "dev", "heldout", "heldout_not_generated"}
    assert report["phrase_suite"]["heldout"]["n"] == 239
    domains = report["thresholds"]["domains"]
    assert domains["polarity"] == ["carer_calibration", "goemotions_dev", "phrase_dev"]
    assert domains["ekman"] == ["carer_calibration", "goemotions_dev"]
    model, _ = EmotionEncoder.from_pretrained(tmp_path / "m")
    assert model.config.version == "goemotions-phrases-minilm-lora-v3-seed13"
    assert model.config.polarity_thresholds == report["thresholds"]["polarity"]


def test_carer_reader_and_halves(tmp_path):
    path = tmp_path / "val.txt"
    path.write_text("i feel great;joy\ni am cross;anger\n")
    data = read_carer(path)
    assert data.texts == ["i feel great", "i am cross"] and data.polarity().tolist() == [2, 0]
    y, labelled = data.ekman_targets()
    assert y[0, list(EKMAN_GROUPS).index("joy")] == 1 and not labelled[list(EKMAN_GROUPS).index("disgust")]
    path.write_text("fine;joy\nno label here\n")
    with pytest.raises(InputError, match=r"val\.txt, line 2"):
        read_carer(path)
    path.write_text("fine;joy\nworse;boredom\n")
    with pytest.raises(InputError, match="unknown label 'boredom'"):
        read_carer(path)
    a, b = carer_halves(11, seed=1)
    assert len(a) == 5 and len(b) == 6 and not set(a) & set(b) and (carer_halves(11, seed=1)[0] == a).all()


def test_main_reports_missing_data(tmp_path):
    assert main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2


def test_main_hands_the_augment_counts_over(tiny, tmp_path, monkeypatch):
    """``--augment-long-reviews`` reaches the augment config; the other counts keep their defaults."""
    import emorec.jobs.train_emotions as job

    seen: dict = {}
    monkeypatch.setattr(job, "train_emotion_model", lambda *a, **k: seen.update(k))
    assert main(["--data", str(tiny), "--out", str(tmp_path / "o"), "--augment-long-reviews", "7"]) == 0
    assert seen["augment"] == AugmentConfig(long_reviews=7)
    assert main(["--data", str(tiny), "--out", str(tmp_path / "o"), "--no-augment"]) == 0 and seen["augment"] is None


def test_shipped_model_is_small_and_loads():
    assert SHIPPED.is_dir(), f"the shipped model is missing at {SHIPPED}"
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert size < 5 * 2**20, f"shipped model is {size / 2**20:.1f} MB"
    assert {"config.json", ADAPTER_FILE, EVAL_FILE, "MODEL_CARD.md"} <= {p.name for p in SHIPPED.iterdir()}
    model, _ = EmotionEncoder.from_pretrained(SHIPPED)
    cfg = model.config
    assert len(cfg.emotion_thresholds) == 28 and all(0 < t < 1 for t in cfg.emotion_thresholds)
    assert cfg.emotion_labels == GOEMOTIONS_LABELS and cfg.version.startswith("goemotions-phrases-minilm-lora")
    report = json.loads((SHIPPED / EVAL_FILE).read_text())
    assert report["model"] == cfg.version
    # thresholds chosen on dev data of three domains, reported on data none of them saw
    assert cfg.polarity_thresholds == report["thresholds"]["polarity"]
    assert report["thresholds"]["domains"]["polarity"] == ["carer_calibration", "goemotions_dev", "phrase_dev"]
    assert report["thresholds"]["domains"]["ekman"] == ["carer_calibration", "goemotions_dev"]
    assert report["test"]["emotions_macro_f1"] >= 0.50
    assert report["carer_evaluation_half"]["n"] == 1000


def _real_data() -> Path:
    if not (GOEMOTIONS / "train.tsv").exists():
        pytest.skip(f"GoEmotions data not found at {GOEMOTIONS} (../shared/data is absent on this machine)")
    return GOEMOTIONS


@pytest.mark.realdata
def test_real_carer_reads():
    if not (CARER / "val.txt").exists():
        pytest.skip(f"CARER not found at {CARER} (../shared/data is absent on this machine)")
    data = read_carer(CARER)
    assert len(data.texts) == 2000
    assert {k: int((data.labels == k).sum()) for k in ("joy", "sadness", "anger", "fear", "love", "surprise")} == {
        "joy": 704, "sadness": 550, "anger": 275, "fear": 212, "love": 178, "surprise": 81}


@pytest.mark.realdata
def test_real_goemotions_reads_and_matches_label_groups():
    folder = _real_data()
    data = read_goemotions(folder)
    assert {k: len(v) for k, v in data.items()} == {"train": 43410, "dev": 5426, "test": 5427}
    assert all((v.emotions.sum(1) >= 1).all() for v in data.values())
    ekman, sentiment_groups = read_groups(folder)
    assert ekman == EKMAN_GROUPS and sentiment_groups == SENTIMENT_GROUPS


@pytest.mark.slow
@pytest.mark.realdata
def test_shipped_model_test_figures_match_eval_json():
    folder = _real_data()
    spec = importlib.util.spec_from_file_location("goemotions_benchmark", ROOT / "benchmarks/goemotions.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fresh = bench.run(SHIPPED, folder, threads=2)
    stored = json.loads((SHIPPED / EVAL_FILE).read_text())["test"]
    for key in ("emotions_macro_f1", "ekman_macro_f1", "sentiment_macro_f1"):
        assert fresh[key] == pytest.approx(stored[key], abs=1e-3), key
    assert fresh["polarity"]["macro_f1"] == pytest.approx(stored["polarity"]["macro_f1"], abs=1e-3)
