"""The input data contract: the canonical review and item tables.

Every loader in :mod:`jobs.loaders` turns an outside file into these tables, and every later
stage reads only these columns. Keeping the contract in one module means there is one place
that says what a review is.

Canonical review table (one row per review)
-------------------------------------------
=============  ==========================  ==================================================
column         dtype                       meaning
=============  ==========================  ==================================================
review_id      string, unique              the shop's id, or a stable hash of the review
user_id        string, required            the shop's customer id (never a name)
item_id        string, required            the shop's product id
rating         float64, nullable           stars in [1, 5]; missing when the shop has none
title          string, may be empty        review headline (Amazon ``summary``)
text           string                      review body; title and body are kept apart and
                                            a review needs at least one of them non-empty
timestamp      datetime64[ns, UTC], null   when the review was written
helpful_votes  Int64, nullable             helpfulness votes, where the source has them
verified       boolean, nullable           verified purchase, where the source has it
source         string                      file (or generator) the row came from
line           Int64                       1-based line of the file where the record starts
                                            (JSON lines, CSV: the header is line 1); the row
                                            number for Parquet and in-memory frames
extra          string, nullable            the source's other columns (neither a contract
                                            field nor personal), as a JSON object; null when
                                            there are none
=============  ==========================  ==================================================

Optional item table: ``item_id`` (required), ``title``, ``category``, ``price``.

Quarantine table (one row per rejected input record): ``source``, ``line``, ``user_id``
(the record's user id as given, when one could be read: used by ``emorec forget``),
``field``, ``reason`` (personal data scrubbed) and ``record`` (the raw record as text, with
personal fields such as ``reviewerName`` removed and e-mail addresses, URLs and phone
numbers scrubbed).

Personal columns are recognised by name (:func:`is_personal_field`): names, e-mail
addresses, phone numbers, postal addresses, birth dates, IP addresses, whatever the exact
spelling (``reviewerName``, ``customer_name``, ``shipping_address``, ``E-Mail``...). They are
never read into a review, never kept in ``extra`` and removed from quarantined records.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

REVIEW_COLUMNS: dict[str, str] = {
    "review_id": "string",
    "user_id": "string",
    "item_id": "string",
    "rating": "float64",
    "title": "string",
    "text": "string",
    "timestamp": "datetime64[ns, UTC]",
    "helpful_votes": "Int64",
    "verified": "boolean",
    "source": "string",
    "line": "Int64",
    "extra": "string",
}

#: Fields a review source must provide (a column mapping may rename them).
REQUIRED_REVIEW_FIELDS = ("user_id", "item_id")
#: At least one of these must be present as a column/key in the source.
TEXT_FIELDS = ("text", "title")

ITEM_COLUMNS: dict[str, str] = {
    "item_id": "string",
    "title": "string",
    "category": "string",
    "price": "float64",
}

QUARANTINE_COLUMNS: dict[str, str] = {
    "source": "string",
    "line": "Int64",
    "user_id": "string",
    "field": "string",
    "reason": "string",
    "record": "string",
}

#: Words that make a column personal wherever they appear in its name (:func:`is_personal_field`
#: recognises every spelling, e.g. ``reviewerName``, ``profile_name``, ``email``).
_PERSONAL_WORDS = frozenset({
    "email", "mail", "phone", "telephone", "tel", "mobile", "cell", "fax", "address", "addr", "street", "zip",
    "zipcode", "postcode", "postal", "birthday", "birthdate", "dob", "ip", "ssn", "iban", "passport",
    "username", "firstname", "lastname", "fullname", "surname", "nickname", "forename", "givenname",
})
#: "name" is personal unless the name says whose it is and that is not a person (``product_name``).
_NOT_PERSON = frozenset({"product", "item", "brand", "category", "shop", "store", "file", "model", "variant",
                         "style", "color", "colour", "seller", "merchant", "vendor", "manufacturer", "site", "app"})


@lru_cache(maxsize=4096)
def is_personal_field(name: object) -> bool:
    """Whether a source column holds personal data, by the words of its name.

    ``reviewerName``, ``customer_name``, ``Name``, ``E-Mail``, ``shipping_address``,
    ``phone_number`` and ``ip`` are personal; ``product_name``, ``title`` and ``user_id`` are
    not (the shop's customer id is the one personal key emorec keeps).
    """
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w]
    if not words:
        return False
    joined = "".join(words)
    if any(w in _PERSONAL_WORDS for w in words) or joined in _PERSONAL_WORDS or joined == "emailaddress":
        return True
    return "name" in words and not any(w in _NOT_PERSON for w in words)


#: Longest review (title + text, in characters) that is stored; longer ones are quarantined
#: (a 200 MB "review" is an export error, and would cost minutes and gigabytes downstream).
MAX_REVIEW_CHARS = 100_000

#: Ratings outside this closed range are quarantined.
RATING_RANGE = (1.0, 5.0)
#: Timestamps outside this range are "absurd" and quarantined (the web shop era to tomorrow).
MIN_TIMESTAMP = pd.Timestamp("1995-01-01", tz="UTC")


def max_timestamp() -> pd.Timestamp:
    """Latest acceptable review time: one day from now (clock skew tolerated)."""
    return pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """An empty frame with the given column dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def conform(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Return ``df`` with exactly ``columns`` in order and cast to their dtypes.

    Missing optional columns are added as nulls; extra columns are dropped.
    """
    out = {}
    n = len(df)
    for col, dtype in columns.items():
        s = df[col] if col in df.columns else pd.Series([None] * n, index=df.index)
        if dtype.startswith("datetime64"):
            s = pd.to_datetime(s, utc=True)
            if str(s.dtype) != dtype:
                s = s.astype(dtype)
        else:
            s = s.astype(dtype)
        out[col] = s
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)
