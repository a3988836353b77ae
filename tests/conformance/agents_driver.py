"""Drive the emulated Agents API with the official ``archetypeai`` SDK; one JSON line per check.

Run by ``tests/conformance/test_archetypeai_sdk_agents.py`` with the SDK venv's
interpreter::

    .venv-sdk/bin/python tests/conformance/agents_driver.py BASE_URL API_KEY WORKDIR

``BASE_URL`` is the emulator's root. The SDK 26.10 is pointed at the platform
layout (``BASE_URL/platform``: files and agents under one prefix); one flow
points its agents at the host root, where SDK 26.8 put them beside ``/v0.5``.
Serving mode has no SDK method: it is driven as the vendor's example repo does
(``mode: "serving"`` through the SDK's own ``post_json``, ``requests`` for the
query, ``websockets`` for the socket). Shares ``check`` / ``flow`` / ``refused``
with ``archetypeai_driver.py``; imports nothing from aiolens or pytest.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import archetypeai_driver as common
import requests
from archetypeai import ArchetypeAI
from archetypeai_driver import check, flow, refused
from websockets.sync.client import connect

PLAN = ("IDLE", "NORMAL", "WARNING", "NORMAL", "IDLE")
WINDOW = {
    "window_index": 0,
    "sample_rate_hz": 100,
    "columns": ["ax", "ay", "az"],
    "rows": [[0.0, 0.01, 1.0], [0.01, 0.0, 0.99]],
}
SPACE = {
    "parameters": {
        "smoothing": {"kind": "value", "spec": {"type": "categorical", "values": [1, 9, 15]}}
    }
}
state: dict[str, Any] = {}


def labelled(work: Path) -> Path:
    """A 3000-row recording of five 600-row segments, with its ``state`` column."""
    path = work / "line3.csv"
    rows = ["timestamp,ax,ay,az,state"]
    for i in range(3000):
        label = PLAN[i // 600]
        amplitude = {"IDLE": 0.0, "NORMAL": 0.5, "WARNING": 1.6}[label]
        wave = amplitude * (1 if i % 4 < 2 else -1)
        rows.append(f"{i / 100:.2f},{wave:.4f},{wave / 2:.4f},{1 + wave / 3:.4f},{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


@flow("agents develop")
def develop(client: ArchetypeAI, work: Path) -> None:
    agents = client.agents
    up = client.files.local.upload(str(labelled(work)))
    state["file"] = up["file_id"]
    page = agents.blueprints.list(limit=2)
    check(
        "agents develop",
        "blueprints.list: a cursor page",
        page["has_more"] and page["next_cursor"],
        page,
    )
    osm = agents.blueprints.get("osm", include_yaml=True)
    state["osm"] = osm["id"]
    check(
        "agents develop",
        "blueprints.get(key, include_yaml=True)",
        "blueprint_key: osm" in osm.get("yaml", ""),
    )
    versions = [b["version"] for b in agents.blueprints.list_versions("osm")["data"]]
    check("agents develop", "list_versions, newest first", versions == [2, 1], versions)
    bundle = agents.bundles.create(
        "osm", "sdk bundle", values={"window_size": 100}, models={"encoder": "omega-1.5"}
    )
    state["bundle"] = bundle["id"]
    check("agents develop", "bundles.create (201)", bundle["status"] == "ready", bundle)
    found = agents.bundles.list(query="sdk bundle", blueprint_id=osm["id"])["data"]
    check(
        "agents develop",
        "bundles.list(query, blueprint_id)",
        [b["id"] for b in found] == [bundle["id"]],
    )
    ok, detail = refused(
        lambda: agents.bundles.create("osm", "bad", values={"nope": 1}), "invalid_values"
    )
    check("agents develop", "a bad value is refused with its code", ok, detail)
    check(
        "agents develop",
        "node registry",
        agents.get_node_registry()["data"][0]["name"] == "file_reader",
    )


@flow("agents execute")
def execute(client: ArchetypeAI) -> None:
    instances = client.agents.instances
    run = client.agents.bundles.run(state["bundle"], [state["file"]])
    check(
        "agents execute",
        "bundles.run with a bare file id (202)",
        run["status"] in ("pending", "running"),
        run,
    )
    done = instances.wait_until_done(run["id"], poll_interval_sec=0.05, timeout_sec=60)
    check("agents execute", "wait_until_done", done["status"] == "completed", done)
    results = instances.get_results(run["id"], limit=10)["data"]
    check(
        "agents execute", "get_results", len(results) == 1 and results[0]["type"] == "file", results
    )
    kinds = [e["type"] for e in instances.get_events(run["id"])["data"]]
    check(
        "agents execute",
        "get_events (lifecycle)",
        kinds[0] == "instance.created" and kinds[-1] == "instance.completed",
        kinds,
    )
    logs = instances.get_logs(run["id"], search="windows")["data"]
    check("agents execute", "get_logs(search)", len(logs) == 1, logs)
    slow_bundle = client.agents.bundles.create("osm", "slow", values={"window_size": 10})
    ref = {"type": "file", "id": state["file"], "format": "csv"}
    slow = client.agents.bundles.run(slow_bundle["id"], [ref])
    time.sleep(0.2)
    check("agents execute", "pause", instances.pause(slow["id"])["status"] == "paused")
    check("agents execute", "resume", instances.resume(slow["id"])["status"] == "running")
    check("agents execute", "cancel", instances.cancel(slow["id"])["status"] == "cancelled")
    ended = instances.wait_until_done(slow["id"], poll_interval_sec=0.05, timeout_sec=10)
    check(
        "agents execute", "a cancelled run is terminal for the SDK", ended["status"] == "cancelled"
    )
    check("agents execute", "delete (204)", instances.delete(slow["id"]) == {})


@flow("agents evaluate")
def evaluate(client: ArchetypeAI) -> None:
    evals = client.agents.evals
    made = evals.create(state["osm"], [state["file"]], name="sdk eval", primary="state.macro_f1")
    done = evals.wait_until_done(made["id"], poll_interval_sec=0.05, timeout_sec=60)
    report = done.get("metrics_report") or {}
    check(
        "agents evaluate",
        "metrics report with macro-F1",
        report.get("primary") == "state.macro_f1",
        report.get("primary_value"),
    )
    check("agents evaluate", "list_examples", len(evals.list_examples(done["id"])["data"]) == 1)
    check("agents evaluate", "delete", evals.delete(done["id"]) == {})


@flow("agents optimize")
def optimize(client: ArchetypeAI) -> None:
    opts = client.agents.optimizations
    made = opts.create(
        state["osm"],
        "macro_f1",
        [state["file"]],
        3,
        training_examples=[state["file"]],
        search_space=SPACE,
    )
    done = opts.wait_until_done(made["id"], poll_interval_sec=0.05, timeout_sec=120)
    check(
        "agents optimize",
        "progress per trial state",
        done["progress"]["completed"] == 3,
        done["progress"],
    )
    trials = opts.list_trials(done["id"])["data"]
    check(
        "agents optimize",
        "list_trials with trial_values",
        all("values" in t["trial_values"] for t in trials),
    )
    best = done["best_trial"]
    promoted = opts.promote_trial(done["id"], best["id"], blueprint_key="osm-sdk")
    check(
        "agents optimize",
        "promote_trial gives a blueprint",
        promoted.get("blueprint_key") == "osm-sdk",
        promoted,
    )
    check("agents optimize", "delete keeps the promoted blueprint", opts.delete(done["id"]) == {})
    check(
        "agents optimize",
        "promoted blueprint found by key",
        client.agents.blueprints.get("osm-sdk")["id"] == promoted["id"],
    )


@flow("agents serving")
def serving(client: ArchetypeAI, base: str, api_key: str) -> None:
    bundles = client.agents.bundles
    endpoint = bundles._get_endpoint(bundles.api_endpoint, f"agents/bundles/{state['bundle']}/run")
    instance = bundles.post_json(endpoint, {"mode": "serving", "connectors": {"source": []}})
    check(
        "agents serving",
        "deploy with mode serving: running",
        instance["status"] == "running",
        instance,
    )
    auth = {"Authorization": f"Bearer {api_key}"}
    url = f"{base}/agents/instances/{instance['id']}"
    answer = requests.post(f"{url}/query", json=WINDOW, headers=auth, timeout=30).json()
    check(
        "agents serving",
        "query",
        answer.get("status") == "completed" and "query_response_time_ms" in answer,
        answer,
    )
    with connect("ws" + url[4:] + "/connect", additional_headers=auth) as ws:
        check(
            "agents serving",
            "first frame {status: connected}",
            json.loads(ws.recv()) == {"status": "connected"},
        )
        for i in range(3):
            ws.send(json.dumps({**WINDOW, "window_index": i}))
        replies = [json.loads(ws.recv()) for _ in range(3)]
        check(
            "agents serving",
            "one reply per message, in order",
            [r["response"]["window_index"] for r in replies] == [0, 1, 2],
            replies,
        )
    stopped = client.agents.instances.cancel(instance["id"])
    check("agents serving", "cancel", stopped["status"] == "cancelled")


@flow("agents 26.8 layout")
def host_root_layout(api_key: str, root: str) -> None:
    # SDK 26.8 served agents from scheme://host, beside the versioned Lens API.
    old = ArchetypeAI(api_key, api_endpoint=f"{root}/v0.5")
    old.agents.blueprints.api_endpoint = root
    keys = {b["blueprint_key"] for b in old.agents.blueprints.list()["data"]}
    check("agents 26.8 layout", "agents at the host root", {"osm", "ad"} <= keys, keys)


def main() -> None:
    root, api_key, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    warnings.simplefilter("ignore", FutureWarning)
    platform = f"{root}/platform"
    client = ArchetypeAI(api_key, api_endpoint=platform, request_timeout_sec=30)
    develop(client, work)
    execute(client)
    evaluate(client)
    optimize(client)
    serving(client, platform, api_key)
    host_root_layout(api_key, root)
    print(json.dumps({"done": True, "failures": common.failures}), flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
