"""Interventions: the event catalog, their shapes as regressor columns, and scenarios.

Typical use::

    catalog = load_catalog()
    X = design_matrix(catalog, "southwest/usbp/citizenship=venezuela", "2019-01", "2025-12")
    scenario = Scenario.from_json_or_yaml("remove: [{event: mx_enforcement_surge_2023_12}]")
    counterfactual = apply_scenario(catalog, scenario, "southwest/usbp/citizenship=venezuela", X)

The catalog format and the meaning of dates, shapes, scopes and groups are in ``README.md``
beside this file.
"""

from forecasting.interventions.catalog import (
    ENV_CATALOG,
    HOME_CATALOG,
    Catalog,
    Event,
    Group,
    load_catalog,
    user_catalog_files,
)
from forecasting.interventions.design import (
    design_matrix,
    indicator_matrix,
    indicator_span,
    month_index,
)
from forecasting.interventions.scenarios import (
    Add,
    AddedRegressor,
    CounterfactualDesign,
    MoveIndicator,
    Remove,
    Scale,
    Scenario,
    apply_scenario,
)
from forecasting.interventions.scope import Scope, SeriesKey, parse_series_key
from forecasting.interventions.shapes import Decay, Pulse, Ramp, Step, monthly_values

__all__ = [
    "ENV_CATALOG",
    "HOME_CATALOG",
    "Add",
    "AddedRegressor",
    "Catalog",
    "CounterfactualDesign",
    "Decay",
    "Event",
    "Group",
    "MoveIndicator",
    "Pulse",
    "Ramp",
    "Remove",
    "Scale",
    "Scenario",
    "Scope",
    "SeriesKey",
    "Step",
    "apply_scenario",
    "design_matrix",
    "indicator_matrix",
    "indicator_span",
    "load_catalog",
    "month_index",
    "monthly_values",
    "parse_series_key",
    "user_catalog_files",
]
