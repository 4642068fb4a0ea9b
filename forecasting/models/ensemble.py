"""A weighted combination of forecasters, with weights fixed at construction (e.g. backtest skill).

The mean and each interval bound are the members' weighted median
(:func:`forecasting.selection.combine`): one member that breaks cannot drag the combination, it
needs no samples, and its bounds lie between the members' bounds. :meth:`Ensemble.sample_paths`
is a true mixture: each path comes from one member, drawn with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.models.base import Capability, Forecaster


class Ensemble(Forecaster):
    """Weighted combination of other forecasters.

    Args:
        members: the member forecasters, as unfitted instances or registry names (see
            :func:`forecasting.models.make_model`); each is cloned at fit.
        weights: one non-negative weight per member (normalised to sum to 1); ``None`` for equal
            weights.

    Attributes set by :meth:`fit` (besides the base ones):
        members_: the fitted member forecasters.
        weights_: the normalised weights, shape (n_members,).
    """

    declared = frozenset({Capability.REGRESSORS, Capability.SAMPLE_PATHS})

    def __init__(
        self, members: Sequence[Forecaster | str] = (), weights: Sequence[float] | None = None
    ):
        self.members = members
        self.weights = weights

    def _check_params(self) -> None:
        if len(self.members) == 0:
            raise ValueError("members must name at least one forecaster; got none")
        bad = [m for m in self.members if not isinstance(m, Forecaster | str)]
        if bad:
            raise ValueError(f"members must be Forecaster instances or registry names; got {bad}")
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=float)
            if w.shape != (len(self.members),) or (w < 0).any() or not np.isfinite(w).all():
                raise ValueError(
                    f"weights must be {len(self.members)} finite numbers >= 0, one per member; "
                    f"got {list(self.weights)}"
                )
            if w.sum() == 0:
                raise ValueError("weights must not all be zero")

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Regressors (passed to the members that use them), and sample paths when every member
        can simulate. Effects are the members' own: read them through ``members_``."""
        members = self.members_ if hasattr(self, "members_") else self._instances()
        if all(m.can(Capability.SAMPLE_PATHS) for m in members):
            return self.declared
        return self.declared - {Capability.SAMPLE_PATHS}

    @property
    def min_obs(self) -> int:  # type: ignore[override]
        return max(member.min_obs for member in self._instances())

    def _instances(self) -> list[Forecaster]:
        from forecasting.models import make_model

        return [make_model(m) if isinstance(m, str) else m.clone() for m in self.members]

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        w = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights, float)
        self.weights_ = w / w.sum()
        self.members_ = [
            member.fit(y, X if member.supports_regressors else None) for member in self._instances()
        ]

    def _member_X(self, member: Forecaster, X_df: pd.DataFrame) -> pd.DataFrame:
        return X_df[member.regressors_]

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        from forecasting.selection import combine

        frames = [m.predict(h, self._member_X(m, X_df), level) for m in self.members_]
        return combine(frames, self.weights_).reset_index(drop=True)

    def _sample_paths(
        self, h: int, X_df: pd.DataFrame, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        counts = rng.multinomial(n, self.weights_)
        paths = [
            m.sample_paths(h, self._member_X(m, X_df), k, rng)
            for m, k in zip(self.members_, counts, strict=True)
            if k
        ]
        return rng.permutation(np.vstack(paths))
