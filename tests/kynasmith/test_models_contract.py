"""Both readings of the Kynasmith protocol checked field by field against the vendor's.

aiolens's client models (:mod:`aiolens.kynasmith.models`) and the emulator's
own wire models (:mod:`aiolens.emulator.kynasmith_wire`) are each compared
with ``kynasmith-contracts`` 0.1.0 (realtime messages, frames, events, errors)
and the vendor SDK's REST models. Every difference must have a reason below
(the same reasons are in ``docs/protocol-notes.md``); a new difference, or a
listed one that no longer exists, fails the test.

The rules depend on direction. What a side *sends* may be stricter than the
contract (always sending an optional field) but must not be looser unless a
local check catches it; what a side *receives* must accept everything the
contract allows, and may be looser only where the reason says why.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from aiolens.emulator import kynasmith_wire as wire
from aiolens.kynasmith import models as client
from tests.kynasmith.contract_fields import Difference, compare
from tests.kynasmith_contract import Vendor, load

OPEN_SET = "open value set: typed str so a new server value never breaks decoding"
DATETIME = "ISO-8601 string kept as sent (datetime.fromisoformat reads it)"
CHECKED = "checked before sending: validate_frame / frame_problems"
CHECKED_SERVER = "not checked on receipt: the server's counts are trusted"
SENT_ALWAYS = "sent every time (as the SDK's model_dump does), a stricter sender"
EXTRA = "an extra field the vendor SDK ignores"

CLIENT_REASONS: dict[Difference, str] = {
    ("PoseFrame", "confidence", "required"): "defaults to 1.0 when built; always encoded",
    ("PoseFrame", "pose_schema", "required"): "defaults to the only valid value; always encoded",
    ("PoseFrame", "frame_seq", "required"): "None means: the session numbers it on send",
    ("PoseFrame", "frame_seq", "type"): "one struct for PoseFrameV1 and RealtimePoseFrameV1",
    ("ErrorDetail", "message", "required"): "an error is reported even when malformed",
    ("ErrorDetail", "retryable", "required"): "an error is reported even when malformed",
    ("EventBatch", "events", "type"): "events decoded one by one: an unknown type survives",
    ("AccessToken", "expires_in_seconds", "type"): "float accepts the contract's integers",
    ("AccessToken", "scopes", "extra"): "the emulator echoes the granted scopes; optional",
    ("MoveSpec", "organization_id", "required"): "absent from the public-docs variant (§B.8)",
    ("MoveSpec", "organization_id", "type"): "absent from the public-docs variant (§B.8)",
    ("MoveSpec", "star_count", "extra"): "the public-docs variant's field (§B.8)",
    ("MoveSpec", "updated_by", "extra"): "the first-party variant's field (§B.8)",
}
"""Client-model differences that are neither an open value set, a datetime nor a frame check."""

CLIENT_SENDS = frozenset({"Landmark", "FrameSource", "PoseFrame", "FrameBatch"})


def _client_pairs(vendor: Vendor) -> dict[str, tuple[type[msgspec.Struct], Any]]:
    c, s = vendor.contracts, vendor.sdk_models
    return {
        "Landmark": (client.Landmark, c.PoseLandmark),
        "FrameSource": (client.FrameSource, c.PoseSource),
        "PoseFrame": (client.PoseFrame, c.RealtimePoseFrameV1),
        "ShapePayload": (client.ShapePayload, c.ShapeEventPayload),
        "CompletedPayload": (client.CompletedPayload, c.CompletedEventPayload),
        "InterruptedPayload": (client.InterruptedPayload, c.models.InterruptedEventPayload),
        "FeedbackPayload": (client.FeedbackPayload, c.FeedbackEventPayload),
        "ShapeEnter": (client.ShapeEnter, c.ShapeEnterEvent),
        "ShapeExit": (client.ShapeExit, c.ShapeExitEvent),
        "EventCompleted": (client.EventCompleted, c.EventCompletedEvent),
        "EventInterrupted": (client.EventInterrupted, c.EventInterruptedEvent),
        "Feedback": (client.Feedback, c.FeedbackEvent),
        "ErrorDetail": (client.ErrorDetail, c.PublicErrorDetail),
        "FrameBatch": (client.FrameBatch, c.FrameBatchMessageV1),
        "Finalize": (client.Finalize, c.FinalizeMessageV1),
        "Cancel": (client.Cancel, c.CancelMessageV1),
        "Ping": (client.Ping, c.PingMessageV1),
        "Pong": (client.Pong, c.PongMessageV1),
        "FrameAck": (client.FrameAck, c.FrameAckMessageV1),
        "EventBatch": (client.EventBatch, c.EventBatchMessageV1),
        "SessionUpdate": (client.SessionUpdate, c.SessionUpdateMessageV1),
        "SessionDone": (client.SessionDone, c.SessionDoneMessageV1),
        "ErrorMessage": (client.ErrorMessage, c.RealtimeErrorMessageV1),
        "AccessToken": (client.AccessToken, s.AccessToken),
        "DetectionSessionCreated": (client.DetectionSessionCreated, s.DetectionSession),
        "DetectionSessionRecord": (client.DetectionSessionRecord, s.DetectionSessionRecord),
        "MoveSpec": (client.MoveSpec, s.MoveSpec),
        "MoveSpecDraft": (client.MoveSpecDraft, s.MoveSpecDraft),
        "MoveSpecVersion": (client.MoveSpecVersion, s.MoveSpecVersion),
        "ValidationIssue": (client.ValidationIssue, s.MoveSpecValidationIssue),
        "ValidationResult": (client.ValidationResult, s.MoveSpecValidationResult),
    }


def _emulator_pairs(vendor: Vendor) -> dict[str, tuple[type[msgspec.Struct], Any]]:
    c, s = vendor.contracts, vendor.sdk_models
    return {
        "PoseLandmark": (wire.PoseLandmark, c.PoseLandmark),
        "PoseSource": (wire.PoseSource, c.PoseSource),
        "PoseFrame": (wire.PoseFrame, c.RealtimePoseFrameV1),
        "ShapePayload": (wire.ShapePayload, c.ShapeEventPayload),
        "CompletedPayload": (wire.CompletedPayload, c.CompletedEventPayload),
        "InterruptedPayload": (wire.InterruptedPayload, c.models.InterruptedEventPayload),
        "FeedbackPayload": (wire.FeedbackPayload, c.FeedbackEventPayload),
        "ShapeEnter": (wire.ShapeEnter, c.ShapeEnterEvent),
        "ShapeExit": (wire.ShapeExit, c.ShapeExitEvent),
        "EventCompleted": (wire.EventCompleted, c.EventCompletedEvent),
        "EventInterrupted": (wire.EventInterrupted, c.EventInterruptedEvent),
        "Feedback": (wire.Feedback, c.FeedbackEvent),
        "ErrorBody": (wire.ErrorBody, c.PublicErrorDetail),
        "ErrorEnvelope": (wire.ErrorEnvelope, c.PublicErrorEnvelope),
        "FrameBatchMessage": (wire.FrameBatchMessage, c.FrameBatchMessageV1),
        "FinalizeMessage": (wire.FinalizeMessage, c.FinalizeMessageV1),
        "CancelMessage": (wire.CancelMessage, c.CancelMessageV1),
        "PingMessage": (wire.PingMessage, c.PingMessageV1),
        "PongMessage": (wire.PongMessage, c.PongMessageV1),
        "FrameAckMessage": (wire.FrameAckMessage, c.FrameAckMessageV1),
        "EventBatchMessage": (wire.EventBatchMessage, c.EventBatchMessageV1),
        "SessionUpdateMessage": (wire.SessionUpdateMessage, c.SessionUpdateMessageV1),
        "SessionDoneMessage": (wire.SessionDoneMessage, c.SessionDoneMessageV1),
        "ErrorMessage": (wire.ErrorMessage, c.RealtimeErrorMessageV1),
        "AccessTokenBody": (wire.AccessTokenBody, s.AccessToken),
        "SessionCreatedBody": (wire.SessionCreatedBody, s.DetectionSession),
        "SessionRecordBody": (wire.SessionRecordBody, s.DetectionSessionRecord),
        "MoveSpecBody": (wire.MoveSpecBody, s.MoveSpec),
        "DraftBody": (wire.DraftBody, s.MoveSpecDraft),
        "VersionBody": (wire.VersionBody, s.MoveSpecVersion),
        "ValidationIssue": (wire.ValidationIssue, s.MoveSpecValidationIssue),
        "ValidationResultBody": (wire.ValidationResultBody, s.MoveSpecValidationResult),
    }


EMULATOR_RECEIVES = frozenset({"PoseLandmark", "PoseSource", "PoseFrame", "FrameBatchMessage"})


def _generic(
    pair: str, aspect: str, ours: Any, theirs: Any, *, sends: bool, receives: bool
) -> str | None:
    """The reason shared by many fields, or None."""
    if aspect == "constraints":
        return CHECKED if sends or receives else CHECKED_SERVER
    if aspect == "type":
        if sorted(theirs.replace("datetime", "str").split("|")) == sorted(ours.split("|")):
            return DATETIME
        if theirs.startswith("literal(") and ours == "str":
            return CHECKED if sends or receives else OPEN_SET
        if ours == "list[raw]" and receives:
            return "each frame decoded alone, so one bad frame is rejected by index"
    if aspect == "required" and ours is True and theirs is False and not receives:
        return SENT_ALWAYS
    return None


@pytest.fixture(scope="module")
def vendor() -> Vendor:
    loaded = load()
    if isinstance(loaded, str):
        pytest.skip(loaded)
    return loaded


def _unexplained(found: dict[Difference, tuple[Any, Any]], explain: Any) -> list[str]:
    return [f"{key}: ours {ours} / contract {theirs}" for key, (ours, theirs) in found.items()
            if explain(key, ours, theirs) is None]  # fmt: skip


def test_client_models_match_the_contract_field_by_field(vendor: Vendor) -> None:
    found = compare(_client_pairs(vendor))

    def explain(key: Difference, ours: Any, theirs: Any) -> str | None:
        pair, _, aspect = key
        return CLIENT_REASONS.get(key) or _generic(
            pair, aspect, ours, theirs, sends=pair in CLIENT_SENDS, receives=False
        )

    assert _unexplained(found, explain) == []
    stale = [key for key in CLIENT_REASONS if key not in found]
    assert stale == [], "these differences are gone: drop their reasons"
    shape = {key for key in found if key[2] in ("missing", "required", "extra")}
    assert shape == {key for key in CLIENT_REASONS if key[2] in ("missing", "required", "extra")}


def test_emulator_models_match_the_contract_field_by_field(vendor: Vendor) -> None:
    found = compare(_emulator_pairs(vendor))
    extras = {("AccessTokenBody", "scopes", "extra"), ("MoveSpecBody", "star_count", "extra")}

    def explain(key: Difference, ours: Any, theirs: Any) -> str | None:
        pair, _, aspect = key
        if key in extras:
            return EXTRA
        return _generic(pair, aspect, ours, theirs, sends=False, receives=pair in EMULATOR_RECEIVES)

    assert _unexplained(found, explain) == []
    received = {key for key in found if key[0] in EMULATOR_RECEIVES and key[2] == "required"}
    assert received == set(), "what the emulator receives is required exactly as the contract says"


def test_messages_the_contract_allows_are_accepted_and_the_rest_refused(vendor: Vendor) -> None:
    """The cases the issue found: frame_batch / event_batch without a list; bad frames."""
    c = vendor.contracts
    assert c.FrameBatchMessageV1.model_validate({"type": "frame_batch", "batch_seq": 1})
    batch = client.server_message_decoder.decode(b'{"type": "event_batch", "batch_seq": 1}')
    assert isinstance(batch, client.EventBatch) and batch.events == []
    sent = client.FrameBatch(batch_seq=1)
    assert c.FrameBatchMessageV1.model_validate_json(client.encoder.encode(sent)).frames == []
    from aiolens.kynasmith.synthetic import generate_squats

    frame = generate_squats(0)[0]
    webcam = msgspec.structs.replace(frame, source=client.FrameSource("webcam", 640, 480))
    assert any("source.kind" in p for p in client.validate_frame(webcam))
    with pytest.raises(Exception, match="kind"):
        c.RealtimePoseFrameV1.model_validate_json(client.encoder.encode(webcam))
    assert client.validate_frame(frame) == []
    assert c.RealtimePoseFrameV1.model_validate_json(client.encoder.encode(frame))
