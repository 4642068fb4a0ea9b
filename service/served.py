"""One loaded bundle and everything the service derives from it, replaced whole on a swap.

A request takes a reference to the current :class:`Served` once and uses only it, so a swap (an
attribute assignment in :class:`~service.registry.ModelRegistry`) never mixes two versions in one
answer. Derived state — serialised forecast responses, counterfactual engines, calibrated sample
paths, charts — lives here and goes with its bundle.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from fastapi.concurrency import run_in_threadpool

import forecasting.counterfactual as cf
from forecasting.bundle import Bundle, SeriesModel
from forecasting.frame import DS, MEAN, months_between
from forecasting.hierarchy import FORECAST, KIND
from forecasting.models.base import Capability, Forecaster
from service import exceedance

log = logging.getLogger("service")


@dataclass(frozen=True)
class ModelInfo:
    """Which registered model version a :class:`Served` holds and where it came from."""

    name: str
    version: str
    alias: str
    run_id: str | None
    source: str  # "tracking" or "cache"
    loaded_at: dt.datetime
    tracking_uri: str


@dataclass
class Answers:
    """What a series' model can answer beyond forecasts, and why not."""

    counterfactual: bool = False
    decompose: bool = False
    reason: str | None = None


class BoundedCache:
    """Response bytes by key, bounded in entries and in bytes; the oldest entry goes first.
    Reads take no lock."""

    def __init__(self, size: int, max_bytes: int):
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        return self._data.get(key)

    def put(self, key: Hashable, value: bytes) -> bytes:
        if self.size <= 0 or len(value) > self.max_bytes:
            return value
        with self._lock:
            old = self._data.pop(key, None)
            self.bytes -= len(old) if old is not None else 0
            while self._data and (
                len(self._data) >= self.size or self.bytes + len(value) > self.max_bytes
            ):
                self.bytes -= len(self._data.pop(next(iter(self._data))))
            self._data[key] = value
            self.bytes += len(value)
        return value

    def __len__(self) -> int:
        return len(self._data)


def month(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m-%d}"


def finite(value: float) -> float | None:
    """JSON has no NaN: non-finite numbers become null."""
    return value if math.isfinite(value) else None


