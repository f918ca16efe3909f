"""Aspect-level sentiment: which aspects a review talks about, and with what sentiment.

"great sound but the cable broke" talks positively about ``sound`` (an aspect a music shop
adds in its config) and negatively about ``durability``. The extractor works at span level:

1. :func:`split_clauses` cuts a text into clauses: sentences (``.``, ``!``, ``?``, newlines,
   emoji) further split at contrast markers (but, though, although, however, except, yet,
   while, whereas, ``;``), so that each clause carries one opinion.
2. :class:`AspectExtractor` finds the seed words and phrases of every aspect of an
   :class:`AspectConfig` (case-insensitive, on word boundaries, with simple inflections and
   multi-word phrases) and reports the clauses that mention each aspect.
3. :func:`aspect_features` asks a *clause-valence callback* for the sentiment of those
   clauses (each scorer supplies its own; :func:`lexicon_clause_valence` is VADER plus a
   small e-commerce cue lexicon) and aggregates it per review and aspect into the columns of
   :func:`aspect_columns`.

Aspect config files
-------------------
A shop adds or overrides aspects in a TOML file read by :meth:`AspectConfig.from_toml`::

    # shop_aspects.toml
    include_defaults = true          # optional; false starts from an empty aspect set
    ignore = ["white noise"]         # optional; phrases that are never mentions
    [aspects]
    sound = ["sound", "tone", "noise", "hum"]
    value = ["price", "cost", "worth"]   # replaces the default seeds of "value"

Aspect names are identifiers (lower-case letters, digits, ``_``, not starting with a
digit); every aspect needs at least one seed. The default set lives in
``sentiment/default_aspects.toml`` (same format) and documents the matching rules.

Examples
--------
>>> cfg = AspectConfig.with_extra({"sound": ["sound", "tone"]})  # doctest: +SKIP
>>> aspect_features(["great sound but the cable broke"], cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, field_validator

from emorec.common.config import StrictConfig, package_toml

__all__ = [
    "DOMAIN_CUES",
    "AspectConfig",
    "AspectExtractor",
    "ClauseValence",
    "aspect_columns",
    "aspect_features",
    "default_aspects",
    "default_ignore",
    "domain_cue_scores",
    "lexicon_clause_valence",
    "split_clauses",
]

logger = logging.getLogger(__name__)

#: ``clause_valence(texts, spans) -> valences``: one float array per text, one value in
#: [-1, 1] per ``(start, end)`` span of that text. :func:`aspect_features` always passes all
#: its texts, in its input order (a text without aspect clauses gets an empty span list), so a
#: scorer may align the call with a batch it has already encoded.
ClauseValence = Callable[[list[str], list[list[tuple[int, int]]]], list[np.ndarray]]

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_DEFAULT_FILE = "default_aspects.toml"

#: Clause valence below which a clause counts as neutral (VADER's usual band).
NEUTRAL_VALENCE = 0.05


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------


@functools.cache
def _default_file() -> dict[str, Any]:
    data = package_toml(__package__, _DEFAULT_FILE)
    return {
        "aspects": tuple((name, tuple(seeds)) for name, seeds in data["aspects"].items()),
        "ignore": tuple(data.get("ignore", ())),
    }


def default_aspects() -> dict[str, list[str]]:
    """The default e-commerce aspects and their seeds (a fresh copy).

    Returns
    -------
    dict of str to list of str
        ``quality, value, delivery, durability, ease_of_use, design, size_fit,
        customer_service``, read from ``sentiment/default_aspects.toml``.
    """
    return {name: list(seeds) for name, seeds in _default_file()["aspects"]}


def default_ignore() -> list[str]:
    """The default phrases that are never aspect mentions ("worth a look", "deal with")."""
    return list(_default_file()["ignore"])


def _normalise_seed(seed: str) -> str:
    """Lower-case, hyphens as spaces, single spaces, curly apostrophes straightened."""
    s = seed.replace("\u2019", "'").replace("-", " ").lower()
    return " ".join(s.split())


class AspectConfig(StrictConfig):
    """The aspects to extract: name -> seed words and phrases.

    Attributes
    ----------
    aspects
        Aspect name -> seeds, in column order. Names are identifiers (lower-case letters,
        digits, ``_``); seeds are normalised (lower case, single spaces, hyphens as spaces,
        duplicates dropped). Defaults to :func:`default_aspects`.
    ignore
        Phrases that are never aspect mentions although they contain a seed ("worth a
        look", "deal with"): they win the longest-match competition and count for nothing.
        Defaults to :func:`default_ignore`.

    Raises
    ------
    ValueError
        (as pydantic's ``ValidationError``, a ``ValueError`` subclass) naming the aspect when
        a name is not an identifier, a seed list is empty or a seed has no letter or digit.

    Examples
    --------
    >>> cfg = AspectConfig.with_extra({"sound": ["sound", "tone"]})
    >>> list(cfg.aspects)[-1]
    'sound'
    """

    model_config = ConfigDict(frozen=True)
    section: ClassVar[str] = "aspect config"

    aspects: dict[str, list[str]] = Field(default_factory=default_aspects)
    ignore: list[str] = Field(default_factory=default_ignore)

    @field_validator("ignore", mode="before")
    @classmethod
    def _check_ignore(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ValueError(f"ignore must be a list of phrases, got {value!r}")
        out: list[str] = []
        for phrase in value:
            if not isinstance(phrase, str) or not re.search(r"\w", phrase):
                raise ValueError(f"ignore: {phrase!r} is not a phrase with a letter or digit")
            norm = _normalise_seed(phrase)
            if norm not in out:
                out.append(norm)
        return out

    @field_validator("aspects", mode="before")
    @classmethod
    def _check_aspects(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"aspects must be a table of name -> list of seeds, got {type(value).__name__}")
        if not value:
            raise ValueError("aspects must name at least one aspect")
        out: dict[str, list[str]] = {}
        for name, seeds in value.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(
                    f"aspect name {name!r} is not an identifier (lower-case letters, digits and _, "
                    "not starting with a digit)"
                )
            if isinstance(seeds, str) or not isinstance(seeds, Iterable):
                raise ValueError(f"aspect {name!r}: seeds must be a list of strings, got {seeds!r}")
            clean: list[str] = []
            for seed in seeds:
                if not isinstance(seed, str):
                    raise ValueError(f"aspect {name!r}: seed {seed!r} is not a string")
                norm = _normalise_seed(seed)
                if not re.search(r"\w", norm):
                    raise ValueError(f"aspect {name!r}: seed {seed!r} has no letter or digit")
                if norm not in clean:
                    clean.append(norm)
            if not clean:
                raise ValueError(f"aspect {name!r} has an empty seed list")
            out[name] = clean
        return out

    @classmethod
    def with_extra(
        cls, extra: Mapping[str, Sequence[str]], *, base: AspectConfig | None = None
    ) -> AspectConfig:
        """Add aspects to (or override aspects of) a config.

        Parameters
        ----------
        extra
            Aspect name -> seeds. A new name is appended after the existing aspects; an
            existing name has its seeds replaced (keeping its position).
        base
            The config to extend; the defaults when ``None``.

        Returns
        -------
        AspectConfig
        """
        base = base or cls()
        merged = dict(base.aspects)
        merged.update({k: list(v) if not isinstance(v, str) else v for k, v in extra.items()})
        return cls(aspects=merged, ignore=base.ignore)

    @classmethod
    def from_toml(cls, path: str | Path, *, base: AspectConfig | None = None) -> AspectConfig:
        """Read a shop's aspect config file (see the module docstring for the format).

        Parameters
        ----------
        path
            A TOML file with an ``[aspects]`` table of ``name = ["seed", ...]``, optional
            top-level ``ignore = ["phrase", ...]`` (added to the base's ignore list) and
            ``include_defaults = false`` (start from no aspects and no ignore phrases).
        base
            The config the file extends; the defaults when ``None``.

        Returns
        -------
        AspectConfig

        Raises
        ------
        ConfigError
            For a file that cannot be read, is not valid TOML, has unknown keys, no
            ``[aspects]`` table, or bad aspects (see :class:`AspectConfig`); the message names
            the file. (``ConfigError`` is a ``ValueError``.)
        """
        from emorec.common.errors import ConfigError

        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read the aspect config {path}: {exc.strerror or exc}") from exc
        unknown = set(data) - {"aspects", "ignore", "include_defaults"}
        if unknown:
            raise ConfigError(
                f"{path}: unknown keys {sorted(unknown)}; expected [aspects], ignore and include_defaults"
            )
        table = data.get("aspects")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: needs an [aspects] table of name = [\"seed\", ...]")
        include = data.get("include_defaults", True)
        if not isinstance(include, bool):
            raise ConfigError(f"{path}: include_defaults must be true or false")
        ignore = data.get("ignore", [])
        try:
            if not include:
                return cls(aspects=table, ignore=ignore)
            base = base or cls()
            merged = cls.with_extra(table, base=base)
            return cls(aspects=merged.aspects, ignore=[*base.ignore, *ignore])
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @property
    def names(self) -> tuple[str, ...]:
        """Aspect names in column order."""
        return tuple(self.aspects)

    def _key(self) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]:
        return tuple((name, tuple(seeds)) for name, seeds in self.aspects.items()), tuple(self.ignore)


# --------------------------------------------------------------------------------------
# seed matching: inflections and a trie-shaped regex
# --------------------------------------------------------------------------------------

#: Words of a phrase that are never inflected.
_FUNCTION_WORDS = frozenset(
    ["a", "an", "the", "to", "of", "for", "in", "on", "at", "by", "with", "as", "is", "it", "its", "it's", "was", "be", "been", "are", "and", "or", "not", "no", "too", "so", "up", "out", "off", "all", "this", "that", "my", "your", "our", "than", "very", "from", "into", "after", "before", "over", "under", "per"]
)
_VOWELS = set("aeiou")
_MAX_FORMS_PER_SEED = 64


def _word_forms(word: str) -> set[str]:
    """The word and its regular -s/-es, -ed/-d and -ing forms."""
    forms = {word}
    if len(word) < 3 or not word.isalpha() or word in _FUNCTION_WORDS:
        return forms
    last = word[-1]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        forms.add(word + "es")
    elif last == "y" and word[-2] not in _VOWELS:
        forms.update({word[:-1] + "ies", word[:-1] + "ied"})
    else:
        forms.add(word + "s")
    if last == "e":
        forms.update({word + "d", word[:-1] + "ing"})
    else:
        forms.update({word + "ed", word + "ing"})
    # short consonant-vowel-consonant words double the consonant: ship -> shipped
    if (
        len(word) <= 4
        and last not in _VOWELS
        and last not in "wxy"
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
    ):
        forms.update({word + last + "ed", word + last + "ing"})
    return forms


def _surface_forms(seed: str) -> set[str]:
    """All inflected forms of a (normalised) seed; phrase words are inflected one at a time."""
    words = seed.split(" ")
    forms = {seed}
    content = [i for i, w in enumerate(words) if w not in _FUNCTION_WORDS]
    for i in content:
        for f in _word_forms(words[i]):
            forms.add(" ".join([*words[:i], f, *words[i + 1:]]))
        if len(forms) > _MAX_FORMS_PER_SEED:
            break
    return forms


def _lookup_key(surface: str) -> str:
    """Dictionary key of a matched or seed string: lower case, no apostrophes, single spaces."""
    s = surface.lower().replace("\u2019", "").replace("'", "").replace("-", " ")
    return " ".join(s.split())


#: Intensifiers allowed between the words of a phrase ("runs *really* small").
_INTENSIFIERS = (
    "really", "very", "so", "super", "quite", "pretty", "extremely", "incredibly", "absolutely",
    "totally", "truly", "rather", "fairly", "even", "much", "a bit", "a little", "kind of",
    "sort of",
)
_SPACE_TOKEN = r"[\s\-]+(?:(?:" + "|".join(i.replace(" ", r"\s+") for i in _INTENSIFIERS) + r")\s+){0,2}"
_APOSTROPHE_TOKEN = r"['\u2019]?"
_INTENSIFIER_WORDS = re.compile(r"\b(?:" + "|".join(_INTENSIFIERS) + r") ")


def _lookup(index: Mapping[str, Any], surface: str) -> Any:
    """Look a matched string up: exactly, else without the intensifiers inside it."""
    key = _lookup_key(surface)
    found = index.get(key)
    if found is None and " " in key:
        first, _, rest = key.partition(" ")
        found = index.get(first + " " + _INTENSIFIER_WORDS.sub("", rest + " ").strip())
    return found


def _trie_regex(forms: Iterable[str]) -> str:
    """A regex alternation of ``forms`` shaped as a trie (fast, longest match preferred).

    Spaces match runs of whitespace or hyphens, optionally with up to two intensifiers
    (:data:`_INTENSIFIERS`); apostrophes are optional.
    """
    root: dict[str, Any] = {}
    for form in forms:
        node = root
        for ch in form:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict[str, Any]) -> str:
        end = "" in node
        branches = []
        for ch in sorted(k for k in node if k):
            if ch == " ":
                head = _SPACE_TOKEN
            elif ch == "'":
                head = _APOSTROPHE_TOKEN
            else:
                head = re.escape(ch)
            branches.append(head + render(node[ch]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            return ("(?:" + body + ")?") if len(branches) == 1 else body + "?"
        return body

    return render(root)


class _Matcher:
    """Compiled seed regex of one config and the map from matched text to aspect indices."""

    def __init__(self, key: tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]) -> None:
        aspects, ignore = key
        self.names = tuple(name for name, _ in aspects)
        index: dict[str, set[int]] = {}
        spellings: set[str] = set()  # with apostrophes, so "doesn't" matches "doesnt" too
        for a, (_, seeds) in enumerate(aspects):
            for seed in seeds:
                forms = _surface_forms(seed)
                spellings |= forms
                for form in forms:
                    index.setdefault(_lookup_key(form), set()).add(a)
        for phrase in ignore:
            forms = _surface_forms(phrase)
            spellings |= forms
            for form in forms:
                index[_lookup_key(form)] = set()  # an ignore phrase beats a seed spelt the same
        self.index: dict[str, tuple[int, ...]] = {k: tuple(sorted(v)) for k, v in index.items()}
        pattern = r"(?<!\w)" + _trie_regex(spellings) + r"(?!\w)"
        self.regex = re.compile(pattern, re.IGNORECASE)
        logger.debug("compiled aspect regex: %d aspects, %d forms", len(self.names), len(index))

    def find(self, text: str) -> list[tuple[int, tuple[int, ...]]]:
        """(start offset, aspect indices) of every seed match in ``text``."""
        out = []
        for m in self.regex.finditer(text):
            aspects = _lookup(self.index, m.group(0))
            if aspects:
                out.append((m.start(), aspects))
        return out


@functools.lru_cache(maxsize=32)
def _matcher(key: tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]) -> _Matcher:
    return _Matcher(key)


# --------------------------------------------------------------------------------------
# clause splitting
# --------------------------------------------------------------------------------------

_EMOJI = "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f"
_CONTRAST = r"(?:even\s+)?(?:but|however|although|though|except|yet|whereas|while)\b"


@functools.cache
def _separator() -> re.Pattern:
    """Separators between clauses (the matched text belongs to no clause)."""
    return re.compile(
        "|".join(
            [
                # every alternative that starts on whitespace starts at the beginning of a
                # run ((?<!\s)), so long runs of spaces are scanned once, not quadratically
                r"(?<!\s)[^\S\n]*+\n\s*",  # line breaks
                r"(?<=[.!?\u2026])[\"')\]]*+\s+",  # sentence end
                r"(?<=[a-z][.!?])(?=[A-Z][a-z])",  # sentence end without a space: "fine.The"
                rf"(?<=[{_EMOJI}])\s+",  # emoji-terminated sentence
                rf"(?<=[{_EMOJI}])(?=[^\W\d_])",  # emoji directly followed by a word
                r"(?<!\s)\s*+;[\s;]*",  # semicolon
                # contrast markers start a new clause; not in "a while", "not yet",
                # "nothing but", "all but", and "even though" stays together
                r"(?<!\ba)(?<!\bnot)(?<!n't)(?<!n\u2019t)(?<!\bnothing)(?<!\ball)(?<!\beven)"
                rf"(?<![,\s])[,\s]++(?={_CONTRAST})",
            ]
        ),
        re.IGNORECASE,
    )


def split_clauses(text: str) -> list[tuple[int, int]]:
    """Split a text into opinion clauses.

    Sentences end at ``.``, ``!``, ``?``, ``…`` followed by whitespace, at line breaks and
    after emoji; a sentence is further split before the contrast markers *but, though,
    although, however, except, yet, while, whereas* (the marker starts the next clause) and
    at ``;``. Terminal punctuation and emoji stay with their clause (they carry emphasis).

    Parameters
    ----------
    text
        A review text.

    Returns
    -------
    list of (int, int)
        ``(start, end)`` character offsets of the clauses, in order, stripped of surrounding
        whitespace; empty clauses are dropped.

    Examples
    --------
    >>> t = "Great sound but the cable broke. Love it!"
    >>> [t[s:e] for s, e in split_clauses(t)]
    ['Great sound', 'but the cable broke.', 'Love it!']
    """
    if not text:
        return []
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _separator().finditer(text):
        _append_span(text, pos, m.start(), spans)
        pos = m.end()
    _append_span(text, pos, len(text), spans)
    return spans


def _append_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


# --------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------


def _as_texts(texts: Iterable[Any]) -> list[str]:
    """Texts as ``str``; ``None``, NaN and ``pd.NA`` become ``""``."""
    out = []
    for t in texts:
        if isinstance(t, str):
            out.append(t)
        elif t is None or t is pd.NA or (isinstance(t, float) and t != t):
            out.append("")
        else:
            out.append(str(t))
    return out


class AspectExtractor:
    """Finds the clauses of a text that mention each aspect of a config.

    Parameters
    ----------
    config
        The aspects and seeds; the defaults when ``None``. The regex is compiled on first
        use and shared by all extractors of an equal config.

    Examples
    --------
    >>> ex = AspectExtractor(AspectConfig.with_extra({"sound": ["sound"]}))
    >>> ex.mentions(["great sound but the cable broke"])
    [[(0, 11, 'sound'), (12, 31, 'durability')]]
    """

    def __init__(self, config: AspectConfig | None = None) -> None:
        self.config = config if config is not None else AspectConfig()
        self._key = self.config._key()

    @property
    def aspects(self) -> tuple[str, ...]:
        """Aspect names in column order."""
        return self.config.names

    def clause_aspects(self, text: str) -> list[tuple[int, int, tuple[int, ...]]]:
        """The clauses of the review text ``text`` (:func:`split_clauses`) that mention at least one
        aspect, in order, as ``(start, end, aspect indices in config order)``."""
        if not text:
            return []
        hits = _matcher(self._key).find(text)
        if not hits:
            return []
        spans = split_clauses(text)
        starts = [s for s, _ in spans]
        found: dict[int, set[int]] = {}
        for pos, aspects in hits:
            k = bisect.bisect_right(starts, pos) - 1
            if k < 0 or pos >= spans[k][1]:
                continue  # inside a separator (cannot normally happen)
            found.setdefault(k, set()).update(aspects)
        return [(spans[k][0], spans[k][1], tuple(sorted(a))) for k, a in sorted(found.items())]

    def mentions(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """Aspect mentions of each text.

        Parameters
        ----------
        texts
            Review texts (``None`` and NaN count as empty).

        Returns
        -------
        list of list of (int, int, str)
            Per text, ``(start, end, aspect)`` for every clause mentioning an aspect (a
            clause mentioning several aspects appears once per aspect, in config order).
        """
        names = self.aspects
        return [
            [(s, e, names[a]) for s, e, idx in self.clause_aspects(t) for a in idx]
            for t in _as_texts(texts)
        ]


# --------------------------------------------------------------------------------------
# clause valence: VADER plus e-commerce cues
# --------------------------------------------------------------------------------------

#: E-commerce words and phrases that VADER's lexicon lacks (or scores against their usual
#: meaning in a review, like "tough"), with a valence on VADER's scale (about -4..4).
#: Negated cues ("not sturdy", "didn't break") are flipped and damped like VADER does.
DOMAIN_CUES: dict[str, float] = {
    # durability / quality
    "sturdy": 1.8, "durable": 1.8, "flimsy": -1.8, "fragile": -1.2, "tough": 1.5,
    "break": -1.5, "breaks": -1.5, "breaking": -1.5, "fell apart": -2.2, "falls apart": -2.2,
    "fall apart": -2.0, "falling apart": -2.2, "came apart": -2.0, "coming apart": -2.0,
    "lasted": 1.2, "lasts": 1.2, "lasting": 1.0, "built to last": 1.8, "long lasting": 1.5,
    "will last": 1.2, "last long": 1.0, "holds up": 1.2, "held up": 1.2, "stood up": 1.0, "stands up": 1.0,
    "still works": 1.2, "still working": 1.2, "still going strong": 1.8, "still holds": 1.0,
    "still looks new": 1.5, "like new": 1.2, "stopped working": -2.0, "quit working": -2.0,
    "wore out": -1.5, "worn out": -1.5, "wear out": -1.2, "signs of wear": -1.0,
    "cracked": -1.5, "crack": -1.2, "snapped": -1.5, "ripped": -1.2, "tore": -1.2,
    "frayed": -1.2, "rusted": -1.5, "rusty": -1.2, "peeling": -1.2, "came loose": -1.5,
    "came undone": -1.5, "shrank": -1.5, "shrunk": -1.2, "pilled": -1.2, "pilling": -1.2,
    "faded": -1.0, "heavy duty": 1.2, "indestructible": 1.8,
    "well made": 2.0, "well built": 2.0, "poorly made": -2.0, "badly made": -2.0,
    "cheaply made": -2.0, "feels cheap": -1.8, "looks cheap": -1.8, "cheap plastic": -1.5,
    "shoddy": -2.0, "premium": 1.2, "top notch": 2.0, "high quality": 1.8,
    "low quality": -1.8, "poor quality": -1.8, "doesn't work": -2.0, "didn't work": -2.0,
    "does not work": -2.0, "did not work": -2.0, "dead on arrival": -2.5, "doa": -2.5,
    # value
    "overpriced": -2.0, "ripoff": -2.2, "rip off": -2.2, "ripped off": -2.2,
    "affordable": 1.5, "inexpensive": 1.2, "reasonably priced": 1.5, "steal": 1.0,
    "bang for the buck": 1.8, "bang for your buck": 1.8, "too expensive": -1.8,
    "pricey": -1.0, "steep": -1.0, "waste of money": -2.2, "expensive": -1.2,
    "poor value": -1.5, "save your money": -1.8,
    # delivery
    "on time": 1.2, "arrived early": 1.5, "arrived quickly": 1.5, "arrived promptly": 1.5,
    "ahead of schedule": 1.5, "early": 1.0, "sooner": 1.0, "sooner than expected": 1.5,
    "late": -1.2, "took forever": -1.8, "takes forever": -1.8,
    "took ages": -1.8, "take long": -1.0, "took long": -1.0, "slow": -1.2, "fast": 1.2,
    "quick": 1.0, "quickly": 1.0, "promptly": 1.2, "prompt": 1.2, "speedy": 1.5,
    "never arrived": -2.5, "never came": -2.0, "never showed up": -2.5, "arrived broken": -2.5,
    "well packaged": 1.5, "well packed": 1.5, "carefully packed": 1.5, "badly packed": -1.5,
    "poorly packaged": -1.5,
    # ease of use
    "intuitive": 1.5, "straightforward": 1.2, "user friendly": 1.8, "complicated": -1.2,
    "fiddly": -1.2, "a breeze": 1.5, "plug and play": 1.0, "handy": 1.2, "learning curve": -0.6,
    "hard to use": -1.5, "a pain to": -1.5, "pain to": -1.2,
    # design
    "sleek": 1.5, "stylish": 1.5, "clunky": -1.2, "bulky": -1.0, "tacky": -1.5,
    "dated": -0.8, "gorgeous": 2.5, "cute": 1.5,
    # size and fit
    "true to size": 1.5, "runs small": -1.2, "runs large": -1.2, "runs big": -1.2,
    "too small": -1.5, "too big": -1.5, "too large": -1.5, "too tight": -1.5,
    "too loose": -1.5, "too short": -1.2, "too long": -1.2, "tight": -0.8, "baggy": -1.0,
    "fits like a glove": 2.0, "snug": 0.6, "fits": 0.8,
    # customer service
    "respond": 1.0, "responded": 1.0, "replied": 1.0, "reply": 0.8,
    "unhelpful": -1.8, "never replied": -2.0, "never responded": -2.0, "no response": -1.5,
    "no reply": -1.5, "got back to me": 1.0, "sent a replacement": 1.2, "refunded": 0.8,
    "hassle free": 1.5, "no hassle": 2.7, "went above and beyond": 2.2,
    # generic review idioms VADER reads neutrally or backwards ("no" alone is -1.2 in VADER,
    # "joke" +1.2, "beating" -2.0, so these phrases carry the correction)
    "no issues": 2.4, "no complaints": 1.0, "no time": 2.4, "issue": -0.8, "issues": -0.8,
    "defect": -1.2, "defects": -1.2, "spot on": 2.0, "what a joke": -3.0, "a joke": -2.4,
    "takes a beating": 3.0, "match": 0.8, "matches": 0.8, "as advertised": 1.0,
    "as described": 1.0, "as pictured": 1.0, "brand new": 1.0, "soft": 0.8, "in minutes": 1.0,
    "in seconds": 1.0, "instant": 0.8, "instantly": 0.8, "convenient": 1.2,
}

_NEGATORS = frozenset(
    ["not", "no", "never", "none", "nothing", "neither", "nor", "without", "hardly", "barely", "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "werent", "wont", "wouldnt", "couldnt", "shouldnt", "hasnt", "havent", "hadnt", "aint"]
)
_NEGATION_SCALAR = -0.74  # VADER's N_SCALAR
_VADER_NO = 1.2  # minus VADER's valence of a bare "no"
_VADER_ALPHA = 15.0
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")


@functools.cache
def _cue_matcher() -> tuple[re.Pattern, dict[str, float]]:
    values = {_lookup_key(k): v for k, v in DOMAIN_CUES.items()}
    spellings = {_normalise_seed(k) for k in DOMAIN_CUES}
    pattern = r"(?<!\w)" + _trie_regex(spellings) + r"(?!\w)"
    return re.compile(pattern, re.IGNORECASE), values


def _negation(clause: str, start: int) -> tuple[bool, bool]:
    """Whether one of the three words before ``start`` is a negation, and whether the word
    right before it is "no" (which VADER then scored as a negative word of its own)."""
    words = [
        w.lower().replace("'", "").replace("\u2019", "")
        for w in _WORD.findall(clause[max(0, start - 40) : start])[-3:]
    ]
    return any(w in _NEGATORS for w in words), bool(words) and words[-1] == "no"


def domain_cue_scores(clauses: Sequence[str]) -> np.ndarray:
    """Sum of :data:`DOMAIN_CUES` valences in each clause, on VADER's raw scale.

    Parameters
    ----------
    clauses
        Clause texts.

    Returns
    -------
    numpy.ndarray
        float64, one summed cue valence per clause (0 where no cue occurs); a cue preceded
        by a negation within three words counts ``-0.74`` times. VADER scores a bare "no"
        as -1.2 unless the next word is in its lexicon; for "no" right before a cue that
        is undone (+1.2), as if the cue were in VADER's lexicon.
    """
    regex, values = _cue_matcher()
    out = np.zeros(len(clauses), dtype=np.float64)
    for i, clause in enumerate(clauses):
        total = 0.0
        for m in regex.finditer(clause):
            v = _lookup(values, m.group(0)) or 0.0
            if not v:
                continue
            negated, after_no = _negation(clause, m.start())
            if negated:
                v *= _NEGATION_SCALAR
            total += v + (_VADER_NO if after_no else 0.0)
        out[i] = total
    return out


def _combine_with_cues(compound: np.ndarray, cues: np.ndarray) -> np.ndarray:
    """Add raw cue valence to VADER compound scores as if the cues were in its lexicon.

    VADER's compound is ``x / sqrt(x**2 + 15)`` of its raw sum ``x``; we invert it, add the
    cue sum and normalise again.
    """
    c = np.clip(compound, -0.9999, 0.9999)
    raw = c * np.sqrt(_VADER_ALPHA / (1.0 - c * c))
    raw = raw + cues
    return np.where(cues != 0, raw / np.sqrt(raw * raw + _VADER_ALPHA), compound)


def lexicon_clause_valence(
    texts: list[str], spans: list[list[tuple[int, int]]], *, domain_cues: bool = True
) -> list[np.ndarray]:
    """Clause valence from the VADER lexicon scorer (a :data:`ClauseValence` callback).

    Each clause text is scored with :func:`sentiment.lexicon.vader_compound` (VADER compound
    with the emoji handling of :class:`~sentiment.lexicon.LexiconScorer`); with
    ``domain_cues`` the e-commerce cues of :data:`DOMAIN_CUES` that VADER does not know
    ("flimsy", "overpriced", "runs small", "not sturdy") are added to VADER's raw sum
    before normalising (:func:`domain_cue_scores`).

    Parameters
    ----------
    texts
        Review texts.
    spans
        Per text, the ``(start, end)`` spans to score.
    domain_cues
        Add :data:`DOMAIN_CUES` (default). Use ``functools.partial`` to turn it off.

    Returns
    -------
    list of numpy.ndarray
        Per text, float64 valences in [-1, 1], one per span.
    """
    from .lexicon import vader_compound

    clauses = [text[s:e] for text, sp in zip(texts, spans) for s, e in sp]
    if clauses:
        compound = vader_compound(clauses)
        if domain_cues:
            compound = _combine_with_cues(compound, domain_cue_scores(clauses))
    else:
        compound = np.zeros(0, dtype=np.float64)
    out, k = [], 0
    for sp in spans:
        out.append(compound[k : k + len(sp)])
        k += len(sp)
    return out


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------


def aspect_columns(config: AspectConfig | Iterable[str] | None = None) -> dict[str, str]:
    """Column names and dtypes of :func:`aspect_features` for a config.

    Parameters
    ----------
    config
        The aspects (a config, or aspect names in order); the defaults when ``None``.

    Returns
    -------
    dict of str to str
        ``asp_<a>_mentions: int32`` and ``asp_<a>_sentiment: float32`` for every aspect
        ``a`` in config order.
    """
    if config is None:
        config = AspectConfig()
    names = config.names if isinstance(config, AspectConfig) else tuple(config)
    cols: dict[str, str] = {}
    for a in names:
        cols[f"asp_{a}_mentions"] = "int32"
        cols[f"asp_{a}_sentiment"] = "float32"
    return cols


def aspect_features(
    texts: Sequence[str],
    config: AspectConfig | None = None,
    clause_valence: ClauseValence | None = None,
    *,
    inherit: float = 0.5,
    inherit_min: float = 0.3,
    review_valence: Sequence[float] | np.ndarray | None = None,
    extractor: AspectExtractor | None = None,
) -> pd.DataFrame:
    """Per-review aspect mention counts and aspect sentiment.

    Parameters
    ----------
    texts
        Review texts (e.g. :func:`sentiment.base.review_text`); ``None``/NaN count as empty.
    config
        The aspects; the defaults when ``None``.
    clause_valence
        Callback giving one valence per clause span (see :data:`ClauseValence`);
        :func:`lexicon_clause_valence` when ``None``. It is called with all ``texts`` in
        input order (empty span lists where a text has no aspect clause); NaN values count
        as 0 and values are clipped to [-1, 1].
    inherit
        A clause whose own valence is neutral (``|v| < 0.05``) takes ``inherit`` times the
        valence of the whole review when that is clear (``|V| >= inherit_min``): "the box
        said 40L" in a furious review is most likely a complaint. ``0`` turns it off. The
        review valence comes from a second call of the same callback (one span covering the
        text, only for reviews that have a neutral aspect clause).
    inherit_min
        Minimum ``|review valence|`` for a neutral clause to inherit it.
    review_valence
        The valence of each whole text when the caller already has it (a scorer that has
        scored the reviews); it then replaces the second callback call.
    extractor
        A prepared extractor for ``config`` (optional).

    Returns
    -------
    pandas.DataFrame
        One row per text (RangeIndex, input order) with the columns of
        :func:`aspect_columns`: ``asp_<a>_mentions`` (int32, clauses mentioning ``a``) and
        ``asp_<a>_sentiment`` (float32 in [-1, 1], mean valence of those clauses, NaN when
        ``a`` is not mentioned).
    """
    config = config if config is not None else (extractor.config if extractor else AspectConfig())
    extractor = extractor if extractor is not None else AspectExtractor(config)
    if extractor.config._key() != config._key():
        raise ValueError("extractor was built for a different config")
    clause_valence = clause_valence if clause_valence is not None else lexicon_clause_valence
    texts = _as_texts(texts)
    n, n_asp = len(texts), len(config.names)
    counts = np.zeros((n, n_asp), dtype=np.int32)
    sums = np.zeros((n, n_asp), dtype=np.float64)

    found = [extractor.clause_aspects(t) for t in texts]
    if any(found):
        spans = [[(s, e) for s, e, _ in f] for f in found]
        vals = _call_valence(clause_valence, texts, spans)
        if inherit:
            _inherit(vals, texts, clause_valence, review_valence, inherit, inherit_min)
        for i, clauses in enumerate(found):
            for (_, _, idx), val in zip(clauses, vals[i]):
                for a in idx:
                    counts[i, a] += 1
                    sums[i, a] += val

    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    data: dict[str, np.ndarray] = {}
    for a, name in enumerate(config.names):
        data[f"asp_{name}_mentions"] = counts[:, a]
        data[f"asp_{name}_sentiment"] = means[:, a].astype(np.float32)
    return pd.DataFrame(data, index=pd.RangeIndex(n))


def _inherit(
    vals: list[np.ndarray],
    texts: list[str],
    clause_valence: ClauseValence,
    review_valence: Sequence[float] | np.ndarray | None,
    inherit: float,
    inherit_min: float,
) -> None:
    """Give neutral aspect clauses ``inherit`` x the review valence where that is clear (in place)."""
    need = [i for i, v in enumerate(vals) if len(v) and (np.abs(v) < NEUTRAL_VALENCE).any()]
    if not need:
        return
    if review_valence is None:
        whole_spans: list[list[tuple[int, int]]] = [[] for _ in texts]
        for i in need:
            whole_spans[i] = [(0, len(texts[i]))]
        whole = _call_valence(clause_valence, texts, whole_spans)
        review = {i: float(whole[i][0]) for i in need}
    else:
        rv = np.clip(np.nan_to_num(np.asarray(review_valence, dtype=np.float64).reshape(-1)), -1.0, 1.0)
        if len(rv) != len(texts):
            raise ValueError(f"review_valence has {len(rv)} values for {len(texts)} texts")
        review = {i: float(rv[i]) for i in need}
    for i in need:
        if abs(review[i]) >= inherit_min:
            vals[i] = np.where(np.abs(vals[i]) < NEUTRAL_VALENCE, inherit * review[i], vals[i])


def _call_valence(
    clause_valence: ClauseValence, texts: list[str], spans: list[list[tuple[int, int]]]
) -> list[np.ndarray]:
    """Call the callback with every text (positional), check and clean what it returns."""
    vals = clause_valence(texts, spans)
    if len(vals) != len(spans):
        raise ValueError(f"clause_valence returned {len(vals)} arrays for {len(spans)} texts")
    out = []
    for v, sp in zip(vals, spans):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if len(v) != len(sp):
            raise ValueError(f"clause_valence returned {len(v)} values for {len(sp)} spans")
        out.append(np.clip(np.nan_to_num(v), -1.0, 1.0))
    return out
