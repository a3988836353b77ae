"""Which failed attempts are tried again, and the typed error for a transport failure.

* A request that certainly never reached the server (connect failure, connect
  timeout) is retried whatever its method.
* An *idempotent* request is also retried after a reset, a read timeout, 408,
  429 and 5xx.
* A request that is not safe to repeat (``idempotent=False``) is retried only
  on 429 and 503, which say the server did not process it.
* Never when the vendor's rules say the server forbade it
  (:meth:`~aiolens._transport.vendor_rules.VendorRules.forbids_retry`).
"""

from __future__ import annotations

from typing import Final

import aiohttp

from aiolens._transport.vendor_rules import VendorRules
from aiolens.errors import APIConnectionError, APIStatusError, APITimeoutError

__all__ = ["connection_error", "describe", "should_retry"]

_NOT_PROCESSED: Final = frozenset({429, 503})
_RETRY_STATUSES: Final = frozenset({408, 429})


def should_retry(
    error: APIStatusError | APIConnectionError, idempotent: bool, rules: VendorRules
) -> bool:
    """Whether the attempt that failed with ``error`` may be repeated (see above)."""
    if isinstance(error, APIStatusError):
        if rules.forbids_retry(error):
            return False  # the server says repeating it will not help
        if error.status in _NOT_PROCESSED:
            return True
        return idempotent and (error.status in _RETRY_STATUSES or error.status >= 500)
    return idempotent or not error.sent


def connection_error(
    exc: aiohttp.ClientError | TimeoutError, method: str, url: str, *, sent: bool | None = None
) -> APIConnectionError:
    """The typed error for a transport failure; ``sent`` is guessed from its kind.

    Only a failure to connect proves the request never left; anything later
    may have reached the server.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"Timed out connecting to {url}: {exc}", sent=bool(sent))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(f"Cannot connect to {url}: {exc}", sent=bool(sent))
    if isinstance(exc, TimeoutError):
        detail = str(exc) or "no answer within the timeout"  # str(TimeoutError()) is ""
        return APITimeoutError(f"{method} {url} timed out: {detail}", sent=sent is not False)
    return APIConnectionError(f"{method} {url} failed: {exc!r}", sent=sent is not False)


def describe(error: APIStatusError | APIConnectionError) -> str:
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status}{' ' + error.code if error.code else ''}"
    return type(error).__name__
