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

The groups live by concern: blueprints and bundles (``_blueprints``),
instances (``_instances``), evals and optimizations (``_evals``), what the
last three share (``_jobs``: list, get, cancel, delete, wait) and what all
share (``_rest``: the request helpers and argument checks). Import them from
here.
"""

from __future__ import annotations

from aiolens.archetype.agents._blueprints import Blueprints, Bundles
from aiolens.archetype.agents._evals import Evals, Optimizations
from aiolens.archetype.agents._instances import Instances
from aiolens.archetype.agents._instances import checked_reply as checked_reply  # for agents.serving
from aiolens.archetype.agents._jobs import DEFAULT_WAIT_TIMEOUT
from aiolens.archetype.agents._rest import Ref

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "Blueprints",
    "Bundles",
    "Evals",
    "Instances",
    "Optimizations",
    "Ref",
]
