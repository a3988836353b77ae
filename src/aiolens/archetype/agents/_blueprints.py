"""Develop: blueprints (agent definitions), bundles (a blueprint pinned with
configuration, ready to run) and the node registry blueprints draw from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiolens._transport.http import HTTPTransport, Timeout
from aiolens.archetype.agents._rest import Ref, _id, _optional_mapping, _q, _Resource
from aiolens.archetype.agents.models import Blueprint, Bundle, Instance, NodeRegistry, data_ref
from aiolens.archetype.pages import AsyncPager

_MODES: Final = frozenset({"batch", "serving"})


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
            "/agents/blueprints", Blueprint, {"key": key}, limit, after, before, timeout
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
        path = f"/agents/blueprints/{_q(reference)}/versions"
        return self._pager(path, Blueprint, {}, limit, after, before, timeout)


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
        params = {"query": query, "blueprint_id": blueprint_id}
        return self._pager("/agents/bundles", Bundle, params, limit, after, before, timeout)

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


async def node_registry(http: HTTPTransport, timeout: Timeout | None = None) -> NodeRegistry:
    """``GET agents/nodes/registry``: the connector and processing nodes."""
    registry: NodeRegistry = await http.request(
        "GET", "/agents/nodes/registry", response_type=NodeRegistry, timeout=timeout
    )
    return registry
