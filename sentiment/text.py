"""Text cleaning and personal-data scrubbing for review texts.

Pure functions, applied before anything is stored: HTML is unescaped and its tags removed,
control characters dropped, whitespace normalised, and personal data replaced by tokens:

* e-mail addresses (also ``jane @ example.com``, ``jane [at] example [dot] com``,
  ``jane at example dot com``) -> ``[email]``;
* URLs -> ``[url]``;
* payment card numbers (13-19 digits passing the Luhn check) -> ``[card]``; IBANs (passing
  the ISO 13616 mod-97 check) -> ``[iban]``; US social security numbers (``123-45-6789``) -> ``[id]``;
* phone numbers -> ``[phone]``: international (``+`` or ``00``), North American (``(415)
  555-2671``, ``5551234567``), Indian mobiles (``98765 43210``, ``9876543210``), local numbers
  with a trunk prefix (``030 1234567``) and any 7-15 digit run after a word such as "call",
  "phone", "WhatsApp". Bare 10-digit numbers starting with 2-9 are taken as phone numbers
  (an order number of that shape is scrubbed too: privacy first).

Not recognised: other national identity numbers (passport, tax, health ids), postal
addresses and names in free text. Emoji and stopwords are kept: both carry sentiment
("not", 😡) and models need them.

Phone numbers are found by patterns rather than with ``phonenumbers`` (Google's
libphonenumber): its matcher needs the country of each text, which reviews do not carry,
and validating candidates against numbering plans would let through the fictional but
realistic numbers customers write (``555-...``).
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata

EMAIL_TOKEN = "[email]"
URL_TOKEN = "[url]"
PHONE_TOKEN = "[phone]"
CARD_TOKEN = "[card]"
IBAN_TOKEN = "[iban]"
ID_TOKEN = "[id]"

_MAX_PASSES = 8
# a tag starts with a letter, "/" or "!" right after "<": "a < b and c > d" and "5<10 or 20>3" are text
_TAG = re.compile(r"</?[A-Za-z!][^<>]{0,500}>")
_BR = re.compile(r"<\s*(br|/p|p|/div|li)\b[^>]*>", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_EMAIL = re.compile(r"[\w.+-]+ ?@ ?[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"']+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|co|de|uk|fr|info|biz)/[^\s<>\"']*",
    re.IGNORECASE,
)
# Candidate phone numbers: an optional + or 00 prefix, then digits with spaces, dots, dashes,
# slashes or brackets between them. Candidates are accepted by _looks_like_phone.
_PHONE = re.compile(r"(?<![\w/.,$€£])(?:\+|\b00)?\(?\d[\d\s().\-/]{5,}\d(?![\w/])")
_NANP = re.compile(r"^(?:1[\s.\-]?)?\(?\d{3}\)?[\s.\-]?\d{3}[\s.\-]\d{4}$")
# A local number with a trunk prefix: "030 1234567", "07700 900123", "030/12345678".
_TRUNK = re.compile(r"^\(?0\d{1,4}\)?[\s/\-]\d")
# Words that announce a phone number; after one, any 7-15 digit run is taken as a number.
_PHONE_CUE = re.compile(
    r"(?:\b(?:tel|tél|phone|call|ring|text|mobile|cell|handy|telefon|telephone|téléphone|fax|whatsapp|ruf|anrufen|appelez|"
    r"llama|llámame|móvil|celular|number|nummer|numéro|número)\w*|电话|手机)\W{0,12}(?:(?:me|mich|us|uns|on|at|an|au|al|unter)\W{1,3}){0,2}$",
    re.IGNORECASE,
)
# Obfuscated addresses: "jane [at] example [dot] com", "jane(at)example.com".
_EMAIL_OBFUSCATED = re.compile(
    r"[\w.+-]+\s*[\[(]\s*at\s*[\])]\s*[\w-]+(?:\s*(?:\.|[\[(]\s*dot\s*[\])])\s*[\w-]+)+", re.IGNORECASE)
# Spelled out: "jane at example dot com", "jane dot doe at mail dot example dot co dot uk" (needs "dot").
_EMAIL_SPELLED = re.compile(
    r"\b[\w.+-]+(?:\s+dot\s+[\w+-]+)*\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)*\s+dot\s+"
    r"(?:com|net|org|edu|gov|io|co|de|uk|fr|in|info|biz|me|us|es|it|nl|ca|au)\b", re.IGNORECASE)
# Words before " at " that make "... at X dot com" a sentence, not an address ("bought it at amazon dot com").
_NOT_LOCAL_PART = frozenset(
    ["look", "looked", "looking", "buy", "bought", "get", "got", "available", "sold", "find", "found", "order", "ordered", "purchase", "purchased", "shop", "shopped", "arrived", "it", "this", "that", "them", "me", "us", "here", "there", "one", "price", "sale", "deal", "cheaper", "cheap", "best", "great", "good", "store", "online"])
# Payment cards: 13-19 digits in groups (checked with Luhn); IBAN: country, check digits, 11-30 more.
_CARD = re.compile(r"(?<![\w.,])\d(?:[ -]?\d){12,18}(?![\w.,]\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
# Indian mobile numbers written 5 + 5: "98765 43210".
_IN_MOBILE = re.compile(r"^[6-9]\d{4}[\s-]\d{5}$")


@functools.cache
def _invisible_chars() -> re.Pattern:
    """Control, format and surrogate characters (Unicode Cc, Cf, Cs), except newline, tab and
    the zero-width joiner that holds emoji sequences together."""
    keep = {"\n", "\t", "\u200d"}
    codes = [c for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs") and chr(c) not in keep]
    ranges, start = [], codes[0]
    for prev, cur in zip(codes, [*codes[1:], None]):
        if cur != prev + 1:
            ranges.append(f"\\U{start:08x}" + (f"-\\U{prev:08x}" if prev != start else ""))
            start = cur
    return re.compile("[" + "".join(ranges) + "]")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return CARD_TOKEN if 13 <= len(digits) <= 19 and _luhn(digits) and len(set(digits)) > 1 else match.group(0)


def _iban(match: re.Match) -> str:
    code = match.group(0).replace(" ", "")
    moved = code[4:] + code[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return IBAN_TOKEN if int(number) % 97 == 1 else match.group(0)


def _looks_like_phone(candidate: str, before: str = "") -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    stripped = candidate.strip()
    if stripped.startswith(("+", "00")):
        return 8 <= digits <= 15
    if _NANP.match(stripped) or _IN_MOBILE.match(stripped):
        return True
    if stripped.isdigit() and ((digits == 10 and stripped[0] in "23456789")  # US 5551234567, India 9876543210
                               or (digits == 11 and stripped[0] == "1" and stripped[1] in "23456789")):
        return True
    if 7 <= digits <= 15 and _PHONE_CUE.search(before[-40:]):
        return True
    if 10 <= digits <= 13 and _TRUNK.match(stripped):
        return True
    # Local numbers without a country prefix: need separators typical of phone numbers and
    # enough digits, so dates (12-24-2013), sizes (10 12) and prices are left alone.
    groups = re.split(r"[\s.\-/()]+", stripped)
    return 9 <= digits <= 15 and len(groups) >= 3 and stripped.startswith(("(", "0"))


def scrub_pii(text: str) -> str:
    """Replace e-mail addresses, URLs and phone numbers with placeholder tokens.

    Examples
    --------
    >>> scrub_pii("mail me at jane.doe@example.co.uk or call +44 20 7946 0958")
    'mail me at [email] or call [phone]'
    """
    if "@" in text:
        text = _EMAIL.sub(EMAIL_TOKEN, text)
    lower = text.lower()
    if "at" in lower:
        text = _EMAIL_OBFUSCATED.sub(EMAIL_TOKEN, text)
        if "dot" in lower:
            text = _EMAIL_SPELLED.sub(
                lambda m: m.group(0) if m.group(0).split(None, 1)[0].lower() in _NOT_LOCAL_PART else EMAIL_TOKEN, text)
    if "/" in text or "www." in lower:
        text = _URL.sub(URL_TOKEN, text)
    if sum(ch.isdigit() for ch in text) < 7:  # no number long enough for a card, IBAN, id or phone
        return text
    text = _CARD.sub(_card, text)
    text = _IBAN.sub(_iban, text)
    text = _SSN.sub(ID_TOKEN, text)
    return _PHONE.sub(lambda m: PHONE_TOKEN if _looks_like_phone(m.group(0), m.string[max(0, m.start() - 40):m.start()]) else m.group(0), text)


def clean_text(text: str | None) -> str:
    """Unescape HTML, drop tags and control characters, normalise whitespace.

    Emoji, punctuation, case and stopwords are kept. ``None`` becomes ``""``.
    """
    if not text:
        return ""
    for _ in range(_MAX_PASSES):  # until stable, so cleaning a cleaned text changes nothing ("<<b>>")
        before = text
        if "&" in text:
            text = html.unescape(text)
        if "<" in text:
            text = _BR.sub("\n", text)
            text = _TAG.sub(" ", text)
        text = _invisible_chars().sub("", text)
        if text == before:
            break
    text = _SPACE.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    return text.strip()


def prepare_for_storage(text: str | None) -> str:
    """The one transform applied to review titles and bodies before they are stored."""
    return scrub_pii(clean_text(text))
