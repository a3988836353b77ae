"""Evaluate and optimize: evals score a blueprint on labelled examples;
optimizations search its values and promote the best trial to a blueprint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiolens._transport.http import Timeout
from aiolens.archetype.agents._jobs import _Jobs
from aiolens.archetype.agents._rest import (
    Ref,
    _examples,
    _id,
    _optional_mapping,
    _q,
    _required_examples,
    _status,
)
from aiolens.archetype.agents.models import (
    AgentStatus,
    Blueprint,
    Eval,
    EvalExample,
    Optimization,
    Trial,
)
from aiolens.archetype.pages import AsyncPager


class Evals(_Jobs[Eval]):
    """Evals: score a blueprint on labelled examples (``agents/evals``).

    ``get`` includes the ``metrics_report`` once completed.
    """

    __slots__ = ()
    _path = "/agents/evals"
    _model = Eval
    _kind = "Eval"
    _max_interval = 10.0

    async def create(
        self,
        blueprint_id: str,
        examples: Sequence[Ref],
        *,
        name: str = "",
        primary: str | None = None,
        targets: Mapping[str, Any] | None = None,
        emit_predictions: bool | None = None,
        timeout: Timeout | None = None,
    ) -> Eval:
        """Start an eval of a blueprint (202).

        Args:
            blueprint_id: the ``blp_`` id.
            examples: file ids whose label column is named after the target
                (``state``), data refs, or ``{inputs: [refs], ground_truth?}``
                (see :func:`~aiolens.archetype.agents.models.example`).
            primary: the headline metric, e.g. ``state.macro_f1``.
            targets: per-target scoring overrides.
            emit_predictions: write each example's predictions to a file.
        """
        items = _required_examples("examples", examples, "An eval needs at least one example")
        body = {
            "blueprint_id": _id(blueprint_id),
            "examples": items,
            "name": name,
            "primary": primary,
            "targets": _optional_mapping("targets", targets),
            "emit_predictions": emit_predictions,
        }
        return await self._post("/agents/evals", Eval, body, timeout)

    def examples(
        self,
        eval_id: str,
        *,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[EvalExample]:
        """What the eval measured on each example, in the order they were given."""
        return self._pager(
            f"/agents/evals/{_q(eval_id)}/examples", EvalExample, {}, limit, after, before, timeout
        )


class Optimizations(_Jobs[Optimization]):
    """Optimizations: search a blueprint's values, promote the best trial.

    ``get`` shows ``progress`` (trials per status) and ``best_trial``.
    """

    __slots__ = ()
    _path = "/agents/optimizations"
    _model = Optimization
    _kind = "Optimization"
    _max_interval = 30.0

    async def create(
        self,
        blueprint_id: str,
        objective: str,
        validation_examples: Sequence[Ref],
        max_trials: int,
        *,
        training_examples: Sequence[Ref] | None = None,
        calibration_examples: Sequence[Ref] | None = None,
        search_space: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        constraints: Mapping[str, Any] | None = None,
        name: str = "",
        timeout: Timeout | None = None,
    ) -> Optimization:
        """Start an optimization (202): at most ``max_trials`` trials over ``search_space``.

        Args:
            blueprint_id: the ``blp_`` id.
            objective: the metric to maximise, e.g. ``macro_f1``.
            validation_examples: what each trial is scored on (as eval examples).
            max_trials: the budget.
            training_examples: what each trial is fitted on.
            calibration_examples: passed through to the server.
            search_space: ``{"parameters": {name: {"kind": "value", "spec":
                {"type": "categorical", "values": [...]}}}}``.
            overrides: ``{"values": {...}, "models": {...}}`` for every trial.
            constraints: conditions a trial must meet to count as best.
        """
        if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
            raise ValueError(f"max_trials must be a positive integer: {max_trials!r}")
        if not isinstance(objective, str) or not objective:
            raise ValueError("objective must be a metric name, e.g. 'macro_f1'")
        validation = _required_examples(
            "validation_examples", validation_examples, "An optimization needs validation examples"
        )
        body = {
            "blueprint_id": _id(blueprint_id),
            "objective": objective,
            "validation_examples": validation,
            "budget": {"max_trials": max_trials},
            "name": name,
            "training_examples": _examples("training_examples", training_examples),
            "calibration_examples": _examples("calibration_examples", calibration_examples),
            "search_space": _optional_mapping("search_space", search_space),
            "overrides": _optional_mapping("overrides", overrides),
            "constraints": _optional_mapping("constraints", constraints),
        }
        return await self._post("/agents/optimizations", Optimization, body, timeout)

    def trials(
        self,
        optimization_id: str,
        *,
        status: str | AgentStatus | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[Trial]:
        """The optimization's trials, newest first, with values and scores."""
        path = f"/agents/optimizations/{_q(optimization_id)}/trials"
        params = {"status": _status(status)}
        return self._pager(path, Trial, params, limit, after, before, timeout)

    async def promote(
        self,
        optimization_id: str,
        trial_id: str,
        *,
        blueprint_key: str | None = None,
        name: str | None = None,
        description: str | None = None,
        timeout: Timeout | None = None,
    ) -> Blueprint:
        """Turn a completed trial into a blueprint of the org's own (201).

        The new blueprint carries the trial's values and fitting; by default
        it is keyed after the searched blueprint and the trial.

        Raises:
            ConflictError: the trial did not complete.
        """
        body = {"blueprint_key": blueprint_key, "name": name, "description": description}
        return await self._post(
            f"/agents/optimizations/{_q(optimization_id)}/trials/{_q(trial_id)}/promote",
            Blueprint,
            body,
            timeout,
        )
