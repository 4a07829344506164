"""What a text column's name says it holds (`tz`, `billing_country`, `shipped_on`), and
real values of the kinds that have few."""

from __future__ import annotations

import itertools
import re

# Text columns whose name says what they hold, holding it: later migrations cast them
# (::uuid, ::inet, ::jsonb, ::int), use them (AT TIME ZONE tz) or CHECK their form, and
# "tz-1" or "external_uuid-1" fails there where real rows pass. Read from the name's
# last word ("billing_country", "country_code"), so "account" or "discount" is no count.
_KIND_BY_WORD = {
    "currency": "currency",
    "ccy": "currency",
    "country": "country",
    "language": "language",
    "lang": "language",
    "locale": "language",  # a bare language code is a locale in every convention
    "url": "url",
    "uri": "url",
    "href": "url",
    "website": "url",
    "homepage": "url",
    "uuid": "uuid",
    "guid": "uuid",
    "ip": "ip",
    "ipaddr": "ip",
    "ipaddress": "ip",
    "phone": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "tel": "phone",
    "fax": "phone",
    "msisdn": "phone",
    "slug": "slug",
    # dates kept as text, in ISO form: later cast to date or timestamptz
    "date": "date",
    "birthday": "date",
    "timestamp": "timestamp",
    "datetime": "timestamp",
    # numbers kept as text, often cast to numbers later; nothing else goes by these names
    "count": "number",
    "amount": "number",
    "price": "number",
    "quantity": "number",
    "qty": "number",
    "cents": "number",
    "cost": "number",
}
_QUALIFIERS = frozenset({"code", "iso", "iso2", "alpha2"})  # "country_code" is a country


def named_kind(name: str) -> str | None:
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    words = [w for w in words if w]
    if not words:
        return None
    pairs = set(itertools.pairwise(words))
    if "offset" not in words and (
        {"tz", "timezone", "tzname"} & set(words) or ("time", "zone") in pairs
    ):
        return "tz"
    if any("email" in w for w in words):
        return "email"
    if {"json", "jsonb"} & set(words):
        return "json"
    while len(words) > 1 and words[-1] in _QUALIFIERS:
        words.pop()
    last = words[-1]
    if last in ("address", "addr") and "ip" in words:
        return "ip"
    if last == "number" and len(words) > 1 and _KIND_BY_WORD.get(words[-2]) == "phone":
        return "phone"
    if len(words) > 1 and last in ("on", "at"):  # shipped_on, created_at
        return "date" if last == "on" else "timestamp"
    for word in (last, last.removesuffix("s"), last.removesuffix("ies") + "y"):
        if word in _KIND_BY_WORD:
            return _KIND_BY_WORD[word]
    return None


NAMED_CHOICES = {
    "tz": (
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Asia/Tokyo",
        "Europe/London",
        "America/Los_Angeles",
        "Australia/Sydney",
        "Asia/Kolkata",
        "Europe/Berlin",
        "America/Sao_Paulo",
        "Africa/Johannesburg",
        "Asia/Singapore",
        # for short columns: zone names too (tzdata's "backward" file), not abbreviations
        "CET",
        "EST",
        "GMT",
        "EET",
        "WET",
        "MST",
        "HST",
    ),
    "currency": (
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "CAD",
        "AUD",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "INR",
    ),
    "country": ("US", "FR", "DE", "GB", "JP", "CA", "AU", "BR", "IN", "ES", "IT", "NL"),
    "language": ("en", "fr", "de", "es", "ja", "pt", "it", "nl", "sv", "pl", "zh", "ko"),
}
