"""REST resources of the Agents API: ``client.agents.blueprints``, ``.bundles``,
``.instances``, ``.evals``, ``.optimizations`` (docs/protocol-notes.md, "Agents API").

Each method is one HTTP call through the client's transport (retries,
timeouts and typed errors as for the Lens API; ``timeout=`` overrides the
timeout for that call). Lists return an :class:`~aiolens.archetype.pages.AsyncPager`:
``await`` it for one page, ``async for`` it for every item. Creates, runs and
cancels are retried only when the server certainly did not act on them.
Answers 200, 201, 202 and 204 (no body: deletes return ``None``) are success.

``wait()`` polls a record until it is ``completed``, ``failed`` or
``cancelled`` (either spelling), with a growing interval and a deadline: it
never waits forever unless asked to (``timeout=None``).
"""

from __future__ import annotations

import asyncio
import builtins
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

from aiolens._transport.http import HTTPTransport, Timeout
from aiolens.archetype.agents.models import (
    AgentStatus,
    Blueprint,
    Bundle,
    DataRef,
    Eval,
    EvalExample,
    Instance,
    InstanceEvent,
    LogEntry,
    NodeRegistry,
    Optimization,
    QueryResult,
    ResultRef,
    Trial,
    _EventList,
    data_ref,
    example,
)
from aiolens.archetype.pages import AsyncPager, CursorPage, get_page
from aiolens.errors import AgentQueryError, AgentRunError, WaitTimeoutError

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "Blueprints",
    "Bundles",
    "Evals",
    "Instances",
    "Optimizations",
    "Ref",
]

T = TypeVar("T")
R = TypeVar("R", Instance, Eval, Optimization)

Ref = str | DataRef | Mapping[str, Any]
"""A data ref: a file id (shorthand), a :class:`DataRef` or ``{type: "file", id, format?}``."""

DEFAULT_WAIT_TIMEOUT: Final = 900.0
"""Seconds ``wait()`` polls before :class:`~aiolens.errors.WaitTimeoutError`."""

_MODES: Final = frozenset({"batch", "serving"})
_LOG_LEVELS: Final = frozenset({"debug", "info", "warning", "error", "critical"})
_STATUSES: Final = frozenset(s.value for s in AgentStatus if s is not AgentStatus.UNKNOWN)


