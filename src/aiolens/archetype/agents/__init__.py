"""The Archetype Agents API: ``client.agents`` (docs/protocol-notes.md, "Agents API").

Develop (blueprints, bundles), evaluate (evals), optimize (optimizations,
trials, promote), execute (batch runs with results; serving instances queried
one-shot or over a socket)::

    async with AsyncArchetypeClient() as client:
        bundle = await client.agents.bundles.create("osm", "line 3")
        run = await client.agents.bundles.run(bundle.id, ["recording.csv"])
        run = await client.agents.instances.wait(run.id)
        async for ref in client.agents.instances.results(run.id):
            await client.files.download(ref.id, ref.id)

Where the Agents API lives relative to the Lens API's base URL is explained
in :func:`agents_base_url`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import yarl

from aiolens._transport.http import HTTPTransport, Timeout
from aiolens.archetype.agents._blueprints import node_registry
from aiolens.archetype.agents.models import (
    TERMINAL_STATUSES,
    AgentStatus,
    Blueprint,
    Bundle,
    DataRef,
    Eval,
    EvalExample,
    Instance,
    InstanceEvent,
    LogEntry,
    Node,
    NodeRegistry,
    Optimization,
    QueryResult,
    ResultRef,
    Trial,
    data_ref,
    example,
)
from aiolens.archetype.agents.resources import (
    Blueprints,
    Bundles,
    Evals,
    Instances,
    Optimizations,
)
from aiolens.archetype.agents.serving import AgentConnection
from aiolens.archetype.pages import AsyncPager, CursorPage

__all__ = [
    "TERMINAL_STATUSES",
    "AgentConnection",
    "AgentStatus",
    "Agents",
    "AsyncPager",
    "Blueprint",
    "Bundle",
    "CursorPage",
    "DataRef",
    "Eval",
    "EvalExample",
    "Instance",
    "InstanceEvent",
    "LogEntry",
    "Node",
    "NodeRegistry",
    "Optimization",
    "QueryResult",
    "ResultRef",
    "Trial",
    "agents_base_url",
    "data_ref",
    "example",
]

_VERSION_SEGMENT: Final = re.compile(r"v\d+(\.\d+)*")


def agents_base_url(api_base_url: str) -> str:
    """Where the Agents API lives, given the client's (Lens) base URL.

    One ``ATAI_API_ENDPOINT`` serves both APIs:

    * a base URL ending in a version segment (``https://api.u1.archetypeai.app/v0.5``,
      aiolens' default and the SDK's until 26.8) is the versioned Lens API; the
      versionless Agents API sits beside it, at the same URL without that
      segment (``https://api.u1.archetypeai.app/agents/...``), as SDK 26.8.19
      computed it;
    * any other base URL (``https://platform.u1.archetypeai.app/api``, the SDK's
      default since 26.10, or a bare host) carries every API under it:
      ``<base>/lens/...``, ``<base>/files``, ``<base>/agents/...``.

    Pass ``agents_base_url=`` to the client to override this.
    """
    url = yarl.URL(api_base_url.rstrip("/"))
    parts = url.path.rstrip("/").split("/")
    if parts and _VERSION_SEGMENT.fullmatch(parts[-1]):
        return str(url.with_path("/".join(parts[:-1]) or "/")).rstrip("/")
    return str(url).rstrip("/")


class Agents:
    """``client.agents``: blueprints, bundles, instances, evals, optimizations, serving.

    Attributes:
        base_url: where the Agents API lives (paths ``/agents/...`` under it).
        blueprints: :class:`~aiolens.archetype.agents.resources.Blueprints`.
        bundles: :class:`~aiolens.archetype.agents.resources.Bundles`.
        instances: :class:`~aiolens.archetype.agents.resources.Instances`.
        evals: :class:`~aiolens.archetype.agents.resources.Evals`.
        optimizations: :class:`~aiolens.archetype.agents.resources.Optimizations`.
    """

    __slots__ = (
        "_http",
        "base_url",
        "blueprints",
        "bundles",
        "evals",
        "instances",
        "optimizations",
    )

    def __init__(self, http: HTTPTransport) -> None:
        self._http = http
        self.base_url = http.base_url
        self.blueprints = Blueprints(http)
        self.bundles = Bundles(http)
        self.instances = Instances(http)
        self.evals = Evals(http)
        self.optimizations = Optimizations(http)

    def __repr__(self) -> str:
        return f"Agents(base_url={self.base_url!r})"

    async def node_registry(self, *, timeout: Timeout | None = None) -> NodeRegistry:
        """The connector and processing nodes blueprints can use."""
        return await node_registry(self._http, timeout)

    @contextlib.asynccontextmanager
    async def connect(self, instance_id: str, **options: Any) -> AsyncIterator[AgentConnection]:
        """Open a serving instance's socket; closed (not cancelled) on exit::

            async with client.agents.connect(instance.id) as conn:
                answer = await conn.query({"columns": [...], "rows": [...]})

        Args:
            instance_id: a running serving instance (see ``bundles.deploy``).
            **options: :class:`AgentConnection` options (``max_in_flight``,
                ``request_timeout``, ``open_timeout``, ``ping_interval``, ``reconnect``).

        Raises:
            ConflictError: the instance is not a running serving instance.
        """
        conn = AgentConnection(self._http, instance_id, **options)
        try:
            await conn.connect()
            yield conn
        finally:
            await conn.aclose()
