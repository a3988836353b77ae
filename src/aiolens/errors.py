"""One exception tree for the whole library.

Every exception aiolens raises on purpose derives from :class:`AiolensError`.
Server answers become :class:`APIStatusError` (a subclass per HTTP status);
transport failures become :class:`APIConnectionError` (with
:class:`APITimeoutError` for timeouts). Exception texts never contain an API
key: messages pass through :func:`aiolens._core.redact.redact` before they are
stored.
"""

from __future__ import annotations

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
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PoseFrameError",
    "ProtocolError",
    "QueryTimeoutError",
    "RateLimitError",
    "RejectedRequestError",
    "StreamResumeError",
    "UnprocessableEntityError",
    "make_status_error",
    "parse_error_body",
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
    """The client was built with missing or contradictory settings (no API key ...)."""


class APIError(AiolensError):
    """Something went wrong talking to a service.

    Attributes:
        retryable: whether repeating the same call may succeed.
    """

    retryable: bool = False

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)


class APIConnectionError(APIError):
    """The request did not get an answer: connect failure, reset, closed socket.

    Attributes:
        sent: ``True`` when the request may have reached the server (its outcome is
            unknown), ``False`` when it certainly did not.
    """

    retryable = True

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
        self.unsent = list(unsent)


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
        self.details = dict(details or {})

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
        self.problems = list(problems)


class ProtocolError(APIError):
    """The server sent something that does not follow the protocol."""


class StreamResumeError(APIError):
    """An event stream dropped and could not be resumed without losing events."""


class APIResponseValidationError(APIError):
    """A successful response whose body does not have the documented shape.

    Attributes:
        status: the HTTP status.
        body: the raw body text (secrets redacted).
    """

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = redact(body)


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
        self.errors = list(errors)
        self.code = self.errors[0].code if self.errors else ""
        self.codes = [e.code for e in self.errors]
        self.error_uid = next((e.error_uid for e in self.errors if e.error_uid), None)
        self.details: Mapping[str, Any] = self.errors[0].details if self.errors else {}
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = redact(body)
        flagged = [e.retryable for e in self.errors if e.retryable is not None]
        self.retryable = flagged[0] if flagged else _status_retryable(status)

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


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _status_retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class _Envelope(msgspec.Struct):
    errors: list[ErrorItem] | None = None
    error: ErrorItem | str | None = None
    detail: Any = None
    message: str | None = None
    error_messages: list[str] | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)


def parse_error_body(body: bytes) -> list[ErrorItem]:
    """Read the errors out of any of the documented error envelopes.

    Handles Archetype's ``{"errors": [...]}``, the legacy ``{"detail": ...}``,
    the ``{"error": {code, message, retryable, details}}`` shape (Archetype's
    older docs and Kynasmith's only one), ``{"error_messages": [...]}`` from
    register, and a bare ``{"message": ...}``.

    Returns:
        The errors found, or an empty list when the body is not one of those
        shapes (the caller keeps the raw text).
    """
    try:
        env = _envelope_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
    if env.errors:
        return list(env.errors)
    if isinstance(env.error, ErrorItem):
        return [env.error]
    if isinstance(env.error, str):
        return [ErrorItem(code="error", message=env.error)]
    if env.detail is not None:
        if isinstance(env.detail, str):
            return [ErrorItem(message=env.detail)]
        if isinstance(env.detail, list):  # FastAPI validation errors
            return [
                ErrorItem(code="validation_error", message=str(d.get("msg", d)))
                if isinstance(d, dict)
                else ErrorItem(message=str(d))
                for d in env.detail
            ]
        return [ErrorItem(message=str(env.detail))]
    if env.error_messages:
        return [ErrorItem(code="invalid", message=m) for m in env.error_messages]
    if env.message:
        return [ErrorItem(message=env.message)]
    return []


def make_status_error(
    status: int,
    body: bytes,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    cls: type[APIStatusError] | None = None,
) -> APIStatusError:
    """Build the typed exception for an error answer.

    Args:
        status: the HTTP status.
        body: the raw response body.
        request_id: the ``X-Request-ID`` header, if any.
        retry_after: seconds from ``Retry-After``, if any.
        cls: force a class (used for 2xx answers that report errors).
    """
    errors = parse_error_body(body)
    text = body.decode("utf-8", "replace")
    if errors:
        message = "; ".join(e.message or e.code for e in errors)
    else:
        message = text[:500].strip() or f"HTTP {status} with an empty body"
    if cls is None:
        cls = _BY_STATUS.get(status, InternalServerError if status >= 500 else APIStatusError)
    return cls(
        message,
        status=status,
        errors=errors,
        request_id=request_id,
        retry_after=retry_after,
        body=text,
    )
