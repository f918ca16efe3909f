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
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DOMAIN_CUES",
    "AspectConfig",
    "AspectExtractor",
    "ClauseValence",
    "aspect_columns",
    "aspect_features",
    "default_aspects",
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
def _default_aspects_cached() -> tuple[tuple[str, tuple[str, ...]], ...]:
    raw = resources.files(__package__).joinpath(_DEFAULT_FILE).read_bytes()
    table = tomllib.loads(raw.decode("utf-8"))["aspects"]
    return tuple((name, tuple(seeds)) for name, seeds in table.items())


def default_aspects() -> dict[str, list[str]]:
    """The default e-commerce aspects and their seeds (a fresh copy).

    Returns
    -------
    dict of str to list of str
        ``quality, value, delivery, durability, ease_of_use, design, size_fit,
        customer_service``, read from ``sentiment/default_aspects.toml``.
    """
    return {name: list(seeds) for name, seeds in _default_aspects_cached()}


def _normalise_seed(seed: str) -> str:
    """Lower-case, hyphens as spaces, single spaces, curly apostrophes straightened."""
    s = seed.replace("\u2019", "'").replace("-", " ").lower()
    return " ".join(s.split())


class AspectConfig(BaseModel):
    """The aspects to extract: name -> seed words and phrases.

    Attributes
    ----------
    aspects
        Aspect name -> seeds, in column order. Names are identifiers (lower-case letters,
        digits, ``_``); seeds are normalised (lower case, single spaces, hyphens as spaces,
        duplicates dropped). Defaults to :func:`default_aspects`.

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

    model_config = ConfigDict(extra="forbid", frozen=True)

    aspects: dict[str, list[str]] = Field(default_factory=default_aspects)

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
        merged = dict((base or cls()).aspects)
        merged.update({k: list(v) if not isinstance(v, str) else v for k, v in extra.items()})
        return cls(aspects=merged)

    @classmethod
    def from_toml(cls, path: str | Path, *, base: AspectConfig | None = None) -> AspectConfig:
        """Read a shop's aspect config file (see the module docstring for the format).

        Parameters
        ----------
        path
            A TOML file with an ``[aspects]`` table of ``name = ["seed", ...]`` and an
            optional top-level ``include_defaults = false`` to start from an empty set.
        base
            The config the file extends; the defaults when ``None``.

        Returns
        -------
        AspectConfig

        Raises
        ------
        ValueError
            For a file that is not valid TOML, has unknown keys, no ``[aspects]`` table, or
            bad aspects (see :class:`AspectConfig`).
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
        unknown = set(data) - {"aspects", "include_defaults"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected [aspects] and include_defaults")
        table = data.get("aspects")
        if not isinstance(table, dict):
            raise ValueError(f"{path}: needs an [aspects] table of name = [\"seed\", ...]")
        include = data.get("include_defaults", True)
        if not isinstance(include, bool):
            raise ValueError(f"{path}: include_defaults must be true or false")
        if not include:
            return cls(aspects=table)
        return cls.with_extra(table, base=base)

    @property
    def names(self) -> tuple[str, ...]:
        """Aspect names in column order."""
        return tuple(self.aspects)

    def _key(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((name, tuple(seeds)) for name, seeds in self.aspects.items())


# --------------------------------------------------------------------------------------
# seed matching: inflections and a trie-shaped regex
# --------------------------------------------------------------------------------------

#: Words of a phrase that are never inflected.
_FUNCTION_WORDS = frozenset(
    "a an the to of for in on at by with as is it its it's was be been are and or not no "
    "too so up out off all this that my your our than very from into after before over "
    "under per".split()
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
            forms.add(" ".join(words[:i] + [f] + words[i + 1 :]))
        if len(forms) > _MAX_FORMS_PER_SEED:
            break
    return forms


def _lookup_key(surface: str) -> str:
    """Dictionary key of a matched or seed string: lower case, no apostrophes, single spaces."""
    s = surface.lower().replace("\u2019", "").replace("'", "").replace("-", " ")
    return " ".join(s.split())


_SPACE_TOKEN = r"[\s\-]+"
_APOSTROPHE_TOKEN = r"['\u2019]?"


def _trie_regex(forms: Iterable[str]) -> str:
    """A regex alternation of ``forms`` shaped as a trie (fast, longest match preferred).

    Spaces match runs of whitespace or hyphens, apostrophes are optional.
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

    def __init__(self, key: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        self.names = tuple(name for name, _ in key)
        index: dict[str, set[int]] = {}
        for a, (_, seeds) in enumerate(key):
            for seed in seeds:
                for form in _surface_forms(seed):
                    index.setdefault(_lookup_key(form), set()).add(a)
        self.index: dict[str, tuple[int, ...]] = {k: tuple(sorted(v)) for k, v in index.items()}
        # the trie is built over the seed spellings (with apostrophes) so "doesn't" matches
        spellings: set[str] = set()
        for _, seeds in key:
            for seed in seeds:
                spellings |= _surface_forms(seed)
        pattern = r"(?<!\w)" + _trie_regex(spellings) + r"(?!\w)"
        self.regex = re.compile(pattern, re.IGNORECASE)
        logger.debug("compiled aspect regex: %d aspects, %d forms", len(self.names), len(index))

    def find(self, text: str) -> list[tuple[int, tuple[int, ...]]]:
        """(start offset, aspect indices) of every seed match in ``text``."""
        out = []
        for m in self.regex.finditer(text):
            aspects = self.index.get(_lookup_key(m.group(0)))
            if aspects:
                out.append((m.start(), aspects))
        return out


@functools.lru_cache(maxsize=32)
def _matcher(key: tuple[tuple[str, tuple[str, ...]], ...]) -> _Matcher:
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
                r"\s*\n\s*",  # line breaks
                r"(?<=[.!?\u2026])[\"')\]]*\s+",  # sentence end
                rf"(?<=[{_EMOJI}])\s+",  # emoji-terminated sentence
                rf"(?<=[{_EMOJI}])(?=[^\W\d_])",  # emoji directly followed by a word
                r"\s*;[\s;]*",  # semicolon
                # contrast markers start a new clause; not in "a while", "not yet",
                # "nothing but", "all but", and "even though" stays together
                r"(?<!\ba)(?<!\bnot)(?<!n't)(?<!n\u2019t)(?<!\bnothing)(?<!\ball)(?<!\beven)"
                rf"[,\s]*[\s,](?={_CONTRAST})",
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
    out = []
    for t in texts:
        if t is None or (not isinstance(t, str) and pd.isna(t)):
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
        """The clauses of one text that mention an aspect, with the aspect indices.

        Parameters
        ----------
        text
            A review text.

        Returns
        -------
        list of (int, int, tuple of int)
            ``(start, end, aspect indices in config order)`` per clause with >= 1 aspect.
        """
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
    "lasted": 1.2, "built to last": 1.8, "long lasting": 1.5, "will last": 1.2,
    "last long": 1.0, "holds up": 1.2, "held up": 1.2, "stood up": 1.0, "stands up": 1.0,
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
    "pricey": -1.0, "steep": -1.0, "waste of money": -2.2,
    # delivery
    "on time": 1.2, "arrived early": 1.5, "arrived quickly": 1.5, "arrived promptly": 1.5,
    "ahead of schedule": 1.5, "late": -1.2, "took forever": -1.8, "takes forever": -1.8,
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
    "fits like a glove": 2.0, "snug": 0.6,
    # customer service
    "unhelpful": -1.8, "never replied": -2.0, "never responded": -2.0, "no response": -1.5,
    "no reply": -1.5, "got back to me": 1.0, "sent a replacement": 1.2, "refunded": 0.8,
    "hassle free": 1.5, "no hassle": 1.5, "went above and beyond": 2.2,
    # generic problems worded neutrally for VADER
    "no issues": 1.2, "no problems": 1.2, "no complaints": 1.5, "issue": -0.8, "issues": -0.8,
    "defect": -1.2, "defects": -1.2,
}

_NEGATORS = frozenset(
    "not no never none nothing neither nor without hardly barely cannot cant dont doesnt "
    "didnt isnt wasnt arent werent wont wouldnt couldnt shouldnt hasnt havent hadnt aint".split()
)
_NEGATION_SCALAR = -0.74  # VADER's N_SCALAR
_VADER_ALPHA = 15.0
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")


@functools.cache
def _cue_matcher() -> tuple[re.Pattern, dict[str, float]]:
    values = {_lookup_key(k): v for k, v in DOMAIN_CUES.items()}
    spellings = {_normalise_seed(k) for k in DOMAIN_CUES}
    pattern = r"(?<!\w)" + _trie_regex(spellings) + r"(?!\w)"
    return re.compile(pattern, re.IGNORECASE), values


def _is_negated(clause: str, start: int) -> bool:
    """Whether one of the three words before ``start`` is a negation."""
    words = _WORD.findall(clause[max(0, start - 40) : start])[-3:]
    for w in words:
        w = w.lower().replace("'", "").replace("\u2019", "")
        if w in _NEGATORS:
            return True
    return False


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
        by a negation within three words counts ``-0.74`` times.
    """
    regex, values = _cue_matcher()
    out = np.zeros(len(clauses), dtype=np.float64)
    for i, clause in enumerate(clauses):
        total = 0.0
        for m in regex.finditer(clause):
            v = values.get(_lookup_key(m.group(0)), 0.0)
            if v and _is_negated(clause, m.start()):
                v *= _NEGATION_SCALAR
            total += v
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
    with the emoji handling of :class:`~sentiment.lexicon.LexiconScorer`); with ``domain_cues`` the e-commerce cues of
    :data:`DOMAIN_CUES` that VADER does not know ("flimsy", "overpriced", "runs small",
    "not sturdy") are added to VADER's raw sum before normalising.

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
    if extractor.config.aspects != config.aspects:
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
            need = [i for i, v in enumerate(vals) if len(v) and (np.abs(v) < NEUTRAL_VALENCE).any()]
            if need:
                whole_spans: list[list[tuple[int, int]]] = [[] for _ in texts]
                for i in need:
                    whole_spans[i] = [(0, len(texts[i]))]
                whole = _call_valence(clause_valence, texts, whole_spans)
                for i in need:
                    review_v = float(whole[i][0])
                    if abs(review_v) >= inherit_min:
                        v = vals[i]
                        vals[i] = np.where(np.abs(v) < NEUTRAL_VALENCE, inherit * review_v, v)
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
