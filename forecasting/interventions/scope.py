"""Which series an event acts on: series keys parsed into dimensions, and event scopes.

A series key is ``<region>/<component>[/<dimension>=<value>...]`` (see ``forecasting.data.keys``).
A scope is ``all`` or a mapping of dimensions to accepted values; a series is in scope when it
satisfies every dimension the scope names (values within one dimension are alternatives).
Citizenship, sector and demographic scopes act only on series that carry that dimension: a
Venezuela-only event is a regressor of ``southwest/usbp/citizenship=venezuela``, not of the
``southwest/usbp`` total, whose own all-scope regressors already describe the total.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import field_validator, model_serializer, model_validator

from forecasting.data import keys
from forecasting.interventions._base import StrictModel

REGIONS = tuple(sorted(set(keys.REGIONS.values())))
#: ``cbp`` is Border Patrol and Field Operations together.
COMPONENTS = ("cbp", "ofo", "usbp")
SECTORS = (
    "big-bend",
    "del-rio",
    "el-centro",
    "el-paso",
    "laredo",
    "rio-grande-valley",
    "san-diego",
    "tucson",
    "yuma",
)
DEMOGRAPHICS = tuple(sorted(set(keys.DEMOGRAPHICS.values())))
#: OHSS keys call the demographic dimension ``family``, CBP keys ``demographic``.
DEMOGRAPHIC_DIMENSIONS = ("demographic", "family")
DIMENSIONS = ("citizenship", "sector", *DEMOGRAPHIC_DIMENSIONS)
#: What a scope component covers: an OFO-scoped event acts on ``southwest/ofo`` and on
#: ``southwest/cbp`` (which contains OFO), never on ``southwest/usbp``.
_COMPONENT_SERIES = {"usbp": {"usbp", "cbp"}, "ofo": {"ofo", "cbp"}, "cbp": set(COMPONENTS)}
SCOPE_KEYS = ("regions", "component", "sectors", "citizenships", "demographics")


@dataclass(frozen=True)
class SeriesKey:
    """A parsed series key.

    Attributes:
        key: the key as given, e.g. ``southwest/usbp/citizenship=venezuela``.
        region: ``southwest``, ``northern`` or ``coastal``.
        component: ``usbp``, ``ofo`` or ``cbp``.
        dims: dimension → value, e.g. ``{"citizenship": "venezuela"}``.
    """

    key: str
    region: str
    component: str
    dims: dict[str, str] = field(default_factory=dict)

    @property
    def demographic(self) -> str | None:
        """The demographic value whichever publisher's dimension name carries it."""
        for dim in DEMOGRAPHIC_DIMENSIONS:
            if dim in self.dims:
                return self.dims[dim]
        return None


def parse_series_key(key: str) -> SeriesKey:
    """Split a series key into region, component and dimensions.

    Raises:
        ValueError: the key does not have the form ``<region>/<component>[/<dim>=<value>]``
            with a known region, component and dimension.
    """
    form = "<region>/<component>[/<dimension>=<value>], e.g. southwest/usbp/citizenship=cuba"
    parts = str(key).split("/")
    if len(parts) < 2:
        raise ValueError(f"series key '{key}' must have the form {form}")
    region, component, *rest = parts
    if region not in REGIONS:
        raise ValueError(f"series key '{key}': unknown region '{region}'; accepted: {REGIONS}")
    if component not in COMPONENTS:
        raise ValueError(
            f"series key '{key}': unknown component '{component}'; accepted: {COMPONENTS}"
        )
    dims: dict[str, str] = {}
    for part in rest:
        dim, sep, value = part.partition("=")
        if not sep or not value or dim not in DIMENSIONS:
            raise ValueError(
                f"series key '{key}': segment '{part}' must be <dimension>=<value> with a "
                f"dimension in {DIMENSIONS}"
            )
        dims[dim] = value
    return SeriesKey(str(key), region, component, dims)


