"""The regressor method's refits: paths averaged over candidate SARIMA orders by AIC weight, and
fits that keep an event the chosen fit dropped, so an asked-about effect has its uncertainty."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from forecasting.counterfactual.result import Paths
from forecasting.errors import ScenarioError
from forecasting.interventions import Scenario
from forecasting.models.base import Capability

if TYPE_CHECKING:
    from forecasting.counterfactual.engine import Change, CounterfactualEngine

#: SARIMA orders with a smaller AIC weight are left out of the average.
MIN_ORDER_WEIGHT = 0.01


class OrderAveraging:
    """The :class:`~forecasting.counterfactual.CounterfactualEngine` methods that refit its
    model: one engine per candidate order, and one per set of kept regressors."""

    def _averaged(self, scenario: Scenario, rows: np.ndarray, notes: list[str]) -> Paths:
        """The regressor method's paths, each drawn from one of :attr:`order_engines`."""
        members = self.order_engines
        if len(members) == 1:
            return self._fitted_paths(scenario, rows, notes)
        weights = np.array([w for w, _ in members])
        pick = np.random.default_rng([self.seed, 3]).choice(len(members), self.n_paths, p=weights)
        reference = np.empty((self.n_paths, len(rows)))
        counterfactual = np.empty_like(reference)
        for j, (_, engine) in enumerate(members):
            said: list[str] = []
            paths = engine._fitted_paths(scenario, rows, said)
            notes += [n for n in said if n not in notes]
            reference[pick == j] = paths.reference[pick == j]
            counterfactual[pick == j] = paths.counterfactual[pick == j]
        heaviest = sorted(members, key=lambda member: -member[0])
        described = ", ".join(
            f"{e.model.order_}{e.model.seasonal_order_} {w:.0%}" for w, e in heaviest
        )
        notes.append(f"effects averaged over SARIMA orders weighted by AIC: {described}")
        return Paths(reference, counterfactual)

    def _fitted_paths(self, scenario: Scenario, rows: np.ndarray, notes: list[str]) -> Paths:
        """This fit's regressor-method paths, refitting first to keep a dropped event asked
        about: dropped, it would claim an effect of exactly zero with no uncertainty."""
        change = self._change(scenario)
        unfitted = self._unfitted(change, rows)
        if not unfitted:
            return self._regressor(change, rows, notes)
        reasons = "; ".join(self.model.dropped_regressors_[c] for c in unfitted)
        note = (
            f"a fit of {self.series_key} had dropped {', '.join(unfitted)} ({reasons}); "
            "refitted keeping it, so the effect comes with its estimate's uncertainty"
        )
        if note not in notes:
            notes.append(note)
        return self.kept_engine(unfitted)._fitted_paths(scenario, rows, notes)

    def _unfitted(self, change: Change, rows: np.ndarray) -> tuple[str, ...]:
        """Regressors the scenario asks about in ``rows`` that the fit dropped for a low ``|t|``.

        Columns constant over the fit window are not among them: no refit can estimate those.
        """
        touched = (change.delta[rows] != 0).any(axis=0)
        asked = {c for c, moved in zip(self.X_all.columns, touched, strict=True) if moved}
        asked |= {a.like_regressor for a in change.added_regressors if a.like_regressor}
        constant = self.model.constant_regressors
        return tuple(
            c
            for c in self.X_all.columns
            if c in asked and c in self.model.dropped_regressors_ and c not in constant
        )

    def kept_engine(self, columns: tuple[str, ...]) -> CounterfactualEngine:
        """The engine of a clone of the model refitted keeping ``columns`` (cached per set)."""
        if columns not in self._kept:
            if not self.model.can(Capability.KEEP):
                raise ScenarioError(
                    f"{type(self.model).__name__} dropped {list(columns)} and cannot refit "
                    "keeping them; use method pre_period"
                )
            keep = self.model.get_params()["keep"]
            model = self.model.clone(keep=tuple(dict.fromkeys([*keep, *columns])))
            self._kept[columns] = self._sibling(model.fit(self.y, self.X))
        return self._kept[columns]

    @cached_property
    def order_engines(self) -> tuple[tuple[float, CounterfactualEngine], ...]:
        """(AIC weight, engine) per candidate order of a SARIMAX model, in the model's order of
        candidates; ``((1.0, self),)`` for one order or another family.

        The orders' AICs are close on these series (the chosen one had a median weight of 0.41
        in ``experiments/counterfactual``), and their effect estimates differ: an interval from
        the chosen order alone treats the choice as certain. Weights are ``exp(-dAIC / 2)``;
        orders under ``MIN_ORDER_WEIGHT`` are left out. Each other order is the model refitted
        with that order alone.
        """
        if not (self.average_orders and self.model.can(Capability.ORDERS)):
            return ((1.0, self),)
        aic = self.model.aic_
        best = min(aic.values())
        raw = {o: np.exp(-(a - best) / 2) for o, a in aic.items() if np.isfinite(a)}
        kept = {o: w for o, w in raw.items() if w >= MIN_ORDER_WEIGHT * sum(raw.values())}
        if len(kept) < 2:
            return ((1.0, self),)
        chosen = (self.model.order_, self.model.seasonal_order_)
        total = sum(kept.values())
        members = []
        for order, weight in kept.items():
            engine = self
            if order != chosen:
                engine = self._sibling(self.model.clone(orders=(order,)).fit(self.y, self.X))
            members.append((weight / total, engine))
        return tuple(members)
