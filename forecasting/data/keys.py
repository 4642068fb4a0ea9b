"""Series keys and the normalisation of publishers' names into them.

A key is a readable lowercase path: ``<region>/<component>[/<dimension>=<value>]``, e.g.
``southwest/usbp``, ``southwest/usbp/sector=rio-grande-valley``,
``southwest/usbp/citizenship=venezuela``, ``southwest/cbp/demographic=family-units``.
``cbp`` is Border Patrol (``usbp``) and Field Operations (``ofo``) together.
"""

from __future__ import annotations

import re
import unicodedata

REGIONS = {
    "southwest land border": "southwest",
    "northern land border": "northern",
    "coastal border": "coastal",
}
COMPONENTS = {
    "u.s. border patrol": "usbp",
    "office of field operations": "ofo",
}
#: Publishers label the same demographic differently: OHSS "Family Unit Individuals" is CBP "FMUA".
DEMOGRAPHICS = {
    "single adults": "single-adults",
    "family unit individuals": "family-units",
    "fmua": "family-units",
    "unaccompanied children": "unaccompanied-children",
    "uac": "unaccompanied-children",
    "accompanied minors": "accompanied-minors",
}
#: Slugs of the same country as OHSS and CBP spell it, after ``slug`` has run.
CITIZENSHIP_ALIASES = {
    "china-peoples-republic": "china",
    "burma": "myanmar",
    "myanmar-burma": "myanmar",
    "korea-south": "south-korea",
    "korea-north": "north-korea",
    "congo-democratic-republic": "dr-congo",
    "congo-democratic-republic-the": "dr-congo",
    "congo-republic": "congo",
    "cote-divoire": "ivory-coast",
    "russian-federation": "russia",
    "turkiye": "turkey",
    "serbia-and-montenegro-former": "serbia-and-montenegro",
}
#: Citizenship labels that mean "everyone not listed": a residual, not a country.
RESIDUAL_CITIZENSHIPS = {"other", "all-others"}
#: Totals must be complete month by month; breakdowns may skip months with (next to) no encounters.
TOTAL_DEPTH = 2


def slug(text: str) -> str:
    """Lowercase ASCII slug: apostrophes dropped, other non-alphanumerics folded into '-'."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['’`]", "", ascii_text.lower())
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def citizenship_slug(name: str) -> str:
    """One slug per country across publishers ("CHINA, PEOPLES REPUBLIC OF" → ``china``)."""
    s = re.sub(r"-of(-the)?$", "", slug(name))
    return CITIZENSHIP_ALIASES.get(s, s)


def sector_slug(name: str) -> str:
    """OHSS ``Rio Grande Valley, TX``, CBP ``Rio Grande Valley Sector`` → ``rio-grande-valley``."""
    base = re.sub(r",\s*[A-Za-z]{2}$", "", str(name).strip())
    base = re.sub(r"\s+sector$", "", base, flags=re.IGNORECASE)
    return slug(base)


def lookup(table: dict[str, str], name: str, what: str) -> str:
    """Map a publisher's label through ``table``; unknown labels raise naming the accepted ones."""
    try:
        return table[str(name).strip().lower()]
    except KeyError:
        accepted = sorted(table)
        raise KeyError(f"unknown {what} '{name}'; accepted: {accepted}") from None


def is_total(key: str) -> bool:
    """True for region/component totals, which must have no missing month."""
    return key.count("/") + 1 <= TOTAL_DEPTH
