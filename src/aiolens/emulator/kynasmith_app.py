"""The emulated Kynasmith Detection API as an aiohttp sub-app at ``/api``.

In memory (:mod:`~aiolens.emulator.kynasmith_store`): machine credentials and
short-lived JWT-shaped tokens with scopes and expiry, detection sessions and
their lifecycle, MoveSpecs with drafts, versions, release and fork. The parts:

* :mod:`~aiolens.emulator.kynasmith_auth`: token exchange, scopes, rate limits,
  idempotent creates, ``X-Request-ID``, the error envelope;
* :mod:`~aiolens.emulator.kynasmith_sessions`: detection sessions over REST;
* :mod:`~aiolens.emulator.kynasmith_realtime`: the realtime socket, which
  checks frames and runs the session's MoveSpec through the real detector;
* :mod:`~aiolens.emulator.kynasmith_movespecs`: MoveSpecs over REST;
* :mod:`~aiolens.emulator.kynasmith_wire`: the emulator's own wire models.

Seeded: public MoveSpecs ``squat`` and ``lunge`` with a released version each.
"""

from __future__ import annotations

from aiohttp import web

from aiolens.emulator._web import fault_middleware
from aiolens.emulator.faults import Faults
from aiolens.emulator.kynasmith_auth import (
    KYNASMITH_KEY,
    auth_middleware,
    auth_routes,
    error_envelope,
    request_id_middleware,
    tap_middleware,
)
from aiolens.emulator.kynasmith_movespecs import movespec_routes
from aiolens.emulator.kynasmith_realtime import FAULTS_KEY, realtime_routes
from aiolens.emulator.kynasmith_sessions import session_routes
from aiolens.emulator.kynasmith_store import KynasmithState

__all__ = ["KYNASMITH_KEY", "KynasmithState", "kynasmith_app"]


def kynasmith_app(state: KynasmithState, faults: Faults) -> web.Application:
    """The Kynasmith API as an aiohttp application, to mount at ``/api``."""
    app = web.Application(
        middlewares=[
            tap_middleware,
            request_id_middleware,
            fault_middleware(faults, error_envelope),
            auth_middleware,
        ]
    )
    app[KYNASMITH_KEY] = state
    app[FAULTS_KEY] = faults
    for routes in (auth_routes, session_routes, realtime_routes, movespec_routes):
        app.add_routes(routes)
    return app
