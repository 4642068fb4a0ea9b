"""``/health``: which version is served, since when, on what data, and whether something is off."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, Response

from forecasting.home import TRAINING_ENDED, read_training_progress
from service.deps import RegistryDep, served_now
from service.schemas import DataVintage, Health, ServedModel, TrainingProgress

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(registry: RegistryDep, response: Response) -> Health:
    """Served model version and alias, load time, data vintage, and degraded reasons (open)."""
    served = await served_now(registry)
    status = registry.status
    reasons = registry.degraded_reasons()
    model = data = None
    if served is not None:
        info, meta = served.info, served.bundle.meta
        model = ServedModel(
            name=info.name,
            version=info.version,
            alias=info.alias,
            run_id=info.run_id,
            source=info.source,
            loaded_at=info.loaded_at,
            tracking_uri=info.tracking_uri,
            provisional=meta.get("provisional"),
        )
        data = DataVintage(
            fingerprint=meta.get("data_fingerprint"),
            newest_month=meta.get("data_newest_month"),
            experiment=meta.get("experiment"),
            code_version=meta.get("code_version"),
        )
    if served is None:
        response.status_code = 503
    return Health(
        status="unavailable" if served is None else "degraded" if reasons else "ok",
        degraded=bool(reasons),
        reason="; ".join(reasons) or None,
        reasons=reasons,
        model=model,
        data=data,
        started_at=status.started_at,
        last_poll_at=status.last_poll_at,
        poll_seconds=registry.settings.poll_seconds,
        training=training_progress(registry.settings.home),
    )


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def training_progress(home: Path) -> TrainingProgress | None:
    """The background training's record; ``stopped`` if its process ended before it did."""
    record = read_training_progress(home)
    if record is None:
        return None
    fields = {k: v for k, v in record.items() if k in TrainingProgress.model_fields}
    if fields.get("state") not in TRAINING_ENDED and not _alive(record.get("pid")):
        fields["state"] = "stopped"
    try:
        return TrainingProgress.model_validate(fields)
    except ValueError:
        return None
