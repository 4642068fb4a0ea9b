"""The validity study's sample follows the catalog, and the listing of what a change removed
tells a month made ineligible from one merely redrawn."""

from __future__ import annotations

import pytest

from experiments.counterfactual import catalog_change
from experiments.counterfactual.run import HERE, load_config, tasks
from forecasting.interventions import Catalog, load_catalog
from forecasting.interventions.catalog import Event

KEY = "southwest/usbp/sector=yuma"


@pytest.fixture(scope="module")
def config():
    config = load_config(HERE / "config.yaml")
    return {**config, "series": [KEY]}


def _with_event(catalog: Catalog, start: str) -> Catalog:
    """``catalog`` and one more event acting on every series from ``start``, for a month."""
    fields = catalog.events[0].model_dump()
    fields.update(id="planted", start=start, end=start, scope="all", group=None)
    event = Event.model_validate(fields)
    return Catalog([*catalog.events, event], list(catalog.groups), sources=["test"])


def test_an_added_event_makes_its_months_ineligible_and_the_listing_says_so(config):
    shipped = load_catalog()
    before, _ = tasks(config, shipped)
    onset = before[0].onset
    changed = _with_event(shipped, f"{onset}-01")
    after, _ = tasks(config, changed)
    assert onset not in {t.onset for t in after}
    clear = {k: found for k, (_, found) in catalog_change.eligible(config, changed).items()}
    text = catalog_change.report("a", "b", before, after, [shipped, changed], clear)
    assert f"- `{KEY}` {onset} (ineligible)" in text
    assert f"| a | {len(shipped.events)} | `{shipped.fingerprint()[:12]}` | {len(before)} |" in text