def _normalise(
    value: object, slug: Callable[[str], str], accepted: tuple[str, ...] | None, what: str
) -> list[str]:
    """Slug each value (a single value counts as a list of one) and check it is accepted."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a {what} or a list of them; got {value!r}")
    values = [slug(str(v)) for v in value]
    if not values or "" in values:
        raise ValueError(f"give at least one non-empty {what}, or use scope 'all'")
    for v in values:
        if accepted is not None and v not in accepted:
            close = difflib.get_close_matches(v, accepted, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"unknown {what} '{v}'{hint}; accepted: {', '.join(accepted)}")
    return values


def _demographic_slug(value: str) -> str:
    return keys.DEMOGRAPHICS.get(value.strip().lower(), keys.slug(value))


class Scope(StrictModel):
    """The series an event acts on: ``all``, or values of some of their dimensions.

    A mapping may name ``regions``, ``component``, ``sectors``, ``citizenships`` and
    ``demographics``; a series matches when it matches every dimension named. Values are
    normalised the way the data layer builds keys ("EL SALVADOR" → ``el-salvador``, "UAC" →
    ``unaccompanied-children``), then checked against the known vocabularies; citizenships
    accept any country slug.
    """

    regions: tuple[str, ...] = ()
    component: str | None = None
    sectors: tuple[str, ...] = ()
    citizenships: tuple[str, ...] = ()
    demographics: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _all_or_mapping(cls, data: object) -> object:
        if data is None or data == "all":
            return {}
        if isinstance(data, str):
            raise ValueError(
                f"scope must be 'all' or a mapping with keys {', '.join(SCOPE_KEYS)} "
                f"(e.g. {{citizenships: [venezuela]}}); got '{data}'"
            )
        return data

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: object) -> list[str]:
        return _normalise(value, keys.slug, REGIONS, "region")

    @field_validator("component", mode="before")
    @classmethod
    def _component(cls, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"component must be one of {', '.join(COMPONENTS)}; got {value!r}")
        return _normalise(value, keys.slug, COMPONENTS, "component")[0]

    @field_validator("sectors", mode="before")
    @classmethod
    def _sectors(cls, value: object) -> list[str]:
        return _normalise(value, keys.sector_slug, SECTORS, "sector")

    @field_validator("citizenships", mode="before")
    @classmethod
    def _citizenships(cls, value: object) -> list[str]:
        return _normalise(value, keys.citizenship_slug, None, "citizenship")

    @field_validator("demographics", mode="before")
    @classmethod
    def _demographics(cls, value: object) -> list[str]:
        return _normalise(value, _demographic_slug, DEMOGRAPHICS, "demographic")

    @model_serializer
    def _serialize(self) -> str | dict[str, object]:
        if self.is_all:
            return "all"
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._named().items()}

    def _named(self) -> dict[str, tuple[str, ...] | str]:
        return {k: getattr(self, k) for k in SCOPE_KEYS if getattr(self, k)}

    @property
    def is_all(self) -> bool:
        """True when the event acts on every series."""
        return not self._named()

    @property
    def label(self) -> str:
        """Short text for tables: ``all`` or e.g. ``citizenships: cuba, haiti``."""
        if self.is_all:
            return "all"
        return "; ".join(
            f"{k}: {v if isinstance(v, str) else ', '.join(v)}" for k, v in self._named().items()
        )

    def matches(self, series: SeriesKey | str) -> bool:
        """Whether a series (key or parsed key) is in this scope."""
        s = series if isinstance(series, SeriesKey) else parse_series_key(series)
        checks = (
            (self.regions, s.region),
            (self.sectors, s.dims.get("sector")),
            (self.citizenships, s.dims.get("citizenship")),
            (self.demographics, s.demographic),
        )
        if any(accepted and value not in accepted for accepted, value in checks):
            return False
        return self.component is None or s.component in _COMPONENT_SERIES[self.component]