def _id(value: str) -> str:
    """``value`` if it is a non-empty string (an id or a key), else ``ValueError``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"An id must be a non-empty string: {value!r}")
    return value


def _q(segment: str) -> str:
    return quote(_id(segment), safe="")


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer: {limit!r}")
    return limit


def _status(status: str | AgentStatus | None) -> str | None:
    """A status filter, checked; ``canceled`` is sent as ``cancelled``."""
    if status is None:
        return None
    parsed = AgentStatus.parse(str(status))
    if parsed is AgentStatus.UNKNOWN:
        raise ValueError(f"status must be one of {sorted(_STATUSES)}: {status!r}")
    return parsed.value


def _optional_mapping(name: str, value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping: {value!r}")
    return dict(value)


def _examples(name: str, items: Sequence[Ref] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ValueError(f"{name} must be a list of file ids, data refs or examples")
    return [example(item) for item in items]


class _Resource:
    __slots__ = ("_http",)

    def __init__(self, http: HTTPTransport) -> None:
        self._http = http

    def _pager(
        self,
        path: str,
        item_type: type[T],
        params: Mapping[str, Any],
        *,
        limit: int | None,
        after: str | None,
        before: str | None,
        timeout: Timeout | None,
    ) -> AsyncPager[T]:
        fixed = {**params, "limit": _limit(limit)}

        async def fetch(cursor: str | None, before_cursor: str | None) -> CursorPage[T]:
            query = {**fixed, "after": cursor, "before": before_cursor}
            return await get_page(self._http, path, item_type, query, timeout=timeout)

        return AsyncPager(fetch, after=after, before=before)

    async def _get(self, path: str, tp: type[T], timeout: Timeout | None, **params: Any) -> T:
        result: T = await self._http.request(
            "GET", path, params=params, response_type=tp, timeout=timeout
        )
        return result

    async def _post(
        self,
        path: str,
        tp: type[T],
        body: Mapping[str, Any],
        timeout: Timeout | None,
        *,
        idempotent: bool = False,
    ) -> T:
        result: T = await self._http.request(
            "POST",
            path,
            json={k: v for k, v in body.items() if v is not None},
            response_type=tp,
            idempotent=idempotent,
            timeout=timeout,
        )
        return result

    async def _delete(self, path: str, timeout: Timeout | None) -> None:
        await self._http.request("DELETE", path, timeout=timeout)


class _Jobs(_Resource, Generic[R]):
    """What instances, evals and optimizations share: list, get, cancel, delete, wait.

    Subclasses set ``_path`` (``/agents/evals``), ``_model`` (the record type),
    ``_kind`` (for messages) and ``_max_interval`` (``wait``'s longest poll).
    """

    __slots__ = ()
    _path: str
    _model: type[R]
    _kind: str
    _max_interval: float

    def _list(
        self,
        params: Mapping[str, Any],
        *,
        status: str | AgentStatus | None,
        limit: int | None,
        after: str | None,
        before: str | None,
        timeout: Timeout | None,
    ) -> AsyncPager[R]:
        query = {**params, "status": _status(status)}
        return self._pager(
            self._path, self._model, query, limit=limit, after=after, before=before, timeout=timeout
        )

    def list(
        self,
        *,
        status: str | AgentStatus | None = None,
        query: str | None = None,
        blueprint_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[R]:
        """The org's records, newest first, filtered by status (either spelling of
        ``cancelled``), a substring of the name or id, or the blueprint."""
        return self._list(
            {"query": query, "blueprint_id": blueprint_id},
            status=status,
            limit=limit,
            after=after,
            before=before,
            timeout=timeout,
        )

    async def get(self, record_id: str, *, timeout: Timeout | None = None) -> R:
        """One record. Raises :class:`~aiolens.errors.NotFoundError` when there is none."""
        return await self._get(f"{self._path}/{_q(record_id)}", self._model, timeout)

    async def cancel(self, record_id: str, *, timeout: Timeout | None = None) -> R:
        """Cancel a pending, running or paused record (unfinished trials too).

        Raises:
            ConflictError: it already ended.
        """
        return await self._post(f"{self._path}/{_q(record_id)}/cancel", self._model, {}, timeout)

    async def delete(self, record_id: str, *, timeout: Timeout | None = None) -> None:
        """Delete a record (the server answers 204). An eval takes the files it
        produced along; an optimization keeps the blueprints promoted from it; a
        running instance is stopped first."""
        await self._delete(f"{self._path}/{_q(record_id)}", timeout)

    async def wait(
        self,
        record_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = 0.5,
        max_interval: float | None = None,
        on_update: Callable[[R], Any] | None = None,
        raise_on_failure: bool = True,
    ) -> R:
        """Poll until the record is ``completed``, ``failed`` or ``cancelled``.

        Polls start ``poll_interval`` apart and grow by half each time up to
        ``max_interval`` (5 s for instances, 10 s for evals, 30 s for
        optimizations, as the official SDK's fixed intervals). Cancel: polling
        stops; the work goes on server-side.

        Args:
            timeout: seconds in all; ``None`` waits for ever.
            on_update: called (or awaited) with each record that differs from
                the previous one (for progress displays).
            raise_on_failure: raise :class:`~aiolens.errors.AgentRunError`
                for a ``failed`` record instead of returning it.

        Raises:
            WaitTimeoutError: still going at the deadline (``.record`` has the
                last state).
            AgentRunError: it failed (``raise_on_failure``).
        """
        longest = self._max_interval if max_interval is None else max_interval
        for name, value in (("poll_interval", poll_interval), ("max_interval", longest)):
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds: {value!r}")
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"timeout must be positive seconds or None: {timeout!r}")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = poll_interval
        seen: Any = None
        while True:
            record = await self.get(record_id)
            if on_update is not None and record != seen:
                result = on_update(record)
                if isinstance(result, Awaitable):
                    await result
            seen = record
            if record.terminal:
                if raise_on_failure and record.state is AgentStatus.FAILED:
                    error = record.error or {}
                    raise AgentRunError(
                        f"{self._kind} {record_id} failed: "
                        f"{error.get('message') or 'no reason given'}",
                        code=str(error.get("code") or ""),
                        record=record,
                    )
                return record
            delay = interval
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeoutError(
                        f"{self._kind} {record_id} is still {record.status} after {timeout}s",
                        record=record,
                    )
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            interval = min(interval * 1.5, longest)


class Blueprints(_Resource):
    """Blueprints: reusable agent definitions (``agents/blueprints``)."""

    __slots__ = ()

    def list(
        self,
        *,
        key: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[Blueprint]:
        """Blueprints visible to the org, newest first; ``key`` keeps one key's versions."""
        return self._pager(
            "/agents/blueprints",
            Blueprint,
            {"key": key},
            limit=limit,
            after=after,
            before=before,
            timeout=timeout,
        )

    async def get(
        self, reference: str, *, include_yaml: bool | None = None, timeout: Timeout | None = None
    ) -> Blueprint:
        """A blueprint by ``blp_`` id or key (the key's latest version).

        Args:
            reference: the id or the key (``osm``).
            include_yaml: ``True`` asks for the YAML rendering (in ``.yaml``),
                ``False`` for none; ``None`` leaves it to the server.

        Raises:
            NotFoundError: no such blueprint.
        """
        return await self._get(
            f"/agents/blueprints/{_q(reference)}", Blueprint, timeout, yaml=include_yaml
        )

    def versions(
        self,
        reference: str,
        *,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[Blueprint]:
        """Every version of a blueprint's key, newest first."""
        return self._pager(
            f"/agents/blueprints/{_q(reference)}/versions",
            Blueprint,
            {},
            limit=limit,
            after=after,
            before=before,
            timeout=timeout,
        )


class Bundles(_Resource):
    """Bundles: a blueprint pinned with configuration, ready to run (``agents/bundles``)."""

    __slots__ = ()

    def list(
        self,
        *,
        query: str | None = None,
        blueprint_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[Bundle]:
        """The org's bundles (and the platform's quick-start ones), newest first.

        Args:
            query: a substring of the name or id.
            blueprint_id: only bundles of this blueprint.
        """
        return self._pager(
            "/agents/bundles",
            Bundle,
            {"query": query, "blueprint_id": blueprint_id},
            limit=limit,
            after=after,
            before=before,
            timeout=timeout,
        )

    async def get(self, bundle_id: str, *, timeout: Timeout | None = None) -> Bundle:
        """One bundle. Raises :class:`~aiolens.errors.NotFoundError` when there is none."""
        return await self._get(f"/agents/bundles/{_q(bundle_id)}", Bundle, timeout)

    async def create(
        self,
        blueprint: str,
        name: str,
        *,
        description: str = "",
        models: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        artifacts: Mapping[str, Any] | None = None,
        timeout: Timeout | None = None,
    ) -> Bundle:
        """Pin a blueprint (``blp_`` id or key) with configuration.

        Args:
            blueprint: the blueprint id or key (``osm``).
            name: the bundle's name.
            description: free text.
            models: per-slot model overrides, e.g. ``{"encoder": "omega-1.5"}``.
            values: blueprint values, e.g. ``{"window_size": 100}``.
            artifacts: extra inputs such as ``{"training_examples": [file ids]}``.

        Raises:
            BadRequestError: an unknown value, model or slot.
            NotFoundError: no such blueprint.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        body = {
            "blueprint": _id(blueprint),
            "name": name,
            "description": description,
            "models": _optional_mapping("models", models),
            "values": _optional_mapping("values", values),
            "artifacts": _optional_mapping("artifacts", artifacts),
        }
        return await self._post("/agents/bundles", Bundle, body, timeout)

    async def delete(self, bundle_id: str, *, timeout: Timeout | None = None) -> None:
        """Delete a bundle (instances already running go on)."""
        await self._delete(f"/agents/bundles/{_q(bundle_id)}", timeout)

    async def run(
        self,
        bundle_id: str,
        source: Sequence[Ref],
        *,
        sink: Ref | None = None,
        mode: str = "batch",
        timeout: Timeout | None = None,
    ) -> Instance:
        """Launch an instance of a bundle (``POST agents/bundles/{id}/run``, 202).

        Args:
            bundle_id: the bundle.
            source: the inputs: file ids or data refs (``{type: "file", id, format?}``).
                A batch run writes one result per input.
            sink: write all output to this one ref instead.
            mode: ``"batch"`` (process ``source``, then complete) or
                ``"serving"`` (answer queries until cancelled; see :meth:`deploy`).

        Returns:
            The new instance (``pending`` or ``running``); see ``instances.wait``.
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}: {mode!r}")
        if isinstance(source, str | bytes) or not isinstance(source, Sequence):
            raise ValueError("source must be a list of file ids or data refs")
        if mode == "batch" and not source:
            raise ValueError("A batch run needs at least one source")
        connectors: dict[str, Any] = {"source": [data_ref(ref) for ref in source]}
        if sink is not None:
            connectors["sink"] = data_ref(sink)
        body: dict[str, Any] = {"connectors": connectors}
        if mode != "batch":
            body["mode"] = mode
        return await self._post(f"/agents/bundles/{_q(bundle_id)}/run", Instance, body, timeout)

    async def deploy(self, bundle_id: str, *, timeout: Timeout | None = None) -> Instance:
        """Start a serving instance of a bundle (``mode: "serving"``, no sources).

        Query it with ``instances.query`` or ``client.agents.connect``; stop it
        with ``instances.cancel``.
        """
        return await self.run(bundle_id, [], mode="serving", timeout=timeout)


class Instances(_Jobs[Instance]):
    """Agent instances: runs and deployments (``agents/instances``)."""

    __slots__ = ()
    _path = "/agents/instances"
    _model = Instance
    _kind = "Instance"
    _max_interval = 5.0

    def list(
        self,
        *,
        status: str | AgentStatus | None = None,
        query: str | None = None,
        bundle_id: str | None = None,
        blueprint_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[Instance]:
        """The org's instances, newest first, optionally filtered (``bundle_id`` too)."""
        return self._list(
            {"query": query, "bundle_id": bundle_id, "blueprint_id": blueprint_id},
            status=status,
            limit=limit,
            after=after,
            before=before,
            timeout=timeout,
        )

    async def events(
        self, instance_id: str, *, timeout: Timeout | None = None
    ) -> builtins.list[InstanceEvent]:
        """The instance's lifecycle log, oldest first (created, started, paused ...).

        Accepts ``{"data": [...]}`` and a bare array.
        """
        found: _EventList | builtins.list[InstanceEvent] = await self._http.request(
            "GET",
            f"/agents/instances/{_q(instance_id)}/events",
            response_type=_EventList | builtins.list[InstanceEvent],
            timeout=timeout,
        )
        return found if isinstance(found, list) else found.data

    def results(
        self,
        instance_id: str,
        *,
        limit: int | None = None,
        after: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[ResultRef]:
        """The outputs the instance wrote, newest first (download with ``client.files``)."""
        return self._pager(
            f"/agents/instances/{_q(instance_id)}/results",
            ResultRef,
            {},
            limit=limit,
            after=after,
            before=None,
            timeout=timeout,
        )

    def logs(
        self,
        instance_id: str,
        *,
        level: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        timeout: Timeout | None = None,
    ) -> AsyncPager[LogEntry]:
        """The run log, newest first.

        Args:
            level: only this level (``debug``, ``info``, ``warning``, ``error``).
            search: a substring of the message or event type.
        """
        if level is not None and level.lower() not in _LOG_LEVELS:
            raise ValueError(f"level must be one of {sorted(_LOG_LEVELS)}: {level!r}")
        return self._pager(
            f"/agents/instances/{_q(instance_id)}/logs",
            LogEntry,
            {"level": level.lower() if level else None, "search": search},
            limit=limit,
            after=after,
            before=None,
            timeout=timeout,
        )

    async def pause(self, instance_id: str, *, timeout: Timeout | None = None) -> Instance:
        """Pause a running batch instance. Raises ConflictError when it is not running."""
        return await self._post(f"/agents/instances/{_q(instance_id)}/pause", Instance, {}, timeout)

    async def resume(self, instance_id: str, *, timeout: Timeout | None = None) -> Instance:
        """Resume a paused instance. Raises ConflictError when it is not paused."""
        return await self._post(
            f"/agents/instances/{_q(instance_id)}/resume", Instance, {}, timeout
        )

    async def query(
        self,
        instance_id: str,
        window: Mapping[str, Any],
        *,
        timeout: Timeout | None = None,
    ) -> QueryResult:
        """Send one window to a serving instance and return its answer.

        A window is columnar, e.g. ``{"columns": ["ax", "ay"], "rows": [[0.1,
        0.2], ...], "window_index": 0, "sample_rate_hz": 100}``. The call has
        no side effect, so it is retried like a GET.

        Raises:
            AgentQueryError: the answer's status is ``failed``.
            ConflictError: the instance is not a running serving instance.
        """
        if not isinstance(window, Mapping):
            raise ValueError("window must be a mapping (a JSON object)")
        result = await self._post(
            f"/agents/instances/{_q(instance_id)}/query",
            QueryResult,
            window,
            timeout,
            idempotent=True,
        )
        return checked_reply(result)


def checked_reply(result: QueryResult) -> QueryResult:
    """``result``, or :class:`AgentQueryError` when its status is ``failed``."""
    if result.status == "failed":
        error = result.error or {}
        raise AgentQueryError(
            f"Query failed: {error.get('message') or result.response or 'no reason given'}",
            code=str(error.get("code") or ""),
            reply=result,
        )
    return result


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
        items = _examples("examples", examples)
        if not items:
            raise ValueError("An eval needs at least one example")
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
            f"/agents/evals/{_q(eval_id)}/examples",
            EvalExample,
            {},
            limit=limit,
            after=after,
            before=before,
            timeout=timeout,
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
        validation = _examples("validation_examples", validation_examples)
        if not validation:
            raise ValueError("An optimization needs validation examples")
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
        return self._pager(
            f"/agents/optimizations/{_q(optimization_id)}/trials",
            Trial,
            {"status": _status(status)},
            limit=limit,
            after=after,
            before=before,
            timeout=timeout,
        )

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


async def node_registry(http: HTTPTransport, timeout: Timeout | None = None) -> NodeRegistry:
    """``GET agents/nodes/registry``: the connector and processing nodes."""
    registry: NodeRegistry = await http.request(
        "GET", "/agents/nodes/registry", response_type=NodeRegistry, timeout=timeout
    )
    return registry
