"""The :class:`Emulator`: both emulated services on one local aiohttp server."""

from __future__ import annotations

import secrets
from types import TracebackType
from typing import Self

from aiohttp import web

from aiolens.emulator._web import json_response
from aiolens.emulator.agents_rest import agents_app
from aiolens.emulator.agents_serving import AgentSockets
from aiolens.emulator.agents_store import AgentsStore
from aiolens.emulator.faults import Faults
from aiolens.emulator.kynasmith_app import KynasmithState, kynasmith_app
from aiolens.emulator.lens_rest import PREFIX, error_body, lens_app, unknown_route_middleware
from aiolens.emulator.lens_store import LensStore
from aiolens.emulator.lens_uploads import STORAGE_PREFIX, storage_app

__all__ = ["Emulator"]

PLATFORM = "/platform"


class Emulator:
    """A local, in-memory emulator of the Lens API (and the Kynasmith API).

    ::

        async with Emulator() as emu:
            client = AsyncArchetypeClient(emu.api_key, emu.lens_url)

    It listens on ``host`` (127.0.0.1 by default) on a free port unless
    ``port`` is given. State lives in memory and is gone on :meth:`stop`.

    Args:
        host: interface to bind.
        port: TCP port; ``0`` picks a free one.
        api_key: the Lens API key to accept; random when omitted.
        max_active_sessions: concurrent Lens sessions before create answers 429.
        max_upload_bytes: the Files API upload limit.
        event_interval: seconds between the events a running input stream
            produces (``0``: as fast as possible).
        sse_heartbeat_interval: seconds between SSE heartbeats (heartbeats
            carry no ``id:`` line).
        max_session_events: per session, how many events the SSE log (the
            ``Last-Event-ID`` resume window) and the mailbox keep; older ones
            are evicted.
        session_ttl_sec: seconds without an event or a running input stream
            after which a Lens session is destroyed (reported as
            ``session_ttl_sec``; 24 h like the service).
        sse_replay: when true, an SSE consumer connecting without
            ``Last-Event-ID`` first gets the current stream's past events;
            by default it gets only what is produced after it connects, like
            the service (docs/protocol-notes.md).
        kynasmith_api_key: the ``<key_id>:<key_secret>`` Kynasmith credential
            to accept; random when omitted.
        kynasmith_token_ttl: lifetime of Kynasmith access tokens in seconds.
        kynasmith_limits: requests per rolling minute (``project``,
            ``organization``, ``sessions``, ``movespecs``); the documented
            defaults (100, 500, 10, 60) when omitted.
        agents_step_interval: seconds an agent run spends per window (an eval
            or an optimization trial per example): modelled processing time.

    Attributes:
        api_key: the accepted Lens API key.
        faults: fault-injection knobs (:class:`~aiolens.emulator.faults.Faults`).
        lens: the Lens API's state, for inspection in tests.
        agents: the Agents API's state (blueprints, bundles, instances ...).
        kynasmith: the Kynasmith API's state.
        kynasmith_api_key: the accepted Kynasmith credential.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        max_active_sessions: int = 10_000,
        max_upload_bytes: int = 512 * 1024 * 1024,
        event_interval: float = 0.001,
        sse_heartbeat_interval: float = 5.0,
        max_session_events: int = 1_000_000,
        session_ttl_sec: float = 86400,
        sse_replay: bool = False,
        kynasmith_api_key: str | None = None,
        kynasmith_token_ttl: float = 900.0,
        kynasmith_limits: dict[str, int] | None = None,
        agents_step_interval: float = 0.002,
    ) -> None:
        if not session_ttl_sec > 0:
            raise ValueError(f"session_ttl_sec must be > 0, got {session_ttl_sec!r}")
        self.host = host
        self.port: int = port
        self.api_key: str = api_key or f"atai-emu-{secrets.token_hex(16)}"
        self.faults: Faults = Faults()
        self.lens: LensStore = LensStore(
            api_key=self.api_key,
            max_active_sessions=max_active_sessions,
            max_upload_bytes=max_upload_bytes,
            event_interval=event_interval,
            sse_heartbeat_interval=sse_heartbeat_interval,
            max_session_events=max_session_events,
            session_ttl_sec=session_ttl_sec,
            sse_replay=sse_replay,
        )
        self.agents: AgentsStore = AgentsStore(self.lens, step_interval=agents_step_interval)
        self.kynasmith_api_key: str = (
            kynasmith_api_key or f"kid_{secrets.token_hex(6)}:{secrets.token_hex(16)}"
        )
        self.kynasmith: KynasmithState = KynasmithState(
            api_key=self.kynasmith_api_key, token_ttl=kynasmith_token_ttl
        )
        if kynasmith_limits:
            self.kynasmith.limits.update(kynasmith_limits)
        self._runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        """The root aiohttp application serving both APIs."""
        root = web.Application(middlewares=[unknown_route_middleware])
        lens = lens_app(self.lens, self.faults)
        root.add_subapp(PREFIX, lens)
        root.add_subapp(STORAGE_PREFIX, storage_app(self.lens, self.faults, error_body))
        root.add_subapp("/api", kynasmith_app(self.kynasmith, self.faults))
        # The Agents API in both layouts (README "Base URL"): beside /v0.5 at the host
        # root, and the whole platform (Lens, files, agents) under /platform.
        sockets = AgentSockets(self.agents, self.faults)
        root.add_subapp("/agents", agents_app(self.agents, self.faults, sockets))
        root.add_subapp(f"{PLATFORM}/agents", agents_app(self.agents, self.faults, sockets))
        root.add_subapp(PLATFORM, lens_app(self.lens, self.faults))
        root.router.add_post("/_emulator/faults", self._set_faults)
        root.router.add_get("/_emulator/health", self._health)
        return root

    async def _set_faults(self, request: web.Request) -> web.Response:
        # Anyone who can reach the port could otherwise break every client of an
        # emulator served on 0.0.0.0: the Lens key is required, as for the API itself.
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), self.api_key.encode()):
            return json_response(
                {"error": {"code": "unauthorized", "message": "Bearer <Lens API key> required"}},
                status=401,
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return json_response(
                {"error": {"code": "bad_request", "message": "a JSON object expected"}},
                status=400,
            )
        if body.get("clear"):
            self.faults.clear()
        self.faults.update(body)
        return json_response({"ok": True})

    async def _health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._runner is None:
            raise RuntimeError("The emulator is not running; use `async with Emulator()`.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def lens_url(self) -> str:
        """The Lens API base URL (``http://127.0.0.1:PORT/v0.5``)."""
        return f"{self.base_url}{PREFIX}"

    @property
    def platform_url(self) -> str:
        """The platform layout's base URL (``http://127.0.0.1:PORT/platform``).

        Like ``https://platform.u1.archetypeai.app/api``: the Lens API, the
        files and the Agents API all under one prefix.
        """
        return f"{self.base_url}{PLATFORM}"

    @property
    def kynasmith_url(self) -> str:
        """The Kynasmith API base URL (paths under it start with ``/api``)."""
        return self.base_url

    async def start(self) -> None:
        """Bind and start serving. Idempotent while running."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])

    async def stop(self) -> None:
        """Close every connection and stop serving. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}" if self._runner else "stopped"
        return f"Emulator({state})"
