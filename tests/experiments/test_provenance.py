"""A study's results name the code, catalog and data they were measured on."""

from __future__ import annotations

import re

from experiments import provenance
from forecasting.interventions import load_catalog


def test_provenance_pins_the_commit_and_the_catalog_as_loaded(tmp_path):
    catalog = load_catalog()
    record = provenance(catalog, "store-fp")
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"]) or record["commit"].startswith("unknown")
    assert record["catalog_events"] == len(catalog)
    assert record["catalog_sha256"] == catalog.fingerprint()
    assert record["store_fingerprint"] == "store-fp"
    # A study without a catalog says so by leaving it out.
    assert "catalog_sha256" not in provenance()
