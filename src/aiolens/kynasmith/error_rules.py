"""The Kynasmith API's error rules: its one error envelope and its ``retryable`` flag.

Every Kynasmith error answer is ``{"error": {code, message, retryable, details}}``
(``docs/protocol-notes.md``, "Errors"); a 2xx answer is never a refusal. The transport calls
these rules through :class:`~aiolens._transport.vendor_rules.VendorRules`.
"""

from __future__ import annotations

from typing import Final

import msgspec

from aiolens._transport.vendor_rules import VendorRules, error_item
from aiolens.errors import ErrorItem

__all__ = ["KYNASMITH_RULES", "KynasmithRules"]


class KynasmithRules(VendorRules):
    """Kynasmith rules: the ``error`` envelope; ``retryable: false`` forbids a retry."""

    __slots__ = ()

    def parse_errors(self, body: bytes) -> list[ErrorItem]:
        """The error of a ``{"error": {...}}`` body (texts redacted); ``[]`` otherwise."""
        try:
            env = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return []
        if isinstance(env, dict) and env.get("error"):
            return [error_item(env["error"], "error")]
        return []


KYNASMITH_RULES: Final = KynasmithRules()
