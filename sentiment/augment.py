"""Synthetic e-commerce training text: idioms, negation, sarcasm, whole reviews and feelings.

GoEmotions is Reddit; shops write "would not buy again", "cannot recommend it enough", "save
your money", "returned it" and "thanks for nothing", which a Reddit-trained polarity head reads
backwards. This module writes labelled examples of those constructions from templates (written
for emorec, not taken from any dataset; they and the word lists are data, in
``sentiment/augment_templates.toml``) crossed with products, parts and aspects:

- ``phrase``: one-line idioms, negated praise and complaints, sarcasm, contrast, emoji and
  slang, labelled negative / positive (and some factual neutral lines);
- ``review``: 2-5 sentence reviews put together from aspect sentences, labelled positive,
  negative, or neutral when they are lukewarm or evenly mixed (what 3 stars usually means);
- ``long_review``: longer reviews diluted by story and fact around plain evaluative sentences
  ("I had to send it back"), the way real reviews read (off by default);
- ``feeling``: first-person feeling statements in a shopping context ("I was so relieved when
  the charger finally arrived"), labelled with one GoEmotions emotion and its polarity, so the
  emotion head sees emotions outside Reddit.

Everything is seeded: the same config gives the same examples on every machine.
:func:`generate` returns :class:`~sentiment.training.Examples` (``emotions`` rows are NaN for
``phrase`` and ``review`` examples, which teach only the polarity head).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
from pydantic import ConfigDict, NonNegativeInt

from emorec.common.config import Seed, StrictConfig, package_toml

from .labels import GOEMOTIONS_LABELS, POLARITY_LABELS, SENTIMENT_GROUPS

NEG, NEU, POS = (POLARITY_LABELS.index(x) for x in ("negative", "neutral", "positive"))
_TEMPLATES_FILE = "augment_templates.toml"

#: The templates and word lists, read once from ``augment_templates.toml`` next to this module
#: (data, not code: see that file for what each list is and why its order must be kept).
_TEMPLATES: dict[str, Any] = package_toml(__package__, _TEMPLATES_FILE)
_POLARITY = {name: POLARITY_LABELS.index(name) for name in POLARITY_LABELS}


def _by_polarity(table: dict[str, list[str]]) -> dict[int, tuple[str, ...]]:
    """``{"positive": [...], ...}`` of the templates file as ``{POS: (...), ...}`` (the file's order)."""
    return {_POLARITY[name]: tuple(texts) for name, texts in table.items()}


_PLACEHOLDERS: dict[str, list[str]] = _TEMPLATES["placeholders"]
#: Products by shop type; ``{p}`` in a template is one of them.
PRODUCTS: tuple[str, ...] = tuple(_PLACEHOLDERS["p"])
#: Parts that break; ``{part}``.
PARTS: tuple[str, ...] = tuple(_PLACEHOLDERS["part"])
#: Times; ``{when}``.
WHEN: tuple[str, ...] = tuple(_PLACEHOLDERS["when"])
#: ``{person}``, ``{seller}``, ``{good}``, ``{bad}``, ``{problem}``.
PERSONS: tuple[str, ...] = tuple(_PLACEHOLDERS["person"])
SELLERS: tuple[str, ...] = tuple(_PLACEHOLDERS["seller"])
GOOD_WORDS: tuple[str, ...] = tuple(_PLACEHOLDERS["good"])
BAD_WORDS: tuple[str, ...] = tuple(_PLACEHOLDERS["bad"])
PROBLEM_WORDS: tuple[str, ...] = tuple(_PLACEHOLDERS["problem"])
#: Topics and events of everyday feeling statements; ``{topic}``, ``{event}``.
TOPICS: tuple[str, ...] = tuple(_PLACEHOLDERS["topic"])
EVENTS: tuple[str, ...] = tuple(_PLACEHOLDERS["event"])

#: One-line templates, ``(polarity, template)``: idioms, negation, money, returns, stars, advice.
PHRASES: tuple[tuple[int, str], ...] = tuple(
    (_POLARITY[run["polarity"]], template) for run in _TEMPLATES["phrases"] for template in run["templates"]
)
#: Sarcasm: praise words followed by a failure, all negative.
SARCASM_PRAISE: tuple[str, ...] = tuple(_TEMPLATES["sarcasm"]["praise"])
SARCASM_FAIL: tuple[str, ...] = tuple(_TEMPLATES["sarcasm"]["fail"])
SARCASM_TEMPLATES: tuple[str, ...] = tuple(_TEMPLATES["sarcasm"]["templates"])
SARCASM_FIXED: tuple[str, ...] = tuple(_TEMPLATES["sarcasm"]["fixed"])
#: Emoji appended to a short sentence of the same polarity, or standing alone.
EMOJI: dict[int, tuple[str, ...]] = _by_polarity(_TEMPLATES["emoji"])

#: Aspect sentences for whole reviews: ``aspect -> (positive, negative, lukewarm)``.
ASPECT_SENTENCES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    aspect: (tuple(s["positive"]), tuple(s["negative"]), tuple(s["lukewarm"]))
    for aspect, s in _TEMPLATES["review"]["aspects"].items()
}
OPENINGS: dict[int, tuple[str, ...]] = _by_polarity(_TEMPLATES["review"]["openings"])
#: Hedged sentences that 3-star reviews are made of: it works, with a but.
HEDGES: tuple[str, ...] = tuple(_TEMPLATES["review"]["hedges"])
CLOSINGS: dict[int, tuple[str, ...]] = _by_polarity(_TEMPLATES["review"]["closings"])

