"""The Lens API's error rules: its error envelopes and its 2xx refusals.

The transport calls them through :class:`~aiolens._transport.vendor_rules.VendorRules`
(``docs/protocol-notes.md``, "Errors").
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from aiolens._transport.vendor_rules import VendorRules, error_item, error_items
from aiolens.errors import ErrorItem

__all__ = ["ARCHETYPE_RULES", "ArchetypeRules", "parse_error_body"]


def parse_error_body(body: bytes) -> list[ErrorItem]:
    """Read the errors out of any of the Lens API's documented error envelopes.

    Handles ``{"errors": [...]}``, the legacy ``{"detail": ...}``, the older
    docs' ``{"error": {code, message, retryable, details}}`` (Kynasmith's only
    shape, read the same way), ``{"error_messages": [...]}`` from register, and
    a bare ``{"message": ...}``. Fields of an unexpected type (``null``,
    numbers) are tolerated. Messages, suggestions and details are redacted.

    Returns:
        The errors found, or an empty list when the body is not one of those
        shapes (the caller keeps the raw text).
    """
    try:
        env = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return []
    if not isinstance(env, dict):
        return []
    errors = env.get("errors")
    if errors:
        return error_items(errors)
    error = env.get("error")
    if error:
        return [error_item(error, "error")]
    detail = env.get("detail")
    if detail is not None:
        if isinstance(detail, list):  # FastAPI validation errors
            return error_items(detail, "validation_error")
        return [error_item(detail)]
    messages = env.get("error_messages")
    if messages:
        return error_items(messages, "invalid")
    if env.get("message"):
        return [error_item(env)]
    return []


class _Rejection(msgspec.Struct):
    is_valid: bool | None = None
    errors: list[Any] | None = None


_rejection = msgspec.json.Decoder(_Rejection)


class ArchetypeRules(VendorRules):
    """Lens API rules: its envelopes; a 2xx body with ``is_valid: false`` or a
    non-empty ``errors`` is a refusal (raised as ``RejectedRequestError``)."""

    __slots__ = ()

    def parse_errors(self, body: bytes) -> list[ErrorItem]:
        return parse_error_body(body)

    def rejects(self, body: bytes) -> bool:
        # A cheap byte scan first: most bodies carry neither marker.
        if body[:1] != b"{" or (b'"is_valid"' not in body and b'"errors"' not in body):
            return False
        try:
            info = _rejection.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        return info.is_valid is False or bool(info.errors)


ARCHETYPE_RULES: Final = ArchetypeRules()
