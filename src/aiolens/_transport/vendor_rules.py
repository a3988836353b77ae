"""What the transport asks a vendor: how its error answers read, which 2xx bodies
are refusals, and when the server forbids a retry.

The transport (:mod:`aiolens._transport.http`, :mod:`aiolens._transport.ws`)
knows HTTP, not vendors. Each vendor package supplies a :class:`VendorRules`
(``aiolens.archetype.error_rules``, ``aiolens.kynasmith.error_rules``) that its
client hands to the transport it builds. :data:`NEUTRAL_RULES`, the default, reads
an error answer by its status alone: the body's text becomes the message.

The helpers below (:func:`error_item`, :func:`retry_after_in_details`) are the
building blocks vendor rules share: a lenient reading of one error object and the
``details`` wait hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from aiolens._core.redact import redact
from aiolens.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ErrorItem,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    _redacted,
)

__all__ = [
    "NEUTRAL_RULES",
    "VendorRules",
    "error_item",
    "error_items",
    "retry_after_in_details",
    "status_error_class",
]

_BY_STATUS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The :class:`APIStatusError` subclass for an HTTP status (5xx: ``InternalServerError``)."""
    return _BY_STATUS.get(status, InternalServerError if status >= 500 else APIStatusError)


class VendorRules:
    """A vendor's reading of its answers; this base class is the neutral reading.

    Subclasses override :meth:`parse_errors` (the vendor's error envelopes, with
    any ``retryable`` flag that :meth:`forbids_retry` honours) and :meth:`rejects`
    (2xx bodies that report a failure). :meth:`status_error` builds
    the typed exception from those and is the same for every vendor.

    Instances are stateless and shared: one per vendor.
    """

    __slots__ = ()

    def parse_errors(self, body: bytes) -> list[ErrorItem]:
        """The errors an error body lists (texts redacted); ``[]`` for an unknown shape.

        Neutral: no envelope is known, so always ``[]`` (the raw text is kept).
        """
        return []

    def rejects(self, body: bytes) -> bool:
        """Whether a 2xx body reports that the request failed. Neutral: never."""
        return False

    def forbids_retry(self, error: APIStatusError) -> bool:
        """Whether the server said repeating the request will not help: one of the
        errors :meth:`parse_errors` read is flagged ``retryable: false`` (the
        neutral reading finds no errors, so never)."""
        return any(e.retryable is False for e in error.errors)

    def retry_after(self, errors: Sequence[ErrorItem]) -> float | None:
        """Seconds to wait that the body asked for (used without a ``Retry-After``)."""
        return retry_after_in_details(errors)

    def status_error(
        self,
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
            retry_after: seconds from ``Retry-After``, if any; otherwise what
                the body asks for (:meth:`retry_after`).
            cls: force a class (used for 2xx answers that report errors);
                by default the one for ``status`` (:func:`status_error_class`).
        """
        errors = self.parse_errors(body)
        if retry_after is None:
            retry_after = self.retry_after(errors)
        text = body.decode("utf-8", "replace")
        if errors:
            message = "; ".join(e.message or e.code for e in errors)
        else:
            message = text[:500].strip() or f"HTTP {status} with an empty body"
        return (cls or status_error_class(status))(
            message,
            status=status,
            errors=errors,
            request_id=request_id,
            retry_after=retry_after,
            body=text,
        )


NEUTRAL_RULES: Final = VendorRules()
"""Errors read by status code alone; no 2xx rejections; no retry flag."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def error_item(obj: Any, code: str = "") -> ErrorItem:
    """One :class:`ErrorItem` from whatever a server put in an error list.

    Reads ``code``, ``message`` (or ``msg`` / ``detail``), ``suggestion``,
    ``error_uid``, ``retryable`` and ``details``; ``code`` is used when the
    object has none. Lenient on purpose: a ``null`` or a number where a string
    belongs must not cost the user the whole error. Texts are redacted.
    """
    if not isinstance(obj, dict):
        return ErrorItem(code=code, message=redact(_text(obj)))
    message = obj.get("message")
    if message is None:
        message = obj.get("msg", obj.get("detail"))
    retryable = obj.get("retryable")
    details = obj.get("details")
    suggestion = obj.get("suggestion")
    error_uid = obj.get("error_uid")
    return ErrorItem(
        code=_text(obj.get("code")) or code,
        message=redact(_text(message)),
        suggestion=redact(_text(suggestion)) if suggestion is not None else None,
        error_uid=_text(error_uid) if error_uid is not None else None,
        retryable=retryable if isinstance(retryable, bool) else None,
        details=_redacted(details) if isinstance(details, dict) else {},
    )


def error_items(value: Any, code: str = "") -> list[ErrorItem]:
    """:func:`error_item` for each entry of a list (a single object counts as one)."""
    entries: Iterable[Any] = value if isinstance(value, list) else [value]
    return [error_item(e, code) for e in entries]


def retry_after_in_details(errors: Sequence[ErrorItem]) -> float | None:
    """Seconds to wait from an error's ``details`` (``retry_after`` or ``retry_after_seconds``)."""
    for error in errors:
        for key in ("retry_after", "retry_after_seconds"):
            value = error.details.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
    return None