#: Feeling words per GoEmotions label (first-person statements; ``feeling`` examples).
FEELINGS: dict[str, tuple[str, ...]] = {label: tuple(words) for label, words in _TEMPLATES["feeling"]["words"].items()}
FEELING_TEMPLATES: tuple[str, ...] = tuple(_TEMPLATES["feeling"]["templates"])
#: Factual, neutral lines.
NEUTRAL_FACTS: tuple[str, ...] = tuple(_TEMPLATES["fact"]["templates"])
#: Story sentences and plain evaluative sentences (no emotion word) of long reviews.
STORY: tuple[str, ...] = tuple(_TEMPLATES["long_review"]["story"])
PLAIN: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _TEMPLATES["long_review"]["plain"].items()}
#: What surrounds a long review's evaluative sentences: story and factual lines.
_LONG_CONTEXT: tuple[str, ...] = STORY + NEUTRAL_FACTS
#: The (positive, negative, lukewarm) sentence pools of every aspect, in ``ASPECT_SENTENCES`` order.
_ASPECT_TRIPLES = tuple(ASPECT_SENTENCES.values())


class AugmentConfig(StrictConfig):
    """How many synthetic examples of each kind :func:`generate` writes.

    Attributes
    ----------
    phrases
        One-line idioms, negation, sarcasm, emoji and slang (polarity only).
    reviews
        Whole reviews of 2-5 sentences (polarity only; lukewarm and mixed ones are neutral).
    feelings
        First-person feeling statements with a GoEmotions label (emotions and polarity).
    facts
        Factual lines (neutral polarity, ``neutral`` emotion).
    long_reviews
        Long reviews of 3-13 sentences, mostly story and fact around plain evaluative sentences,
        the way real reviews are written (polarity only; 0 in the shipped model's training data).
    seed
        Random seed.
    """

    model_config = ConfigDict(frozen=True)
    section: ClassVar[str] = "augment config"

    phrases: NonNegativeInt = 5000
    reviews: NonNegativeInt = 5000
    feelings: NonNegativeInt = 6000
    facts: NonNegativeInt = 500
    long_reviews: NonNegativeInt = 0
    seed: Seed = 13


def _fill(template: str, rng: np.random.Generator) -> str:
    values = {
        "p": PRODUCTS[rng.integers(len(PRODUCTS))], "part": PARTS[rng.integers(len(PARTS))], "when": WHEN[rng.integers(len(WHEN))],
        "person": PERSONS[rng.integers(len(PERSONS))], "seller": SELLERS[rng.integers(len(SELLERS))],
        "good": GOOD_WORDS[rng.integers(len(GOOD_WORDS))], "bad": BAD_WORDS[rng.integers(len(BAD_WORDS))],
        "problem": PROBLEM_WORDS[rng.integers(len(PROBLEM_WORDS))], "topic": TOPICS[rng.integers(len(TOPICS))],
        "event": EVENTS[rng.integers(len(EVENTS))],
    }
    return template.format(**values)


