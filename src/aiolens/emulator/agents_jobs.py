"""The background work of the emulated Agents API: batch runs, evals, optimizations.

Each job is one asyncio task per record. It computes with
:mod:`aiolens.emulator.agents_engine` and paces itself by the store's
``step_interval`` per window (per example for evals and trials), checking
between steps whether it was paused (it waits for resume) or cancelled (its
task is cancelled: what it had not written yet is dropped). A failure becomes
the record's ``failed`` status with an ``error`` ``{code, message}``; a job
never dies silently.

The ``agent_fail_after`` fault fails every batch run once it has processed
that many windows (``injected_failure``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from aiolens.emulator.agents_engine import (
    AgentError,
    FittedAgent,
    fit_agent,
    metrics_report,
    objective_value,
    read_input,
    resolve_models,
    resolve_values,
    score_example,
    search_points,
)
from aiolens.emulator.agents_store import (
    AgentsStore,
    Eval,
    Instance,
    Job,
    Optimization,
    Trial,
    now_iso,
)
from aiolens.emulator.faults import Faults

__all__ = ["cancel_job", "start_eval", "start_instance", "start_optimization"]

log: logging.Logger = logging.getLogger("aiolens.emulator")

_encoder: Final = msgspec.json.Encoder()


def _start(job: Job, work: Awaitable[None], name: str) -> None:
    job.task = asyncio.ensure_future(work)
    job.task.set_name(name)


async def _step(store: AgentsStore, job: Job) -> None:
    """One paced step: wait ``step_interval``, then for a resume if paused."""
    await asyncio.sleep(store.step_interval)
    await job.resumed.wait()


async def _guard(
    job: Job, body: Callable[[], Awaitable[None]], on_end: Callable[[], None] | None = None
) -> None:
    """Run a job's body; its failure (or a bug) becomes ``failed`` with an error."""
    job.status = "running"
    job.started_at = now_iso()
    try:
        await body()
    except AgentError as exc:
        job.status = "failed"
        job.error = {"code": exc.code, "message": exc.message}
    except asyncio.CancelledError:
        job.status = "cancelled"
        raise
    except Exception as exc:  # a bug: never leave the record running
        log.exception("agents job failed")
        job.status = "failed"
        job.error = {"code": "internal_error", "message": repr(exc)}
    else:
        job.status = "completed"
    finally:
        job.finished_at = now_iso()
        if on_end is not None:
            on_end()


def cancel_job(job: Job) -> None:
    """Mark a job cancelled and stop its task (a paused job is woken to end)."""
    job.status = "cancelled"
    job.finished_at = now_iso()
    if job.task is not None and not job.task.done():
        job.task.cancel()
    job.resumed.set()


# ---- instances ---------------------------------------------------------------------------


def agent_for(store: AgentsStore, instance: Instance) -> FittedAgent:
    """Fit the instance's bundle: blueprint defaults, then the bundle's values and models.

    A bundle's ``artifacts.training_examples`` (file ids) add to the blueprint's.

    Raises:
        AgentError: bad values or models, unreadable fitting files.
    """
    assert instance.bundle is not None
    bundle = instance.bundle
    blueprint = bundle.blueprint
    values = resolve_values(blueprint.spec, blueprint.values, bundle.values)
    models = resolve_models(blueprint.spec, blueprint.models, bundle.models)
    training = list(blueprint.training_examples)
    extra = bundle.artifacts.get("training_examples") if bundle.artifacts else None
    if isinstance(extra, list):
        training += [str(x) for x in extra]
    return fit_agent(blueprint.spec, values, models, store.read_file, training_examples=training)


def start_instance(store: AgentsStore, faults: Faults, instance: Instance) -> None:
    """Launch a batch run: every source input becomes one result file (or all go to the sink)."""

    def ended() -> None:
        kind = f"instance.{instance.status}"
        detail = instance.error["message"] if instance.error else ""
        instance.event(kind, f"Instance {instance.status}" + (f": {detail}" if detail else ""))
        level = "error" if instance.status == "failed" else "info"
        instance.log(level, kind, f"Run {instance.status}" + (f": {detail}" if detail else ""))

    async def body() -> None:
        instance.event("instance.started", "Instance started")
        agent = agent_for(store, instance)
        instance.agent = agent
        instance.log("info", "run.fitted", f"Fitted {agent.spec.key} on {agent.fitting}")
        sink_rows: list[bytes] = []
        for source in instance.sources:
            file_id = str(source["id"])
            instance.log("info", "input.started", f"Reading {file_id}")
            labelled = read_input(store.read_file, file_id, agent.spec.target)
            windows = list(agent.windows(labelled.table, file_id))
            predictions = agent.predict(windows)
            lines = []
            for prediction in predictions:
                await _step(store, instance)
                limit = faults.agent_fail_after
                if limit is not None and instance.windows_done >= limit:
                    raise AgentError("injected_failure", f"Injected fault after {limit} windows")
                instance.windows_done += 1
                lines.append(_encoder.encode({"source_id": file_id, **prediction}))
            if instance.sink is not None:
                sink_rows.extend(lines)
            else:
                out_id = f"{instance.id}-{_stem(file_id)}-results.jsonl"
                store.write_file(out_id, b"\n".join(lines) + b"\n")
                instance.results.append(_result_ref(out_id, file_id))
            instance.inputs_done += 1
            instance.log("info", "input.completed", f"{file_id}: {len(lines)} windows")
            instance.event("input.completed", f"Processed {file_id}", source_id=file_id)
        if instance.sink is not None:
            out_id = str(instance.sink["id"])
            store.write_file(out_id, b"\n".join(sink_rows) + b"\n")
            instance.results.append(_result_ref(out_id, None))

    _start(instance, _guard(instance, body, ended), f"emulator agent {instance.id}")


