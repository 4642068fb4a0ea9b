"""``/v1/models``: per series, the chosen model, its backtest metrics and its MLflow run."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import ServedDep
from service.schemas import ERRORS, ModelsOut
from service.served import finite

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsOut, responses=ERRORS)
def models(served: ServedDep) -> dict:
    """The served version and, per series, its model, backtest metrics and training run."""
    bundle, info = served.bundle, served.info
    series = []
    for key in bundle.keys:
        entry, cap = bundle.series_model(key), served.capability[key]
        series.append(
            {
                "series": key,
                "model": entry.model_name,
                "metrics": {k: finite(float(v)) for k, v in sorted(entry.metrics.items())},
                "run_id": entry.run_id,
                "fallback": entry.fallback,
                "effect_models": served.effect_families(key),
                "counterfactual": cap.counterfactual,
                "decompose": cap.decompose,
            }
        )
    return {
        "name": info.name,
        "version": info.version,
        "alias": info.alias,
        "run_id": info.run_id,
        "experiment": bundle.meta.get("experiment"),
        "parent_run_id": bundle.meta.get("parent_run_id"),
        "provisional": bundle.meta.get("provisional"),
        "level": list(bundle.level),
        "max_h": bundle.max_h,
        "series": series,
    }
