"""One exception tree for the whole library.

Every exception aiolens raises on purpose derives from :class:`AiolensError`.
Server answers become :class:`APIStatusError` (a subclass per HTTP status);
transport failures become :class:`APIConnectionError` (with
:class:`APITimeoutError` for timeouts). Exception texts never contain an API
key: messages pass through :func:`aiolens._core.redact.redact` before they are
stored.

This module holds the tree only. How a server's error body becomes one of these
exceptions is a vendor rule (:mod:`aiolens._transport.vendor_rules`, with each
vendor's ``error_rules`` module).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from aiolens._core.redact import redact

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AgentQueryError",
    "AgentRunError",
    "AiolensError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ConnectionLostError",
    "DetectionError",
    "ErrorItem",
    "EventError",
    "InternalServerError",
    "MessageTooLargeError",
    "MissingExtraError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PoseFrameError",
    "PossibleSession",
    "ProtocolError",
    "QueryTimeoutError",
    "RateLimitError",
    "RejectedRequestError",
    "StreamResumeError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
]


class ErrorItem(msgspec.Struct, frozen=True):
    """One error reported by a server, whatever envelope carried it.

    Attributes:
        code: machine-readable code (``invalid_file_type``, ``rate_limited`` ...),
            or ``""`` when the server gave none.
        message: the server's human-readable message.
        suggestion: Archetype's optional hint on what to do.
        error_uid: Archetype's ``err-...`` id to quote to support.
        retryable: Kynasmith's ``retryable`` flag, when the server sent one.
        details: Kynasmith's ``details`` object (or Archetype's legacy one).
    """

    code: str = ""
    message: str = ""
    suggestion: str | None = None
    error_uid: str | None = None
    retryable: bool | None = None
    details: Mapping[str, Any] = msgspec.field(default_factory=dict)


class AiolensError(Exception):
    """Base class of every exception aiolens raises on purpose."""


class ConfigurationError(AiolensError, ValueError):
    """A setting or argument has a bad value, found before anything was sent: no API
    key, an option out of range (the message names it), a config that is not a mapping."""


class MissingExtraError(ConfigurationError, ImportError):
    """An optional part of aiolens was used without the extra that installs it.

    The message names the package and the command that installs it
    (``pip install 'aiolens[emulator]'``). It is an :class:`ImportError` too, so
    ``except ImportError`` around an optional import keeps working.
    """


class APIError(AiolensError):
    """Something went wrong talking to a service.

    Attributes:
        retryable: whether repeating the same call may succeed.
    """

    retryable: bool = False

    def __init__(self, message: str) -> None:
        self.message: str = redact(message)
        super().__init__(self.message)


class PossibleSession(msgspec.Struct, frozen=True):
    """A session a create call may have made although its answer never came.

    Lens ``sessions.create`` has no idempotency key: after a timeout or a reset
    the server may have made the session (it runs, and counts against the quota)
    without the caller learning its id. Find candidates with
    ``client.unowned_sessions(lens_id, created_within=possible.elapsed())``.

    Attributes:
        lens_id: the lens of the session asked for.
        started_at: when the call began (``time.time()``), for people.
        started_monotonic: the same moment on :func:`time.monotonic`.
    """

    lens_id: str
    started_at: float
    started_monotonic: float

    def elapsed(self) -> float:
        """Seconds since the call began (a session made by it is at most this old)."""
        return time.monotonic() - self.started_monotonic


class APIConnectionError(APIError):
    """The request did not get an answer: connect failure, reset, closed socket.

    Attributes:
        sent: ``True`` when the request may have reached the server (its outcome is
            unknown), ``False`` when it certainly did not.
        possible_session: for a Lens session create that was sent, the session it
            may have made (see :class:`PossibleSession`); ``None`` otherwise.
    """

    retryable = True
    possible_session: PossibleSession | None = None

    def __init__(self, message: str = "Connection error.", *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class APITimeoutError(APIConnectionError):
    """No answer arrived within the timeout."""

    def __init__(self, message: str = "Request timed out.", *, sent: bool = True) -> None:
        super().__init__(message, sent=sent)


class ConnectionLostError(APIConnectionError):
    """A realtime connection closed while requests were waiting for replies.

    The server may or may not have acted on them: the outcome is unknown.

    Attributes:
        close_code: the WebSocket close code, when there was one.
        unsent: messages that were queued but never written to the socket.
    """

    def __init__(
        self,
        message: str = "Connection lost; the outcome of pending requests is unknown.",
        *,
        close_code: int | None = None,
        unsent: Sequence[Any] = (),
    ) -> None:
        super().__init__(message, sent=True)
        self.close_code = close_code
        self.unsent: list[Any] = list(unsent)


class QueryTimeoutError(APITimeoutError):
    """The server gave up on a ``model.query`` ("Response timed out for query")."""


class EventError(APIError):
    """A realtime session answered a request with an error message.

    Attributes:
        event_type: the request's ``type``.
        reply: the server's reply object (secrets redacted from ``message``).
    """

    def __init__(self, message: str, *, event_type: str, reply: Any = None) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.reply = reply


class DetectionError(APIError):
    """A Kynasmith realtime ``error`` message.

    Attributes:
        code: the error code (``session_terminal``, ``validation_error`` ...).
        details: the error's ``details``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PoseFrameError(AiolensError, ValueError):
    """A pose frame failed local validation before sending (no server round trip).

    Attributes:
        index: the frame's position in the list given to ``send``.
        problems: what is wrong with it.
    """

    def __init__(self, index: int, problems: Sequence[str]) -> None:
        super().__init__(f"frame {index} is invalid: {'; '.join(problems)}")
        self.index = index
        self.problems: list[str] = list(problems)


