"""The synthetic e-commerce examples (sentiment.augment) and the phrase suite's separation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from emorec.common.errors import InputError
from emorec.jobs.train_emotions import assemble_training, concat_examples, read_phrase_suite
from emorec.sentiment.augment import AugmentConfig, generate, normalize
from emorec.sentiment.labels import GOEMOTIONS_LABELS, POLARITY_LABELS
from emorec.sentiment.training import Examples

SUITE = Path(__file__).resolve().parent / "data" / "idiom_suite.csv"
NEG, NEU, POS = 0, 1, 2


def test_generation_is_seeded_and_sized():
    cfg = AugmentConfig(phrases=300, reviews=200, feelings=200, facts=50, seed=5)
    a, b = generate(cfg), generate(cfg)
    assert a.texts == b.texts and (a.polarity == b.polarity).all()
    assert generate(AugmentConfig(phrases=300, reviews=200, feelings=200, facts=50, seed=6)).texts != a.texts
    assert len(set(a.texts)) == len(a.texts) <= 750 and len(a) > 500
    assert set(np.unique(a.polarity)) == {NEG, NEU, POS}
    labelled = ~np.isnan(a.emotions[:, 0])
    assert (a.emotions[labelled].sum(1) == 1).all()  # one emotion per feeling or fact
    with pytest.raises(ValueError):
        AugmentConfig(phrases=-1)
    with pytest.raises(ValueError):
        AugmentConfig(unknown=1)


def test_templates_file_is_complete():
    """``sentiment/augment_templates.toml`` (package data) fills every placeholder its templates
    use, labels phrases negative or positive and feelings with GoEmotions labels."""
    from emorec.sentiment import augment

    values = {k: "x" for k in ("p", "part", "when", "person", "seller", "good", "bad", "problem", "topic", "event", "w", "w2")}
    templates = [t for _, t in augment.PHRASES] + [*augment.SARCASM_FAIL, *augment.SARCASM_FIXED, *augment.HEDGES,
                                                   *augment.FEELING_TEMPLATES, *augment.NEUTRAL_FACTS]
    templates += [t for table in (augment.OPENINGS, augment.CLOSINGS) for texts in table.values() for t in texts]
    templates += [t for sentences in augment.ASPECT_SENTENCES.values() for texts in sentences for t in texts]
    templates += [*augment.STORY, *(t for texts in augment.PLAIN.values() for t in texts)]
    assert len(templates) > 400 and all(t.format(**values) for t in templates if t)
    for t in augment.SARCASM_TEMPLATES:
        t.format(praise="x", praise_low="x", fail="x", fail_cap="x")
    assert {label for label, _ in augment.PHRASES} == {NEG, POS}
    assert set(augment.EMOJI) == {NEG, POS} and set(augment.OPENINGS) == set(augment.CLOSINGS) == {NEG, NEU, POS}
    assert set(augment.FEELINGS) <= set(GOEMOTIONS_LABELS) and all(len(w) >= 2 for w in augment.FEELINGS.values())
    assert set(augment.PLAIN) == {"positive", "negative", "mixed"}


def test_default_generation_is_the_shipped_models_training_data():
    """The default config still writes what the shipped model was trained on: its ``config.json``
    records the synthetic count after the reserved suite phrases were dropped."""
    import json

    from emorec.sentiment.transformer import SHIPPED_MODEL

    composition = json.loads((Path(SHIPPED_MODEL) / "config.json").read_text())["extra"]["train_composition"]
    ex = generate(AugmentConfig())
    assert len(ex) == composition["synthetic"] + composition["synthetic_dropped_as_reserved_phrases"]


def test_long_reviews_are_diluted_and_leave_the_other_kinds_alone():
    from emorec.sentiment import augment

    base = AugmentConfig(phrases=200, reviews=100, feelings=100, facts=20, seed=3)
    plain = generate(base)
    more = generate(base.model_copy(update={"long_reviews": 300}))
    assert set(plain.texts) <= set(more.texts)  # drawn after the other kinds: those are unchanged
    long = [(t, y) for t, y in zip(more.texts, more.polarity) if t not in set(plain.texts)]
    assert len(long) > 250 and {y for _, y in long} == {NEG, NEU, POS}
    sentences = np.array([len(re.findall(r"[.!?](?:\s|$)", t)) for t, _ in long])
    assert sentences.min() >= 3 and np.median(sentences) >= 6
    raw = " ".join([*augment.STORY, *augment.NEUTRAL_FACTS, *(t for texts in augment.PLAIN.values() for t in texts),
                    *(t for sentences in augment.ASPECT_SENTENCES.values() for texts in sentences for t in texts)])
    filled = [p for p in augment.PRODUCTS if not re.search(rf"\b{re.escape(p)}\b", raw)]  # never written literally
    for text, _ in long:  # one product per review
        named = {p for p in filled if re.search(rf"\b{re.escape(p)}\b", text)}
        assert len(named) <= 1 or any(a in b for a in named for b in named if a != b), (text, named)
    assert np.isnan(more.emotions[[more.texts.index(t) for t, _ in long]]).all()  # polarity only


@pytest.mark.parametrize("cue, label", [
    ("zero stars", NEG), ("save your money", NEG), ("returned", NEG), ("would not buy", NEG), ("thanks for nothing", NEG),
    ("worth every penny", POS), ("recommend * enough", POS), ("doesn t get any better", POS), ("no regrets", POS),
])
def test_idioms_carry_their_meaning(cue, label):
    """Every synthetic text containing an unambiguous idiom has that idiom's sign."""
    import re

    ex = generate(AugmentConfig(phrases=4000, reviews=0, feelings=0, facts=0))
    pattern = re.compile(r"\b" + re.escape(cue).replace(r"\*", ".*") + r"\b")
    hits = [y for t, y in zip(ex.texts, ex.polarity) if pattern.search(normalize(t))]
    assert hits and set(hits) == {label}, (cue, set(hits))


