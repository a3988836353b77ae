"""The vendor rules the transport asks: error envelopes, 2xx refusals, retry flags."""

from __future__ import annotations

import msgspec
import pytest

from aiolens._transport.vendor_rules import NEUTRAL_RULES
from aiolens.archetype.error_rules import ARCHETYPE_RULES
from aiolens.errors import (
    APIStatusError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RejectedRequestError,
)
from aiolens.kynasmith.error_rules import KYNASMITH_RULES

KYNASMITH_BODY = msgspec.json.encode(
    {
        "error": {
            "code": "contract_version_unsupported",
            "message": "no such major",
            "retryable": False,
            "details": {"supported_contract_major": 1},
        }
    }
)
LENS_BODY = msgspec.json.encode(
    {"errors": [{"code": "invalid_file_type", "message": "bad type", "error_uid": "err-1"}]}
)


def test_the_neutral_rules_read_an_error_by_its_status_alone() -> None:
    error = NEUTRAL_RULES.status_error(404, LENS_BODY, request_id="req-1")
    assert type(error) is NotFoundError
    assert error.errors == [] and error.code == ""
    assert error.message == LENS_BODY.decode() and error.request_id == "req-1"
    assert type(NEUTRAL_RULES.status_error(502, b"")) is InternalServerError
    assert NEUTRAL_RULES.status_error(502, b"").message == "HTTP 502 with an empty body"
    assert not NEUTRAL_RULES.rejects(b'{"is_valid": false}')
    assert not NEUTRAL_RULES.forbids_retry(error)


def test_the_lens_rules_read_every_lens_envelope() -> None:
    error = ARCHETYPE_RULES.status_error(400, LENS_BODY)
    assert (error.code, error.error_uid, error.message) == (
        "invalid_file_type",
        "err-1",
        "bad type",
    )
    assert ARCHETYPE_RULES.parse_errors(b'{"detail": "Not authenticated"}')[0].message == (
        "Not authenticated"
    )
    older = ARCHETYPE_RULES.status_error(
        429, b'{"error": {"code": "rate_limited", "details": {"retry_after": 60}}}'
    )
    assert type(older) is RateLimitError and older.retry_after == 60
    assert ARCHETYPE_RULES.rejects(b'{"is_valid": false, "error_messages": ["x"]}')
    assert ARCHETYPE_RULES.rejects(b'{"errors": [{"code": "x"}]}')
    assert not ARCHETYPE_RULES.rejects(b'{"errors": [], "session_id": "lsn-1"}')
    refused = ARCHETYPE_RULES.status_error(
        200, b'{"is_valid": false, "error_messages": ["bad"]}', cls=RejectedRequestError
    )
    assert type(refused) is RejectedRequestError and refused.codes == ["invalid"]


def test_the_kynasmith_rules_read_its_envelope_and_its_retry_flag() -> None:
    error = KYNASMITH_RULES.status_error(409, KYNASMITH_BODY)
    assert error.code == "contract_version_unsupported"
    assert error.details == {"supported_contract_major": 1}
    assert error.retryable is False and KYNASMITH_RULES.forbids_retry(error)
    flagged = KYNASMITH_RULES.status_error(
        503,
        b'{"error": {"code": "busy", "retryable": true, "details": {"retry_after_seconds": 2}}}',
    )
    assert not KYNASMITH_RULES.forbids_retry(flagged) and flagged.retry_after == 2
    assert not KYNASMITH_RULES.rejects(b'{"errors": [{"code": "x"}]}')  # never a refusal
    # Another vendor's envelope is an unknown shape: kept as text.
    assert KYNASMITH_RULES.parse_errors(LENS_BODY) == []


def test_the_old_parsers_in_errors_still_work_with_a_warning() -> None:
    import aiolens.errors

    with pytest.warns(DeprecationWarning, match="error_rules"):
        parse = aiolens.errors.parse_error_body
    assert parse(LENS_BODY)[0].code == "invalid_file_type"
    with pytest.warns(DeprecationWarning, match="error_rules"):
        from aiolens.errors import make_status_error
    error = make_status_error(409, KYNASMITH_BODY)
    assert isinstance(error, APIStatusError) and error.code == "contract_version_unsupported"
