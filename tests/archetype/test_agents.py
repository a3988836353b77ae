"""client.agents against the real emulator: develop, evaluate, optimize, execute, serve."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib import resources

import msgspec
import pytest

from aiolens import AsyncArchetypeClient
from aiolens.archetype.agents import AgentStatus, Instance, agents_base_url
from aiolens.emulator import Emulator
from aiolens.errors import (
    AgentQueryError,
    AgentRunError,
    BadRequestError,
    ConflictError,
    ConnectionLostError,
    NotFoundError,
    WaitTimeoutError,
)

PLAN = ("IDLE", "NORMAL", "WARNING", "NORMAL", "IDLE")
WINDOW = {"columns": ["ax", "ay", "az"], "rows": [[0.01, 0.0, 1.0], [0.0, 0.02, 0.99]]}


def labelled_demo(plan: tuple[str, ...] = PLAN) -> bytes:
    """The demo recording with a ``state`` label per row (600 rows per segment)."""
    lines = resources.files("aiolens.data").joinpath("sensor_demo.csv").read_text().splitlines()
    body = [f"{row},{plan[i // 600]}" for i, row in enumerate(lines[1:])]
    return ("\n".join([lines[0] + ",state", *body]) + "\n").encode()


@pytest.fixture
async def labelled(client: AsyncArchetypeClient) -> str:
    await client.files.upload(labelled_demo(), filename="demo_labelled.csv")
    return "demo_labelled.csv"


async def _bundle(client: AsyncArchetypeClient, **values: object) -> str:
    bundle = await client.agents.bundles.create("osm", "line 3", values=values or None)
    return bundle.id


# ---- base URL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "agents"),
    [
        ("https://api.u1.archetypeai.app/v0.5", "https://api.u1.archetypeai.app"),
        ("https://api.u1.archetypeai.app/v0.5/", "https://api.u1.archetypeai.app"),
        ("https://platform.u1.archetypeai.app/api", "https://platform.u1.archetypeai.app/api"),
        ("https://dev.example.com", "https://dev.example.com"),
        ("http://127.0.0.1:8080/proxy/v1", "http://127.0.0.1:8080/proxy"),
    ],
)
def test_agents_base_url_follows_the_lens_base_url(base: str, agents: str) -> None:
    assert agents_base_url(base) == agents


async def test_both_layouts_reach_the_same_agents_api(emulator: Emulator) -> None:
    async with (
        AsyncArchetypeClient(emulator.api_key, emulator.lens_url) as versioned,
        AsyncArchetypeClient(emulator.api_key, emulator.platform_url) as platform,
    ):
        assert versioned.agents.base_url == emulator.base_url
        assert platform.agents.base_url == emulator.platform_url
        made = await versioned.agents.bundles.create("osm", "seen from both")
        assert (await platform.agents.bundles.get(made.id)).name == "seen from both"
        # The platform layout serves the Lens API and the files under the same prefix.
        assert await platform.lenses.metadata()
        await platform.files.upload(b"t,x\n0,1\n", filename="p.csv")
        assert (await versioned.files.metadata("p.csv")).file_id == "p.csv"


async def test_explicit_agents_base_url_wins_and_survives_with_options(
    emulator: Emulator,
) -> None:
    async with AsyncArchetypeClient(
        emulator.api_key, "https://nowhere.invalid/v0.5", agents_base_url=emulator.platform_url
    ) as client:
        assert [b async for b in client.agents.blueprints.list(key="ad")]
        assert client.with_options(timeout=5).agents.base_url == emulator.platform_url


# ---- paging ------------------------------------------------------------------------------


async def test_lists_are_pages_on_await_and_items_on_iteration(
    client: AsyncArchetypeClient,
) -> None:
    page = await client.agents.blueprints.list(limit=1)
    assert len(page.data) == 1 and page.has_more and page.next_cursor == page.data[0].id
    everything = [b.id async for b in client.agents.blueprints.list(limit=1)]
    assert everything == [b.id async for b in client.agents.blueprints.list()]
    assert len(everything) == 3 and everything[0] == page.data[0].id
    second = await client.agents.blueprints.list(limit=1, after=page.next_cursor)
    assert second.data[0].id == everything[1] and second.prev_cursor == everything[1]
    back = await client.agents.blueprints.list(limit=5, before=second.prev_cursor)
    assert [b.id for b in back.data] == everything[:1]
    versions = [b.version async for b in client.agents.blueprints.versions("osm")]
    assert versions == [2, 1]
    assert (await client.agents.blueprints.get("osm")).version == 2


async def test_list_options_are_validated_where_given(client: AsyncArchetypeClient) -> None:
    with pytest.raises(ValueError, match="limit"):
        client.agents.bundles.list(limit=0)
    with pytest.raises(ValueError, match="not both"):
        client.agents.bundles.list(after="a", before="b")
    with pytest.raises(ValueError, match="status"):
        client.agents.instances.list(status="sleeping")
    with pytest.raises(ValueError, match="level"):
        client.agents.instances.logs("agt_x", level="loud")


# ---- develop: blueprints and bundles -----------------------------------------------------


async def test_blueprint_yaml_and_bundle_lifecycle(client: AsyncArchetypeClient) -> None:
    osm = await client.agents.blueprints.get("osm", include_yaml=True)
    assert osm.yaml is not None and "window_size" in osm.yaml
    assert (await client.agents.blueprints.get(osm.id, include_yaml=False)).yaml is None
    # The official SDK (requests) sends the flag as "True".
    raw = await client.agents.blueprints._http.request(
        "GET", "/agents/blueprints/osm", params={"yaml": "True"}
    )
    assert raw["yaml"] == osm.yaml
    quick = [b async for b in client.agents.bundles.list(query="quick start")]
    assert quick and quick[0].blueprint_id == osm.id
    bundle = await client.agents.bundles.create(
        "osm", "mine", values={"window_size": 50}, models={"encoder": "omega-1.5"}
    )
    assert bundle.status == "ready" and bundle.values == {"window_size": 50}
    mine = [b.id async for b in client.agents.bundles.list(blueprint_id=osm.id, query="mine")]
    assert mine == [bundle.id]
    assert await client.agents.bundles.delete(bundle.id) is None
    with pytest.raises(NotFoundError):
        await client.agents.bundles.get(bundle.id)


async def test_bad_bundles_are_refused(client: AsyncArchetypeClient) -> None:
    with pytest.raises(BadRequestError, match="no value 'k_neighbours'"):
        await client.agents.bundles.create("osm", "x", values={"k_neighbours": 3})
    with pytest.raises(BadRequestError, match="Slot"):
        await client.agents.bundles.create("osm", "x", models={"encoder": "gpt"})
    with pytest.raises(NotFoundError):
        await client.agents.bundles.create("nope", "x")
    with pytest.raises(ValueError, match="name"):
        await client.agents.bundles.create("osm", "")


# ---- execute: batch runs -----------------------------------------------------------------


async def test_a_batch_run_classifies_each_window_and_writes_results(
    client: AsyncArchetypeClient, labelled: str
) -> None:
    bundle_id = await _bundle(client, window_size=100)
    run = await client.agents.bundles.run(bundle_id, [labelled])
    seen: list[str] = []
    done = await client.agents.instances.wait(
        run.id, poll_interval=0.01, on_update=lambda r: seen.append(r.status)
    )
    assert done.state is AgentStatus.COMPLETED and seen[-1] == "completed"
    refs = [r async for r in client.agents.instances.results(run.id)]
    assert len(refs) == 1 and refs[0].source == {"type": "file", "id": labelled}
    lines = (await client.files.read(refs[0].id)).decode().splitlines()
    states = [msgspec.json.decode(line)["state"] for line in lines]
    assert len(states) == 30  # 3000 rows in windows of 100
    # The built-in reference recognises each 600-row segment of the demo.
    assert states == [state for state in PLAN for _ in range(6)]
    kinds = [e.type for e in await client.agents.instances.events(run.id)]
    assert kinds == [
        "instance.created",
        "instance.started",
        "input.completed",
        "instance.completed",
    ]
    logs = [
        entry.message async for entry in client.agents.instances.logs(run.id, search="30 windows")
    ]
    assert logs == [f"{labelled}: 30 windows"]
    assert not [e async for e in client.agents.instances.logs(run.id, level="error")]
    listed = [i.id async for i in client.agents.instances.list(bundle_id=bundle_id)]
    assert listed == [run.id]


async def test_a_sink_collects_every_input_in_one_file(
    client: AsyncArchetypeClient, labelled: str
) -> None:
    await client.files.upload(labelled_demo(), filename="second.csv")
    run = await client.agents.bundles.run(
        await _bundle(client), [labelled, {"type": "file", "id": "second.csv"}], sink="all.jsonl"
    )
    await client.agents.instances.wait(run.id, poll_interval=0.01)
    refs = [r.id async for r in client.agents.instances.results(run.id)]
    assert refs == ["all.jsonl"]
    assert len((await client.files.read("all.jsonl")).splitlines()) == 60


async def test_run_validation(client: AsyncArchetypeClient, labelled: str) -> None:
    bundle_id = await _bundle(client)
    with pytest.raises(ValueError, match="at least one source"):
        await client.agents.bundles.run(bundle_id, [])
    with pytest.raises(ValueError, match="mode"):
        await client.agents.bundles.run(bundle_id, [labelled], mode="stream")
    with pytest.raises(NotFoundError, match=r"missing\.csv"):
        await client.agents.bundles.run(bundle_id, ["missing.csv"])


async def test_pause_resume_and_cancel(
    emulator: Emulator, client: AsyncArchetypeClient, labelled: str
) -> None:
    emulator.agents.step_interval = 0.02
    run = await client.agents.bundles.run(await _bundle(client, window_size=50), [labelled])
    progress = (await client.agents.instances.get(run.id)).progress or {}
    while progress["windows_processed"] < 2:
        await asyncio.sleep(0.01)
        progress = (await client.agents.instances.get(run.id)).progress or {}
    paused = await client.agents.instances.pause(run.id)
    assert paused.status == "paused"
    held = (await client.agents.instances.get(run.id)).progress["windows_processed"]  # type: ignore[index]
    await asyncio.sleep(0.1)
    assert (await client.agents.instances.get(run.id)).progress["windows_processed"] == held  # type: ignore[index]
    with pytest.raises(ConflictError):
        await client.agents.instances.pause(run.id)
    assert (await client.agents.instances.resume(run.id)).status == "running"
    await client.agents.instances.cancel(run.id)
    done = await client.agents.instances.wait(run.id, poll_interval=0.01)
    assert done.state is AgentStatus.CANCELLED and done.terminal
    kinds = [e.type for e in await client.agents.instances.events(run.id)]
    assert kinds[-3:] == ["instance.paused", "instance.resumed", "instance.cancelled"]
    assert [r async for r in client.agents.instances.results(run.id)] == []
    with pytest.raises(ConflictError):
        await client.agents.instances.cancel(run.id)
    cancelled = [i.id async for i in client.agents.instances.list(status="canceled")]
    assert cancelled == [run.id]
    await client.agents.instances.delete(run.id)
    with pytest.raises(NotFoundError):
        await client.agents.instances.get(run.id)


async def test_wait_has_a_deadline_by_default(
    emulator: Emulator, client: AsyncArchetypeClient, labelled: str
) -> None:
    emulator.agents.step_interval = 0.05
    run = await client.agents.bundles.run(await _bundle(client), [labelled])
    with pytest.raises(WaitTimeoutError) as caught:
        await client.agents.instances.wait(run.id, timeout=0.1, poll_interval=0.02)
    assert isinstance(caught.value.record, Instance) and not caught.value.record.terminal
    with pytest.raises(ValueError, match="timeout"):
        await client.agents.instances.wait(run.id, timeout=-1)
    await client.agents.instances.cancel(run.id)


async def test_a_failed_run_raises_with_its_reason(
    emulator: Emulator, client: AsyncArchetypeClient, labelled: str
) -> None:
    emulator.faults.agent_fail_after = 3
    run = await client.agents.bundles.run(await _bundle(client), [labelled])
    with pytest.raises(AgentRunError) as caught:
        await client.agents.instances.wait(run.id, poll_interval=0.01)
    assert caught.value.code == "injected_failure"
    done = await client.agents.instances.wait(run.id, raise_on_failure=False)
    assert done.status == "failed" and done.progress["windows_processed"] == 3  # type: ignore[index]
    errors = [e.message async for e in client.agents.instances.logs(run.id, level="error")]
    assert len(errors) == 1 and "Injected fault" in str(errors[0])


async def test_a_run_refused_with_503_is_retried_once_and_made_once(
    emulator: Emulator, client: AsyncArchetypeClient, labelled: str
) -> None:
    bundle_id = await _bundle(client)
    emulator.faults.fail_next(503, path="/run", retry_after="0")
    run = await client.agents.bundles.run(bundle_id, [labelled])
    assert [i.id async for i in client.agents.instances.list(bundle_id=bundle_id)] == [run.id]


def test_both_spellings_of_cancelled_decode_alike() -> None:
    for spelling in ("cancelled", "canceled", "CANCELED"):
        record = msgspec.json.decode(
            msgspec.json.encode({"id": "agt_1", "status": spelling}), type=Instance
        )
        assert record.state is AgentStatus.CANCELLED and record.terminal
    assert AgentStatus.parse("exploded") is AgentStatus.UNKNOWN


# ---- evaluate ----------------------------------------------------------------------------


async def test_an_eval_reports_macro_f1_against_the_label_column(
    client: AsyncArchetypeClient, labelled: str
) -> None:
    # The same recording, but its WARNING segment is labelled NORMAL.
    wrong = ("IDLE", "NORMAL", "NORMAL", "NORMAL", "IDLE")
    await client.files.upload(labelled_demo(wrong), filename="mislabelled.csv")
    osm = await client.agents.blueprints.get("osm")
    made = await client.agents.evals.create(
        osm.id, [labelled, "mislabelled.csv"], name="check", emit_predictions=True
    )
    done = await client.agents.evals.wait(made.id, poll_interval=0.01)
    report = done.metrics_report
    assert report is not None and report["primary"] == "state.macro_f1"
    state = report["targets"]["state"]
    assert state["class_names"] == ["IDLE", "NORMAL", "WARNING"]
    # 60 windows of 100 rows; the 6 WARNING windows of the second file count as wrong.
    assert state["confusion_matrix"] == [[24, 0, 0], [0, 24, 6], [0, 0, 6]]
    # NORMAL: P=1, R=0.8 → F1=8/9; WARNING: P=0.5, R=1 → F1=2/3; IDLE: 1.
    assert report["primary_value"] == pytest.approx((1 + 8 / 9 + 2 / 3) / 3, abs=1e-6)
    per_example = [e async for e in client.agents.evals.examples(done.id)]
    assert [e.metrics["primary_value"] for e in per_example] == [  # type: ignore[index]
        1.0,
        # NORMAL: P=1, R=12/18 → F1=0.8; WARNING predicted, never true: F1=0
        pytest.approx((1 + 0.8 + 0) / 3, abs=1e-6),
    ]
    predictions = per_example[0].predictions
    assert predictions is not None and await client.files.read(predictions["id"])
    await client.agents.evals.delete(done.id)
    with pytest.raises(NotFoundError):
        await client.files.metadata(predictions["id"])


async def test_eval_validation_and_cancel(
    emulator: Emulator, client: AsyncArchetypeClient, labelled: str
) -> None:
    osm = await client.agents.blueprints.get("osm")
    with pytest.raises(BadRequestError, match="Unknown metric"):
        await client.agents.evals.create(osm.id, [labelled], primary="state.auc")
    with pytest.raises(ValueError, match="at least one example"):
        await client.agents.evals.create(osm.id, [])
    await client.files.upload(b"t,x\n0,1\n1,2\n", filename="unlabelled.csv")
    failed = await client.agents.evals.create(osm.id, ["unlabelled.csv"])
    with pytest.raises(AgentRunError) as caught:
        await client.agents.evals.wait(failed.id, poll_interval=0.01)
    assert caught.value.code == "missing_labels"
    emulator.agents.step_interval = 1.0
    slow = await client.agents.evals.create(osm.id, [labelled, labelled])
    assert (await client.agents.evals.cancel(slow.id)).state is AgentStatus.CANCELLED


# ---- optimize ----------------------------------------------------------------------------

SPACE = {
    "parameters": {
        "window_size": {"kind": "value", "spec": {"type": "categorical", "values": [100, 300]}},
        "smoothing": {"kind": "value", "spec": {"type": "categorical", "values": [1, 9]}},
    }
}


async def test_an_optimization_searches_the_grid_and_promotes_the_best(
    client: AsyncArchetypeClient, labelled: str
) -> None:
    osm = await client.agents.blueprints.get("osm")
    made = await client.agents.optimizations.create(
        osm.id,
        "macro_f1",
        [labelled],
        3,
        training_examples=[labelled],
        search_space=SPACE,
        name="tune",
    )
    done = await client.agents.optimizations.wait(made.id, poll_interval=0.01)
    assert done.progress == {
        "pending": 0,
        "running": 0,
        "completed": 3,
        "failed": 0,
        "cancelled": 0,
    }
    trials = [t async for t in client.agents.optimizations.trials(done.id)]
    assert [t.values for t in trials] == [  # newest first; the grid's first three points
        {"window_size": 300, "smoothing": 1},
        {"window_size": 100, "smoothing": 9},
        {"window_size": 100, "smoothing": 1},
    ]
    scores = {t.index: t.objective_value for t in trials}
    assert scores[1] is not None and scores[0] is not None and scores[1] < scores[0]
    best = done.best_trial
    assert best is not None and best.objective_value == max(s or 0 for s in scores.values())
    assert best.metrics_report["targets"]["state"]["confusion_matrix"]  # type: ignore[index]
    promoted = await client.agents.optimizations.promote(
        done.id, best.id, blueprint_key="osm-line3", name="OSM line 3"
    )
    assert promoted.blueprint_key == "osm-line3" and promoted.owner == "org"
    assert promoted.definition["values"]["window_size"]["default"] == best.values["window_size"]  # type: ignore[index]
    bundle = await client.agents.bundles.create("osm-line3", "tuned")
    run = await client.agents.bundles.run(bundle.id, [labelled])
    assert (await client.agents.instances.wait(run.id, poll_interval=0.01)).status == "completed"
    await client.agents.optimizations.delete(done.id)
    assert (await client.agents.blueprints.get("osm-line3")).id == promoted.id


async def test_optimization_validation_and_cancel(
    emulator: Emulator, client: AsyncArchetypeClient, labelled: str
) -> None:
    osm = await client.agents.blueprints.get("osm")
    bad_space = {
        "parameters": {"k": {"kind": "value", "spec": {"type": "categorical", "values": [1]}}}
    }
    with pytest.raises(BadRequestError, match="no value 'k'"):
        await client.agents.optimizations.create(
            osm.id, "macro_f1", [labelled], 2, search_space=bad_space
        )
    with pytest.raises(ValueError, match="max_trials"):
        await client.agents.optimizations.create(osm.id, "macro_f1", [labelled], 0)
    emulator.agents.step_interval = 1.0
    made = await client.agents.optimizations.create(
        osm.id, "macro_f1", [labelled], 4, search_space=SPACE
    )
    cancelled = await client.agents.optimizations.cancel(made.id)
    assert cancelled.state is AgentStatus.CANCELLED
    assert cancelled.progress is not None and cancelled.progress["cancelled"] == 4
    trial = next(iter([t async for t in client.agents.optimizations.trials(made.id)]))
    with pytest.raises(ConflictError):
        await client.agents.optimizations.promote(made.id, trial.id)


# ---- serving -----------------------------------------------------------------------------


@pytest.fixture
async def serving(client: AsyncArchetypeClient) -> AsyncIterator[str]:
    instance = await client.agents.bundles.deploy(await _bundle(client))
    assert instance.status == "running" and instance.mode == "serving"
    yield instance.id


async def test_a_serving_instance_answers_one_shot_queries(
    client: AsyncArchetypeClient, serving: str
) -> None:
    answer = await client.agents.instances.query(serving, {**WINDOW, "window_index": 7})
    assert answer.status == "completed" and answer.query_response_time_ms is not None
    assert answer.response["state"] == "IDLE" and answer.response["window_index"] == 7
    with pytest.raises(BadRequestError, match="non-numeric"):
        await client.agents.instances.query(serving, {"columns": ["x"], "rows": [["a"]]})


async def test_the_connect_socket_pipelines_queries_in_order(
    client: AsyncArchetypeClient, serving: str
) -> None:
    loud = {"columns": ["ax", "ay", "az"], "rows": [[1.5, -1.5, 2.5], [-1.5, 1.5, -0.5]] * 20}
    async with client.agents.connect(serving) as conn:
        windows = [{**(loud if i % 3 == 0 else WINDOW), "window_index": i} for i in range(60)]
        answers = await asyncio.gather(*(conn.query(w) for w in windows))
        assert [a.response["window_index"] for a in answers] == list(range(60))
        states = {a.response["state"] for a in answers}
        assert states == {"IDLE", "WARNING"}
        with pytest.raises(AgentQueryError) as caught:
            await conn.query({"rows": []})
        assert caught.value.code == "invalid_input"
        assert (await conn.query(WINDOW)).response["state"] == "IDLE"  # still usable
    assert conn.closed


async def test_a_cancelled_query_does_not_steal_the_next_answer(
    emulator: Emulator, client: AsyncArchetypeClient, serving: str
) -> None:
    async with client.agents.connect(serving) as conn:
        emulator.faults.reply_delay = 0.1
        first = asyncio.ensure_future(conn.query({**WINDOW, "window_index": 1}))
        await asyncio.sleep(0.02)
        first.cancel()
        emulator.faults.reply_delay = 0.0
        answer = await conn.query({**WINDOW, "window_index": 2})
        assert answer.response["window_index"] == 2


async def test_cancelling_the_instance_closes_its_sockets(
    emulator: Emulator, client: AsyncArchetypeClient, serving: str
) -> None:
    async with client.agents.connect(serving, reconnect=False) as conn:
        emulator.faults.reply_delay = 0.3
        waiting = asyncio.ensure_future(conn.query(WINDOW))
        await asyncio.sleep(0.05)
        await client.agents.instances.cancel(serving)
        with pytest.raises(ConnectionLostError):
            await waiting
    with pytest.raises(ConflictError):
        await client.agents.instances.query(serving, WINDOW)


async def test_only_running_serving_instances_accept_a_socket(
    client: AsyncArchetypeClient, labelled: str
) -> None:
    run = await client.agents.bundles.run(await _bundle(client), [labelled])
    with pytest.raises(ConflictError):
        async with client.agents.connect(run.id):
            pass
    with pytest.raises(NotFoundError):
        async with client.agents.connect("agt_missing"):
            pass


async def test_node_registry(client: AsyncArchetypeClient) -> None:
    names = {node.name for node in (await client.agents.node_registry()).data}
    assert {"file_reader", "state_classifier"} <= names