def clean(obj: object) -> object:
    """``obj`` with every non-finite float replaced by ``None`` (recursively)."""
    if isinstance(obj, float):
        return finite(obj)
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, np.floating):
        return finite(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def dumps(obj: object) -> bytes:
    return json.dumps(clean(obj), separators=(",", ":"), allow_nan=False).encode()


@dataclass
class _SeriesState:
    engine: cf.CounterfactualEngine | None = None
    engine_lock: threading.Lock = field(default_factory=threading.Lock)
    paths: np.ndarray | None = None
    paths_lock: threading.Lock = field(default_factory=threading.Lock)


class Served:
    """A loaded bundle with its caches.

    Args:
        bundle: the bundle.
        info: its registered version and origin.
        response_cache_size, chart_cache_size: entries kept of serialised responses and PNGs.
        response_cache_bytes, chart_cache_bytes: the bytes they may hold.
    """

    def __init__(
        self,
        bundle: Bundle,
        info: ModelInfo,
        response_cache_size: int = 4096,
        chart_cache_size: int = 256,
        response_cache_bytes: int = 64 << 20,
        chart_cache_bytes: int = 32 << 20,
    ):
        self.bundle = bundle
        self.info = info
        #: Response bodies by the validated request (``service.edge`` reads the forecasts' too).
        self.responses = BoundedCache(response_cache_size, response_cache_bytes)
        self.charts = BoundedCache(chart_cache_size, chart_cache_bytes)
        self.capability: dict[str, Answers] = {k: Answers() for k in bundle.keys}
        self._state: dict[str, _SeriesState] = {k: _SeriesState() for k in bundle.keys}

    @property
    def version(self) -> str:
        return self.info.version

    async def respond(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The response bytes for a request: a repeated one is a dict read on the event loop;
        anything else runs ``compute`` in the thread pool (it may fit models) and is kept."""
        body = self.responses.get(key)
        if body is None:
            body = self.responses.put(key, await run_in_threadpool(compute))
        return body

    # -- loading -------------------------------------------------------------------------------

    def warm(self, counterfactuals: bool = True) -> Served:
        """Compute what requests read: every series' full forecast and, where the model is a
        regression on interventions, its counterfactual engine (draws and baseline paths)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for key in self.bundle.keys:
                self.bundle.forecast(key, self.bundle.max_h)
                if counterfactuals:
                    self._build_engine(key)
        for message in sorted({str(w.message) for w in caught}):
            log.info("while warming version %s: %s", self.version, message)
        return self

    def _build_engine(self, key: str) -> cf.CounterfactualEngine | None:
        state = self._state[key]
        cap = self.capability[key]
        with state.engine_lock:
            if state.engine is not None or cap.reason is not None:
                return state.engine
            entry = self.bundle.series_model(key)
            try:
                # The chosen model when it is a regression on interventions, else the best
                # SARIMAX / UCM the same training fitted for the series.
                model = self.bundle.effect_model(key)
                engine = cf.CounterfactualEngine(
                    model,
                    entry.y,
                    entry.X,
                    self.bundle.catalog,
                    key,
                    horizon=self.bundle.max_h,
                    candidates=self.bundle.histories(),
                ).warm()
            except NotImplementedError as exc:
                cap.reason = f"the served model of {key} is {entry.model_name}: {exc}"
                return None
            except Exception as exc:  # noqa: BLE001 - one series must not stop the bundle
                cap.reason = f"the models of {key} cannot run counterfactuals: {exc}"
                log.warning("%s", cap.reason)
                return None
            state.engine = engine
            cap.counterfactual = True
            cap.decompose = self.structural_model(key) is not None
        return engine

    def structural_model(self, key: str) -> Forecaster | None:
        """The series' model with level and seasonal components (what decompositions need),
        or None."""
        try:
            return self.bundle.effect_model(key, Capability.COMPONENTS)
        except NotImplementedError:
            return None

    # -- lookups -------------------------------------------------------------------------------

    def entry(self, key: str) -> SeriesModel:
        return self.bundle.series_model(key)

    def engine(self, key: str) -> tuple[cf.CounterfactualEngine | None, Answers]:
        """The series' counterfactual engine (built on first use), or None with the reason."""
        self.entry(key)  # unknown series: UnknownSeriesError
        engine = self._state[key].engine or self._build_engine(key)
        return engine, self.capability[key]

    def supported(self, ability: Literal["counterfactual", "decompose"]) -> list[str]:
        """The series whose model can answer ``ability`` (a :class:`Answers` field), for
        messages that say where a request would work."""
        return [k for k, c in self.capability.items() if getattr(c, ability)]

    def engine_lock(self, key: str) -> threading.Lock:
        # CounterfactualEngine caches scenarios and pre-period fits in plain dicts: one run at a
        # time per series (runs are milliseconds; the GIL serialises them anyway).
        return self._state[key].engine_lock

    # -- forecasts -----------------------------------------------------------------------------

    def forecast_frame(self, key: str, h: int, level: Sequence[int]) -> pd.DataFrame:
        return self.bundle.forecast(key, h, level)

    def forecast_payload(
        self, key: str, h: int, level: Sequence[int], thresholds: Sequence[float]
    ) -> dict:
        """The JSON object of one series' forecast (see ``schemas.ForecastResponse``)."""
        record = self.bundle.forecast_record(key, h, level)
        rows = record["rows"]
        payload: dict = {"series": key, "model_version": self.version, **record}
        if thresholds:
            probs, method = self.exceedance(key, h, thresholds)
            for row, p in zip(rows, probs, strict=True):
                row["exceedance"] = [
                    {"threshold": t, "probability": round(float(v), 4)}
                    for t, v in zip(thresholds, p, strict=True)
                ]
            payload["exceedance_method"] = method
        return payload

    def exceedance(self, key: str, h: int, thresholds: Sequence[float]) -> tuple[np.ndarray, str]:
        """P(month > threshold) for each served row (nowcasts, then ``h`` months), shape
        (rows, len(thresholds)), and the method.

        A series served from its own model uses its simulated paths; one whose means come from
        its hierarchy, the lognormal through its served bounds.
        """
        full = self.bundle.forecast(key, h, self.bundle.level)
        paths = None if self.bundle.reconciled(key) else self._calibrated_paths(key)
        if paths is not None and (full[KIND] == FORECAST).all():
            return exceedance.path_exceedance(paths[:, :h], thresholds), exceedance.SAMPLE_PATHS
        return (
            exceedance.lognormal_exceedance(full, self.bundle.level, thresholds),
            exceedance.LOGNORMAL,
        )

    def _calibrated_paths(self, key: str) -> np.ndarray | None:
        """The series' calibrated sample paths (simulated once), or None when the family
        cannot simulate."""
        state = self._state[key]
        if state.paths is None:
            with state.paths_lock:
                if state.paths is None:
                    state.paths = self._simulate(key)
        return state.paths if state.paths.size else None

    def _simulate(self, key: str) -> np.ndarray:
        bundle, entry = self.bundle, self.entry(key)
        h = bundle.max_h
        X_df = bundle.future_X(key, h)
        try:
            paths = entry.model.sample_paths(h, X_df, exceedance.N_PATHS, exceedance.SEED)
        except NotImplementedError:
            return np.empty((0, h))
        if entry.calibrator is None:
            return paths
        model_frame = entry.model.predict(h, X_df, bundle.level)
        calibrated = bundle.forecast(key, h, bundle.level)
        return exceedance.calibrate_paths(
            paths, model_frame.reset_index(drop=True), calibrated, bundle.level
        )

    # -- summaries -----------------------------------------------------------------------------

    def effect_families(self, key: str) -> list[str]:
        """The regression families (sarimax, ucm) the bundle holds for the series."""
        return list(self.entry(key).regressions())

    def series_summary(self, key: str) -> dict:
        y = self.bundle.history(key)
        cap = self.capability.get(key, Answers())
        first = self.bundle.forecast(key, 1, self.bundle.level)
        first = first[first[KIND] == FORECAST]
        return {
            "series": key,
            "model": self.bundle.model_label(key),
            "history_start": f"{y.index[0]:%Y-%m}",
            "history_end": f"{y.index[-1]:%Y-%m}",
            "as_of": f"{self.bundle.as_of(key):%Y-%m}",
            "nowcast_months": months_between(y.index[-1], self.bundle.as_of(key)),
            "months": len(y),
            "latest": float(y.iloc[-1]),
            "next_month": month(first[DS].iloc[0]),
            "next_mean": round(float(first[MEAN].iloc[0]), 1),
            "counterfactual": cap.counterfactual,
            "decompose": cap.decompose,
        }