def _vary(text: str, rng: np.random.Generator) -> str:
    """Surface noise shops' reviews have: lower case, no final stop, exclamation, all caps."""
    r = rng.random()
    if r < 0.15:
        text = text.lower()
    elif r < 0.22:
        text = text.rstrip(".") + "!"
    elif r < 0.27:
        text = text.rstrip(".")
    elif r < 0.29:
        text = text.upper()
    return text


def _phrase(rng: np.random.Generator) -> tuple[str, int]:
    r = rng.random()
    if r < 0.62:
        label, template = PHRASES[rng.integers(len(PHRASES))]
        text = _fill(template, rng)
    elif r < 0.77:
        label = NEG
        if rng.random() < 0.4:
            text = _fill(SARCASM_FIXED[rng.integers(len(SARCASM_FIXED))], rng)
        else:
            praise = SARCASM_PRAISE[rng.integers(len(SARCASM_PRAISE))]
            fail = _fill(SARCASM_FAIL[rng.integers(len(SARCASM_FAIL))], rng)
            template = SARCASM_TEMPLATES[rng.integers(len(SARCASM_TEMPLATES))]
            text = template.format(praise=praise, praise_low=praise.lower(), fail=fail, fail_cap=fail[:1].upper() + fail[1:])
    elif r < 0.9:  # an emoji after a short sentence of the same polarity, or emoji alone
        label = POS if rng.random() < 0.5 else NEG
        emoji = EMOJI[label][rng.integers(len(EMOJI[label]))]
        same = [t for lab, t in PHRASES if lab == label and len(t) < 40]
        if rng.random() < 0.2:
            text = emoji * int(rng.integers(1, 4))
        else:
            text = _fill(same[rng.integers(len(same))], rng).rstrip(".") + " " + emoji
    else:  # an aspect sentence on its own
        aspect = list(ASPECT_SENTENCES)[rng.integers(len(ASPECT_SENTENCES))]
        label = POS if rng.random() < 0.5 else NEG
        options = ASPECT_SENTENCES[aspect][0 if label == POS else 1]
        text = _fill(options[rng.integers(len(options))], rng)
    return _vary(text, rng), label


def _review(rng: np.random.Generator) -> tuple[str, int]:
    label = (NEG, NEU, POS)[rng.integers(3)]
    aspects = list(ASPECT_SENTENCES)
    chosen = [aspects[i] for i in rng.choice(len(aspects), size=int(rng.integers(1, 4)), replace=False)]
    sentences = [OPENINGS[label][rng.integers(len(OPENINGS[label]))]]
    for k, aspect in enumerate(chosen):
        pos, neg, luke = ASPECT_SENTENCES[aspect]
        if label == NEU:  # lukewarm, hedged, or one good and one bad point
            r = rng.random()
            pool = luke if r < 0.4 else HEDGES if r < 0.6 else (pos if k % 2 == 0 else neg)
        else:
            main, minor = (pos, neg) if label == POS else (neg, pos)
            pool = minor if (k > 0 and rng.random() < 0.25) else main
        sentences.append(pool[rng.integers(len(pool))])
    closing = CLOSINGS[label][rng.integers(len(CLOSINGS[label]))]
    if closing:
        sentences.append(closing)
    return " ".join(_fill(s, rng) for s in sentences), label


def _pick(pool: tuple[str, ...], rng: np.random.Generator) -> str:
    return pool[rng.integers(len(pool))]