def test_feelings_have_the_polarity_of_their_emotion():
    ex = generate(AugmentConfig(phrases=0, reviews=0, feelings=600, facts=0))
    positive = {"joy", "gratitude", "relief", "pride", "excitement", "love", "admiration", "amusement", "approval", "optimism", "desire", "caring"}
    negative = {"anger", "annoyance", "disgust", "fear", "nervousness", "sadness", "disappointment", "embarrassment", "remorse", "grief", "disapproval"}
    for y, row in zip(ex.polarity, ex.emotions):
        emotion = GOEMOTIONS_LABELS[int(row.argmax())]
        expected = POS if emotion in positive else NEG if emotion in negative else NEU
        assert y == expected, emotion


def test_suite_file_is_valid_and_large_enough():
    suite = read_phrase_suite(SUITE)
    signed = suite.labels != NEU
    assert signed.sum() >= 300
    for split in ("train", "dev", "heldout"):
        labels = set(suite.labels[(suite.split == split) & signed].tolist())
        assert labels == {NEG, POS}, split
    assert (suite.split == "heldout").sum() >= 100
    assert len({normalize(t) for t in suite.texts}) == len(suite.texts)  # no near-duplicate phrases
    assert (SUITE.parent / "README.md").read_text().count("Apache-2.0") >= 1


def test_dev_and_heldout_phrases_never_reach_training():
    suite = read_phrase_suite(SUITE)
    goemotions = Examples(["a reddit comment"], np.array([NEU]), np.zeros((1, len(GOEMOTIONS_LABELS)), np.float32))
    train, composition, _generated = assemble_training(goemotions, suite, AugmentConfig())
    seen = {normalize(t) for t in train.texts}
    reserved = {normalize(t) for t, s in zip(suite.texts, suite.split) if s != "train"}
    assert not seen & reserved
    assert composition["synthetic_dropped_as_reserved_phrases"] > 0  # templates do write some of them
    assert {normalize(t) for t, s in zip(suite.texts, suite.split) if s == "train"} <= seen
    assert len(train) == sum(v for k, v in composition.items() if not k.startswith("synthetic_dropped"))
    assert np.isnan(train.emotions[-1]).all() and train.polarity[0] == NEU  # suite phrases teach polarity only


def test_suite_reader_names_file_and_line(tmp_path):
    bad = tmp_path / "suite.csv"
    bad.write_text("text,label,category,split\nfine,positive,x,train\nworse,angry,x,dev\n")
    with pytest.raises(InputError, match=r"suite.csv, line 3: label 'angry'"):
        read_phrase_suite(bad)
    bad.write_text("text,label\nfine,positive\n")
    with pytest.raises(InputError, match="missing column"):
        read_phrase_suite(bad)


def test_concat_fills_missing_targets():
    a = Examples(["x"], np.array([2]), None)
    b = Examples(["y"], None, np.ones((1, len(GOEMOTIONS_LABELS)), np.float32))
    c = concat_examples([a, b])
    assert c.polarity.tolist() == [2, -1] and np.isnan(c.emotions[0]).all() and (c.emotions[1] == 1).all()
    assert POLARITY_LABELS[2] == "positive"