class MessageTooLargeError(AiolensError, ValueError):
    """A realtime message is larger than the connection's limit; it was not sent.

    Sending it would make the server close the socket (1009) and fail every request
    waiting on it, so it is refused locally; the connection stays usable.

    Attributes:
        size: the encoded message's size in bytes.
        limit: the largest size allowed (``max_message_size``).
    """

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ProtocolError(APIError):
    """The server sent something that does not follow the protocol.

    Attributes:
        raw: the offending message as received (decoded JSON or text; secrets
            redacted), when there is one.
    """

    def __init__(self, message: str, *, raw: Any = None) -> None:
        super().__init__(message)
        self.raw: Any = _redacted(raw)


class StreamResumeError(APIError):
    """An event stream dropped and could not be resumed without losing events."""


class AgentRunError(APIError):
    """An agent instance, eval or optimization ended ``failed`` (raised by ``wait()``).

    Attributes:
        code: the server's error code, ``""`` when it gave none.
        record: the final record (its ``error`` holds the server's explanation).
    """

    def __init__(self, message: str, *, code: str = "", record: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.record = record


class AgentQueryError(APIError):
    """A serving instance answered a window with ``status: "failed"``.

    Attributes:
        code: the server's error code (``invalid_input`` ...), ``""`` when none.
        reply: the whole reply frame.
    """

    def __init__(self, message: str, *, code: str = "", reply: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.reply = reply


class WaitTimeoutError(AiolensError, TimeoutError):
    """``wait()`` reached its deadline before the record reached a terminal status.

    The work goes on server-side; cancel it or wait again.

    Attributes:
        record: the last record seen.
    """

    def __init__(self, message: str, *, record: Any = None) -> None:
        super().__init__(redact(message))
        self.record = record


class APIResponseValidationError(APIError):
    """A successful response whose body does not have the documented shape.

    Attributes:
        status: the HTTP status.
        body: the raw body text (secrets redacted).
    """

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body: str = redact(body)


class APIStatusError(APIError):
    """The server answered with an error.

    Attributes:
        status: the HTTP status code.
        errors: every error the body listed (one or more).
        code: the first error's code (``""`` if none).
        codes: all codes, in order.
        request_id: the ``X-Request-ID`` response header, when present.
        error_uid: the first Archetype ``err-...`` id, when present.
        retry_after: seconds the server asked us to wait, when it said so.
        body: the raw body text (secrets redacted), for unknown shapes.
        details: the first error's details.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        errors: Sequence[ErrorItem] = (),
        request_id: str | None = None,
        retry_after: float | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors: list[ErrorItem] = list(errors)
        self.code: str = self.errors[0].code if self.errors else ""
        self.codes: list[str] = [e.code for e in self.errors]
        self.error_uid: str | None = next((e.error_uid for e in self.errors if e.error_uid), None)
        self.details: Mapping[str, Any] = self.errors[0].details if self.errors else {}
        self.request_id = request_id
        self.retry_after = retry_after
        self.body: str = redact(body)
        flagged = [e.retryable for e in self.errors if e.retryable is not None]
        self.retryable: bool = flagged[0] if flagged else _status_retryable(status)

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.code:
            parts.append(self.code)
        text = f"{' '.join(parts)}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        elif self.error_uid:
            text += f" (error uid {self.error_uid})"
        return text


class RejectedRequestError(APIStatusError):
    """The server answered 2xx but reported errors (``is_valid: false`` or ``errors``)."""


class BadRequestError(APIStatusError):
    """HTTP 400."""


class AuthenticationError(APIStatusError):
    """HTTP 401: missing, invalid or expired credentials."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: valid credentials without the needed permission or scope."""


class NotFoundError(APIStatusError):
    """HTTP 404."""


class ConflictError(APIStatusError):
    """HTTP 409: the request conflicts with the resource's current state."""


class PayloadTooLargeError(APIStatusError):
    """HTTP 413."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422: the body was well-formed but invalid."""


class RateLimitError(APIStatusError):
    """HTTP 429: too many requests; see :attr:`retry_after`."""


class InternalServerError(APIStatusError):
    """HTTP 5xx."""


def _status_retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _redacted(value: Any) -> Any:
    """``value`` with every string inside it passed through :func:`redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def __getattr__(name: str) -> Any:
    """The error-body parsers that lived here (deprecated): they are vendor rules now.

    ``parse_error_body`` reads the Lens API's envelopes
    (:func:`aiolens.archetype.error_rules.parse_error_body`); ``make_status_error``
    builds the typed error with those rules (``ARCHETYPE_RULES.status_error``).
    Both still work, with a :class:`DeprecationWarning`.
    """
    if name in ("parse_error_body", "make_status_error"):
        import warnings

        from aiolens.archetype import error_rules  # deferred: it imports this module

        warnings.warn(
            f"aiolens.errors.{name} is deprecated: error bodies are read by each "
            "vendor's rules (aiolens.archetype.error_rules)",
            DeprecationWarning,
            stacklevel=2,
        )
        if name == "parse_error_body":
            return error_rules.parse_error_body
        return error_rules.ARCHETYPE_RULES.status_error
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
