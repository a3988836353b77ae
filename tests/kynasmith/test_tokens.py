"""Access-token refresh against crafted servers, where the interleaving is the point."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolens.kynasmith import AsyncKynasmithClient
from tests.conftest import FAST_BACKOFF


async def test_late_expired_answers_reuse_the_new_token() -> None:
    """Two calls fail with the same expired token; the second failure arrives
    after the first call re-minted. Only the expired token is dropped, so the
    second call reuses the new one: one re-mint in all."""
    minted: list[str] = []
    refreshed = asyncio.Event()
    stale_calls = 0
    stamp = "2026-04-04T12:00:00Z"
    spec = {
        "movespec_id": "ms_1",
        "project_id": "proj_1",
        "name": "squat",
        "visibility": "private",
        "created_at": stamp,
        "updated_at": stamp,
    }

    async def mint(request: web.Request) -> web.Response:
        token = f"tok{len(minted) + 1}"
        minted.append(token)
        if len(minted) == 2:
            refreshed.set()
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in_seconds": 900,
                "organization_id": "org_1",
                "project_id": "proj_1",
            }
        )

    async def get_spec(request: web.Request) -> web.Response:
        nonlocal stale_calls
        if request.headers["Authorization"] == "Bearer tok1":
            stale_calls += 1
            if stale_calls == 2:
                await refreshed.wait()  # answer only after the other call re-minted
            return web.json_response(
                {
                    "error": {
                        "code": "access_token_expired",
                        "message": "expired",
                        "retryable": True,
                    }
                },
                status=401,
            )
        return web.json_response(spec)

    app = web.Application()
    app.router.add_post("/api/auth/access-tokens", mint)
    app.router.add_get("/api/movespecs/{id}", get_spec)
    async with (
        TestServer(app, host="127.0.0.1") as server,
        AsyncKynasmithClient(
            "key:secret", base_url=str(server.make_url("")), backoff=FAST_BACKOFF
        ) as client,
    ):
        await client.tokens.token(["movespecs:read"])
        specs = await asyncio.gather(client.movespecs.get("ms_1"), client.movespecs.get("ms_1"))
    assert [s.name for s in specs] == ["squat", "squat"]
    assert minted == ["tok1", "tok2"]