def _stem(file_id: str) -> str:
    return file_id.rsplit(".", 1)[0] if "." in file_id else file_id


def _result_ref(file_id: str, source_id: str | None) -> dict[str, Any]:
    return {
        "type": "file",
        "id": file_id,
        "format": "jsonl",
        "source": {"type": "file", "id": source_id} if source_id else None,
        "created_at": now_iso(),
    }


# ---- evals -------------------------------------------------------------------------------


def start_eval(store: AgentsStore, evaluation: Eval) -> None:
    """Score the blueprint on each example, then build the metrics report."""

    async def body() -> None:
        blueprint = evaluation.blueprint
        assert blueprint is not None
        values = resolve_values(blueprint.spec, blueprint.values)
        models = resolve_models(blueprint.spec, blueprint.models)
        agent = fit_agent(
            blueprint.spec,
            values,
            models,
            store.read_file,
            training_examples=blueprint.training_examples,
        )
        scores = []
        for index, example in enumerate(evaluation.examples):
            await _step(store, evaluation)
            input_id, labels_id = example_files(example)
            score = score_example(agent, store.read_file, input_id, labels_id)
            scores.append(score)
            entry: dict[str, Any] = {
                "index": index,
                "inputs": example["inputs"],
                "status": "completed",
                "metrics": metrics_report(agent, [score], evaluation.primary),
                "predictions": None,
            }
            if evaluation.emit_predictions:
                out_id = f"{evaluation.id}-example-{index}-predictions.jsonl"
                store.write_file(out_id, b"\n".join(map(_encoder.encode, score.predictions)))
                evaluation.produced_files.append(out_id)
                entry["predictions"] = {"type": "file", "id": out_id, "format": "jsonl"}
            evaluation.results.append(entry)
        evaluation.metrics_report = metrics_report(agent, scores, evaluation.primary)

    _start(evaluation, _guard(evaluation, body), f"emulator eval {evaluation.id}")


def example_files(example: dict[str, Any]) -> tuple[str, str | None]:
    """The input file id and, if given, the ground-truth file id of an example."""
    first = example["inputs"][0]
    truth = example.get("ground_truth")
    labels = str(truth["id"]) if isinstance(truth, dict) and "id" in truth else None
    return str(first["id"]), labels


# ---- optimizations -----------------------------------------------------------------------


def start_optimization(store: AgentsStore, optimization: Optimization) -> None:
    """Run each trial in turn: values from the grid, fit on training, score on validation."""
    blueprint = optimization.blueprint
    assert blueprint is not None
    spec = blueprint.spec
    for index, point in enumerate(
        search_points(spec, optimization.search_space, optimization.max_trials)
    ):
        optimization.trials.append(
            Trial(f"trl_{optimization.id[4:]}_{index}", optimization.id, index, point)
        )

    def cancel_rest() -> None:
        if optimization.status != "completed":
            for trial in optimization.trials:
                if trial.status in ("pending", "running"):
                    trial.status = "cancelled"

    async def body() -> None:
        override_values = optimization.overrides.get("values") or {}
        override_models = optimization.overrides.get("models") or {}
        training = [example_files(e)[0] for e in optimization.training_examples]
        training = training or list(blueprint.training_examples)
        for trial in optimization.trials:
            trial.status = "running"
            try:
                values = resolve_values(spec, blueprint.values, override_values, trial.values)
                models = resolve_models(spec, blueprint.models, override_models)
                agent = fit_agent(spec, values, models, store.read_file, training_examples=training)
                trial.models = models
                trial.fitting = agent.fitting
                scores = []
                for example in optimization.validation_examples:
                    await _step(store, optimization)
                    scores.append(score_example(agent, store.read_file, *example_files(example)))
                report = metrics_report(agent, scores, None)
                trial.metrics_report = report
                trial.objective_value = objective_value(
                    spec, report["targets"], optimization.objective
                )
                trial.feasible = _feasible(spec, report, optimization.constraints)
                trial.status = "completed"
            except AgentError as exc:
                trial.status = "failed"
                trial.error = {"code": exc.code, "message": exc.message}
            trial.finished_at = now_iso()
        if not any(t.status == "completed" for t in optimization.trials):
            raise AgentError("no_completed_trial", "Every trial failed")

    _start(
        optimization,
        _guard(optimization, body, cancel_rest),
        f"emulator optimization {optimization.id}",
    )


def _feasible(spec: Any, report: dict[str, Any], constraints: dict[str, Any] | None) -> bool:
    """Whether a trial meets ``constraints``: ``{"metrics": {"state.accuracy": {"min": 0.8}}}``."""
    for metric, bound in ((constraints or {}).get("metrics") or {}).items():
        value = objective_value(spec, report["targets"], metric)
        if isinstance(bound, dict):
            if "min" in bound and value < float(bound["min"]):
                return False
            if "max" in bound and value > float(bound["max"]):
                return False
    return True


async def shutdown(store: AgentsStore) -> None:
    """Cancel every running job (the emulator is stopping)."""
    jobs: list[Any] = [*store.instances.values(), *store.evals.values()]
    jobs += list(store.optimizations.values())
    tasks = [job.task for job in jobs if job.task is not None and not job.task.done()]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
