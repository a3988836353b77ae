"""An agent from start to finish: develop, evaluate, optimize, execute (batch and serving).

Against the emulator, with the demo recording labelled by segment: a bundle of
the ``osm`` blueprint, an eval's macro-F1, an optimization over window size and
smoothing whose best trial is promoted to a blueprint of our own, a batch run
of it with its result file, and a serving instance queried once and over its
socket.
"""

import asyncio
from collections import Counter
from importlib import resources

import msgspec

from aiolens import AsyncArchetypeClient
from aiolens.emulator import Emulator

PLAN = ("IDLE", "NORMAL", "WARNING", "NORMAL", "IDLE")  # 600 rows each


def labelled_recording() -> bytes:
    """The demo recording with a ``state`` column (the label evals score against)."""
    lines = resources.files("aiolens.data").joinpath("sensor_demo.csv").read_text().splitlines()
    rows = [f"{row},{PLAN[i // 600]}" for i, row in enumerate(lines[1:])]
    return ("\n".join([lines[0] + ",state", *rows]) + "\n").encode()


async def main() -> None:
    async with (
        Emulator() as emu,
        AsyncArchetypeClient(api_key=emu.api_key, base_url=emu.lens_url) as client,
    ):
        agents = client.agents
        recording = (await client.files.upload(labelled_recording(), filename="line3.csv")).file_id

        # Develop: the canonical state monitor, as a bundle.
        osm = await agents.blueprints.get("osm")
        print(f"blueprint {osm.blueprint_key} v{osm.version}: {osm.name}")

        # Evaluate it on the labelled recording.
        evaluation = await agents.evals.create(osm.id, [recording], name="baseline")
        evaluation = await agents.evals.wait(evaluation.id)
        report = evaluation.metrics_report or {}
        print(f"eval {report['primary']} = {report['primary_value']:.3f}")

        # Optimize window size and smoothing; promote the best trial.
        space = {
            "parameters": {
                "window_size": {
                    "kind": "value",
                    "spec": {"type": "categorical", "values": [50, 200]},
                },
                "smoothing": {"kind": "value", "spec": {"type": "categorical", "values": [1, 9]}},
            }
        }
        search = await agents.optimizations.create(
            osm.id, "macro_f1", [recording], 4, training_examples=[recording], search_space=space
        )
        search = await agents.optimizations.wait(search.id)
        async for trial in agents.optimizations.trials(search.id):
            print(f"  trial {trial.values} -> {trial.objective_value:.3f}")
        best = search.best_trial
        assert best is not None
        tuned = await agents.optimizations.promote(search.id, best.id, blueprint_key="osm-line3")
        print(f"promoted {tuned.blueprint_key} with {best.values}")

        # Execute in batch: one result file per input.
        bundle = await agents.bundles.create(tuned.blueprint_key or tuned.id, "line 3 monitor")
        run = await agents.bundles.run(bundle.id, [recording])
        run = await agents.instances.wait(run.id)
        async for ref in agents.instances.results(run.id):
            lines = (await client.files.read(ref.id)).splitlines()
            states = Counter(msgspec.json.decode(line)["state"] for line in lines)
            print(f"run {run.status}: {ref.id} holds {dict(states)}")

        # Execute in serving mode: one-shot, then pipelined over the socket.
        serving = await agents.bundles.deploy(bundle.id)
        window = {"columns": ["ax", "ay", "az"], "rows": [[0.0, 0.01, 1.0], [0.01, 0.0, 0.99]]}
        answer = await agents.instances.query(serving.id, window)
        print(f"query: {answer.response['state']} in {answer.query_response_time_ms} ms")
        async with agents.connect(serving.id) as conn:
            answers = await asyncio.gather(
                *(conn.query({**window, "window_index": i}) for i in range(10))
            )
        print(
            f"socket: {len(answers)} answers, in order: "
            f"{[a.response['window_index'] for a in answers] == list(range(10))}"
        )
        await agents.instances.cancel(serving.id)


asyncio.run(main())
