"""The base of the REST resource groups (``client.agents.bundles`` ...): one request helper.

A resource group is a set of typed, documented methods, one per endpoint; what
their bodies share — send one request through the client's
:class:`~aiolens._transport.http.HTTPTransport` and decode the answer as the
method's return type — lives here once, so a method body says only what
differs: the method, the path, the type, the arguments.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from aiolens._transport.http import HTTPTransport

__all__ = ["Resource"]

T = TypeVar("T")


class Resource:
    """Holds the client's transport; :meth:`_request` is the one call every method makes."""

    __slots__ = ("_http",)

    def __init__(self, http: HTTPTransport) -> None:
        self._http = http

    @overload
    async def _request(
        self, method: str, path: str, response_type: type[T], **options: Any
    ) -> T: ...

    @overload
    async def _request(
        self, method: str, path: str, response_type: None = None, **options: Any
    ) -> Any: ...

    async def _request(
        self, method: str, path: str, response_type: Any = None, **options: Any
    ) -> Any:
        """``method path`` through the transport, the answer decoded as ``response_type``.

        ``options`` are :meth:`HTTPTransport.request`'s (``json``, ``params``,
        ``idempotent``, ``timeout``, ``headers``, ``auth`` ...), as are the
        retries, the timeout and the errors. ``response_type=None``: the
        decoded JSON, or ``None`` for an empty answer (204). Cancel: the
        request is abandoned (its connection is released).
        """
        return await self._http.request(method, path, response_type=response_type, **options)