def _long_review(rng: np.random.Generator) -> tuple[str, int]:
    """A review diluted by story and fact; its label rests on its evaluative sentences, which
    are aspect sentences, plain ones without an emotion word, and for neutral reviews lukewarm,
    hedged or evenly mixed ones."""
    label = (NEG, NEU, POS)[rng.integers(3)]
    sentences = [_pick(OPENINGS[label], rng)] if rng.random() < 0.5 else []
    sentences += [_pick(_LONG_CONTEXT, rng) for _ in range(int(rng.integers(1, 4)))]
    for k in range(int(rng.integers(2, 5))):
        pos, neg, luke = _pick(_ASPECT_TRIPLES, rng)
        r = rng.random()
        if label == NEU:
            pool = (luke if r < 0.3 else HEDGES if r < 0.45 else PLAIN["mixed"] if r < 0.6
                    else pos + PLAIN["positive"] if k % 2 == 0 else neg + PLAIN["negative"])
        elif label == POS:
            pool = PLAIN["positive"] if r < 0.4 else pos if r < 0.85 else luke
        else:
            pool = PLAIN["negative"] if r < 0.5 else neg if r < 0.9 else luke
        sentences.append(_pick(pool, rng))
        if rng.random() < 0.3:
            sentences.append(_pick(_LONG_CONTEXT, rng))
    closing = _pick(CLOSINGS[label], rng)
    if closing and rng.random() < 0.7:
        sentences.append(closing)
    return _fill(" ".join(sentences), rng), label  # one product, part, person and time per review


def _feeling(rng: np.random.Generator) -> tuple[str, int, str]:
    labels = list(FEELINGS)
    emotion = labels[rng.integers(len(labels))]
    words = FEELINGS[emotion]
    template = FEELING_TEMPLATES[rng.integers(len(FEELING_TEMPLATES))]
    first, second = rng.choice(len(words), size=2, replace=False)
    text = _fill(template.replace("{w}", words[first]).replace("{w2}", words[second]), rng)
    polarity = POS if emotion in SENTIMENT_GROUPS["positive"] else NEG if emotion in SENTIMENT_GROUPS["negative"] else NEU
    return _vary(text, rng), polarity, emotion


def generate(config: AugmentConfig | None = None):
    """Synthetic labelled examples (see the module docstring), in a seeded random order.

    Returns
    -------
    sentiment.training.Examples
        ``texts``, ``polarity`` (class index per text) and ``emotions`` (``n x 28``: the one
        emotion of a ``feeling`` example, ``neutral`` for a fact, NaN rows for phrases and
        reviews). Duplicate texts are dropped (the first label wins).
    """
    from .training import Examples

    config = config or AugmentConfig()
    rng = np.random.default_rng(config.seed)
    texts: list[str] = []
    polarity: list[int] = []
    emotions: list[np.ndarray] = []
    unlabelled = np.full(len(GOEMOTIONS_LABELS), np.nan, np.float32)

    def one_hot(label: str) -> np.ndarray:
        v = np.zeros(len(GOEMOTIONS_LABELS), np.float32)
        v[GOEMOTIONS_LABELS.index(label)] = 1.0
        return v

    def add(text: str, label: int, emotion: np.ndarray) -> None:
        texts.append(text)
        polarity.append(label)
        emotions.append(emotion)

    for _ in range(config.phrases):
        add(*_phrase(rng), unlabelled)
    for _ in range(config.reviews):
        add(*_review(rng), unlabelled)
    for _ in range(config.feelings):
        text, label, emotion = _feeling(rng)
        add(text, label, one_hot(emotion))
    for _ in range(config.facts):
        add(_vary(_fill(NEUTRAL_FACTS[rng.integers(len(NEUTRAL_FACTS))], rng), rng), NEU, one_hot("neutral"))
    for _ in range(config.long_reviews):  # last: without them the other kinds are drawn as before
        add(*_long_review(rng), unlabelled)
    keep = _first_of_each(texts)
    order = rng.permutation(len(keep))
    keep = keep[order]
    return Examples([texts[i] for i in keep], np.asarray(polarity, np.int64)[keep], np.stack(emotions)[keep] if emotions else None)


def normalize(text: str) -> str:
    """Lower case, ASCII punctuation and spacing removed (emoji kept): to compare texts for
    leakage checks ("Save your money!" and "save your money" are the same phrase)."""
    return re.sub(r"[\s!-/:-@\[-`{-~]+", " ", text.lower()).strip()


def _first_of_each(texts: list[str]) -> np.ndarray:
    seen: set[str] = set()
    keep = []
    for i, t in enumerate(texts):
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)
