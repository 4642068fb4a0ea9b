"""Share models: each breakdown child's share of its parent, their nowcasts at past origins and
the calibration of their errors (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.calibration import Calibrator
from forecasting.errors import DataError
from forecasting.frame import CUTOFF, DS, MEAN, STEP, UNIQUE_ID, Y, months_between
from forecasting.hierarchy.splits import CALIBRATION_ORIGINS, Hierarchy, Split, dimension


def _log_share(child: pd.Series, parent: pd.Series) -> pd.Series:
    return np.log((child + 1) / (parent + 1))


@dataclass(frozen=True)
class ShareConfig:
    """How share models are fitted (an experiment's ``hierarchy`` section).

    Attributes:
        covariates: per breakdown dimension, the keys (of the same parent) whose share changes
            move the children's shares.
        ridge: the ridge penalty on the covariates' coefficients.
        window_months: the history, before a child's last month, its share model is fitted on.
        level_months: the months whose mean share a child's share starts from (1: its last).
    """

    covariates: Mapping[str, Sequence[str]] = field(default_factory=dict)
    ridge: float = 1.0
    window_months: int = 72
    level_months: int = 1


@dataclass
class ShareModel:
    """A child's log share of its parent, moved by its covariates' shares (see the module
    docstring).

    Attributes:
        last: the child's last observed month.
        level: its log share then.
        beta: the ridge coefficients on the covariates' log-share changes.
        covariates: the covariate keys, in ``beta``'s order.
    """

    last: pd.Timestamp
    level: float
    beta: np.ndarray
    covariates: tuple[str, ...]

    @classmethod
    def fit(
        cls,
        share: pd.Series,
        covariates: pd.DataFrame,
        max_gap: int,
        ridge: float,
        window_months: int,
        level_months: int = 1,
    ) -> ShareModel:
        """Fit on the log shares up to the child's last month.

        Args:
            share: the child's log share, month-start index, ending at its last observed month.
            covariates: the covariates' log shares (columns) over at least ``share``'s months;
                months where one is missing are left out of the fit.
            max_gap: the longest change fitted, in months (the child's ragged edge).
            ridge: the ridge penalty on ``beta``.
            window_months: the months of history, before the last, the fit uses.
            level_months: the months whose mean share is the level (1: the last month's).
        """
        last = share.index[-1]
        names = tuple(covariates.columns)
        beta = np.zeros(len(names))
        if names:
            start = last - pd.DateOffset(months=window_months)
            window = share.loc[start:last]
            z = window.to_numpy(dtype=float)
            x = covariates.reindex(window.index).to_numpy(dtype=float)
            rows, targets = [], []
            for gap in range(1, min(max(1, max_gap), len(z) - 1) + 1):
                dz, dx = z[gap:] - z[:-gap], x[gap:] - x[:-gap]
                keep = np.isfinite(dz) & np.isfinite(dx).all(axis=1)
                rows.append(dx[keep])
                targets.append(dz[keep])
            if rows:
                A, b = np.vstack(rows), np.concatenate(targets)
                if len(b) > len(names):
                    beta = np.linalg.solve(A.T @ A + ridge * np.eye(len(names)), A.T @ b)
        level = float(np.log(np.exp(share.iloc[-level_months:]).mean()))
        return cls(last, level, beta, names)

    def predict(self, covariates: pd.DataFrame, months: pd.DatetimeIndex) -> np.ndarray:
        """Log shares over ``months``: the covariates' changes since :attr:`last`, each held at
        its newest value after its data end."""
        if not self.covariates:
            return np.full(len(months), self.level)
        x = covariates[list(self.covariates)].ffill()
        at_last = x.loc[self.last].to_numpy()
        now = x.reindex(months, method="ffill").to_numpy()
        change = np.nan_to_num(now - at_last)
        return self.level + change @ self.beta


@dataclass
class ChildModel:
    """What a breakdown child is served from: its history, share model and calibration."""

    key: str
    y: pd.Series
    share: ShareModel
    calibrator: Calibrator | None


def share_means(
    children: Sequence[str],
    parent: pd.Series,
    observed: Mapping[str, pd.Series],
    logs: pd.DataFrame,
) -> pd.DataFrame:
    """The children's means over ``logs``' months: observed where a child is observed, else its
    share of what the observed siblings leave of the parent.

    Args:
        children: the split's children (they add up to the parent).
        parent: the parent's value per month (observed or forecast mean), over ``logs``' months.
        observed: each child's observed counts (only the months it is observed).
        logs: each child's share-model log share per month (columns ``children``).
    """
    months = logs.index
    known = pd.DataFrame({c: observed[c].reindex(months) for c in children}, index=months)
    weights = np.exp(logs[list(children)]).where(known.isna(), 0.0)
    left = (parent.reindex(months) - known.sum(axis=1)).clip(lower=0)
    estimate = weights.div(weights.sum(axis=1).replace(0, np.nan), axis=0).mul(left, axis=0)
    return known.fillna(estimate)


def _covariates(
    parent: str, history: Mapping[str, pd.Series], config: ShareConfig, dim: str
) -> pd.DataFrame:
    keys = [k for k in config.covariates.get(dim, ()) if k in history]
    P = history[parent]
    return pd.DataFrame({k: _log_share(history[k], P) for k in keys})


def _fit_models(
    split: Split,
    history: Mapping[str, pd.Series],
    covariates: pd.DataFrame,
    edges: Mapping[str, int],
    config: ShareConfig,
) -> dict[str, ShareModel]:
    P = history[split.parent]
    models = {}
    for c in split.children:
        share = _log_share(history[c], P).dropna()
        own = covariates[[k for k in covariates.columns if k != c]]
        models[c] = ShareModel.fit(
            share, own, edges[c], config.ridge, config.window_months, config.level_months
        )
    return models


def _log_paths(
    models: Mapping[str, ShareModel], covariates: pd.DataFrame, months: pd.DatetimeIndex
) -> pd.DataFrame:
    return pd.DataFrame({c: m.predict(covariates, months) for c, m in models.items()}, index=months)


def share_nowcast(
    split: Split,
    history: Mapping[str, pd.Series],
    config: ShareConfig,
    edges: Mapping[str, int],
    origin: pd.Timestamp,
    horizon: int,
) -> pd.DataFrame | None:
    """Every child's means at one past origin with the parent known: the share models' own
    point error.

    At the origin (the as-of month of the time) every child's data are cut its ragged edge
    before it (``edges``, in months; 0 for a child as fresh as the parent), the covariates at
    the origin, and each child is nowcast from its cut to ``horizon`` months after the origin
    from the parent's actual values.

    Returns:
        Frame indexed by month (from the earliest cut) with one column per child (observed
        values where its cut leaves them), or ``None`` when a child has under two months then.
    """
    cut = {c: origin - pd.DateOffset(months=edges[c]) for c in split.children}
    truncated = {c: history[c].loc[: cut[c]] for c in split.children}
    if any(len(v) < 2 for v in truncated.values()):
        return None
    dim = dimension(split.children[0])
    covariates = _covariates(split.parent, history, config, dim).loc[:origin]
    models = _fit_models(split, {**history, **truncated}, covariates, edges, config)
    start = min(cut.values()) + pd.offsets.MonthBegin(1)
    months = pd.date_range(start, origin + pd.DateOffset(months=horizon), freq="MS")
    logs = _log_paths(models, covariates, months)
    return share_means(split.children, history[split.parent], truncated, logs)


def split_backtest(
    split: Split,
    history: Mapping[str, pd.Series],
    config: ShareConfig,
    edges: Mapping[str, int],
    origins: Sequence[pd.Timestamp],
    horizon: int,
) -> pd.DataFrame:
    """:func:`share_nowcast` at several origins, as a backtest frame.

    Returns:
        Long frame: ``unique_id`` (child), ``cutoff`` (origin), ``ds``, ``step`` (months since the
        child's cut), ``y`` (actual, NaN where unobserved) and ``mean``.
    """
    frames = []
    for origin in origins:
        means = share_nowcast(split, history, config, edges, origin, horizon)
        if means is None:
            continue
        for c in split.children:
            cut = origin - pd.DateOffset(months=edges[c])
            rows = means.loc[means.index > cut, c]
            steps = [months_between(cut, t) for t in rows.index]
            frames.append(
                pd.DataFrame(
                    {
                        UNIQUE_ID: c,
                        CUTOFF: origin,
                        DS: rows.index,
                        STEP: steps,
                        Y: history[c].reindex(rows.index).to_numpy(),
                        MEAN: rows.to_numpy(),
                    }
                )
            )
    if not frames:
        raise DataError(f"no origin of {split.parent}'s history can backtest its children's shares")
    return pd.concat(frames, ignore_index=True)


def _calibrator(rows: pd.DataFrame, levels: Sequence[int]) -> Calibrator | None:
    """Conformal half-widths by months since the last observation, from the most recent
    :data:`CALIBRATION_ORIGINS` origins at each step."""
    rows = rows.dropna(subset=[Y]).sort_values(CUTOFF)
    recent = rows.groupby(STEP, group_keys=False).tail(CALIBRATION_ORIGINS)
    try:
        return Calibrator(levels).fit(recent)
    except DataError:
        return None


def with_residuals(
    splits: Sequence[Split], history: Mapping[str, pd.Series]
) -> dict[str, pd.Series]:
    """``history`` with each split's derived residual: the parent less the served children, in
    the months where all of them are observed (never below zero: the publishers round)."""
    out = dict(history)
    for split in (s for s in splits if s.residual):
        others = [out[c] for c in split.children if c != split.residual]
        summed = pd.concat(others, axis=1).dropna().sum(axis=1)
        out[split.residual] = (out[split.parent] - summed).dropna().clip(lower=0)
    return out


def fit_hierarchy(
    splits: Sequence[Split],
    history: Mapping[str, pd.Series],
    config: ShareConfig,
    levels: Sequence[int],
    max_h: int,
) -> Hierarchy:
    """Share models and their calibration for every breakdown child, at the data's edge.

    Args:
        splits: the panel's splits (:func:`find_splits`).
        history: observed counts of every served key (month-start index, gap-free).
        config: the share models' settings.
        levels: the interval levels to calibrate.
        max_h: the longest horizon served after the as-of month.
    """
    hierarchy = Hierarchy(list(splits))
    history = with_residuals(splits, history)
    last = {k: v.index[-1] for k, v in history.items()}
    for split in (s for s in splits if s.method == "shares"):
        as_of = hierarchy.as_of(split.parent, last)
        edges = {c: months_between(last[c], as_of) for c in split.children}
        dim = dimension(split.children[0])
        covariates = _covariates(split.parent, history, config, dim)
        hierarchy.covariates[split.parent + "/" + dim] = covariates
        models = _fit_models(split, history, covariates, edges, config)
        longest = max(edges.values()) + max_h
        origins = pd.date_range(
            as_of - pd.DateOffset(months=longest + CALIBRATION_ORIGINS), as_of, freq="MS"
        )[:-1]
        backtest = split_backtest(split, history, config, edges, origins, max_h)
        for c in split.children:
            rows = backtest[backtest["unique_id"] == c]
            hierarchy.children[c] = ChildModel(c, history[c], models[c], _calibrator(rows, levels))
    return hierarchy
