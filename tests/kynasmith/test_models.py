"""The Kynasmith contract models: frame validation, message round trips, tolerant decoding."""

from __future__ import annotations

import gc
import math
import typing
from typing import Any

import msgspec
import pytest

from aiolens.kynasmith.models import (
    CONTRACT_MAJOR_VERSION,
    INPUT_SCHEMA_VERSION,
    LANDMARK_NAMES,
    OUTPUT_SCHEMA_VERSION,
    SESSION_STATUSES,
    TERMINAL_STATUSES,
    AccessToken,
    Cancel,
    CompletedPayload,
    DetectionSessionCreated,
    DetectionSessionRecord,
    ErrorDetail,
    ErrorMessage,
    EventBatch,
    EventCompleted,
    EventInterrupted,
    Feedback,
    FeedbackPayload,
    Finalize,
    FrameAck,
    FrameBatch,
    FrameSource,
    InterruptedPayload,
    Landmark,
    MoveSpec,
    MoveSpecDraft,
    MoveSpecVersion,
    Ping,
    Pong,
    PoseFrame,
    SessionDone,
    SessionStatus,
    SessionUpdate,
    ShapeEnter,
    ShapeExit,
    ShapePayload,
    UnknownEvent,
    ValidationResult,
    client_message_decoder,
    decode_detection_event,
    encoder,
    server_message_decoder,
    validate_frame,
)
from aiolens.kynasmith.synthetic import bad_frame, generate_squats


def standing_frame(**changes: Any) -> PoseFrame:
    frame = generate_squats(0, seed=5)[0]
    return msgspec.structs.replace(frame, **changes) if changes else frame


def test_contract_constants() -> None:
    assert CONTRACT_MAJOR_VERSION == 1
    assert INPUT_SCHEMA_VERSION == "mediapipe_pose_landmarker/v1"
    assert OUTPUT_SCHEMA_VERSION == "kynasmith_detection_events/v1"


def test_landmark_names_are_the_33_mediapipe_names_in_index_order() -> None:
    assert len(LANDMARK_NAMES) == len(set(LANDMARK_NAMES)) == 33
    assert LANDMARK_NAMES[0] == "nose"
    assert LANDMARK_NAMES[11:13] == ("left_shoulder", "right_shoulder")
    assert LANDMARK_NAMES[23:29] == (
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    )
    assert LANDMARK_NAMES[32] == "right_foot_index"


def test_session_statuses() -> None:
    assert typing.get_args(SessionStatus) == SESSION_STATUSES
    assert {"completed", "failed", "cancelled"} == TERMINAL_STATUSES
    assert set(SESSION_STATUSES) > TERMINAL_STATUSES


def test_hot_structs_are_not_gc_tracked() -> None:
    frame = standing_frame()
    for obj in (frame, frame.landmarks[0], FrameBatch(1, [frame]), FrameAck(1, 1, 1), Ping()):
        assert not gc.is_tracked(obj), type(obj).__name__


# ---- validate_frame ---------------------------------------------------------------------


def test_valid_frame_has_no_problems() -> None:
    assert validate_frame(standing_frame()) == []


def test_landmark_order_is_free() -> None:
    frame = standing_frame()
    frame.landmarks.reverse()
    assert validate_frame(frame) == []


def test_null_visibility_and_presence_are_valid() -> None:
    frame = standing_frame()
    frame.landmarks[3] = Landmark(frame.landmarks[3].name, 0.1, 0.2, 0.3)
    assert validate_frame(frame) == []


def test_degraded_but_in_range_values_are_valid() -> None:
    frame = standing_frame(confidence=0.0)
    frame.landmarks[0].visibility = 0.0
    frame.landmarks[1].presence = 1.0
    assert validate_frame(frame) == []


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "missing landmarks: right_foot_index"),
        ("duplicate", "duplicate landmarks: nose"),
        ("unknown", "unknown landmarks: 'tail'"),
        ("confidence", "confidence 1.5 is outside 0..1"),
        ("visibility", "nose: visibility 1.5"),
        ("schema", "pose_schema is 'mediapipe_pose_landmarker/v0'"),
        ("nan", "nose: coordinates (nan"),
    ],
)
def test_each_bad_frame_kind_is_caught_and_named(kind: Any, expected: str) -> None:
    problems = validate_frame(bad_frame(kind))
    assert problems
    assert any(p.startswith(expected) for p in problems), problems


def test_missing_landmark_also_reports_the_count() -> None:
    problems = validate_frame(bad_frame("missing"))
    assert problems == ["missing landmarks: right_foot_index", "expected 33 landmarks, got 32"]


def test_duplicate_reports_the_landmark_it_displaced() -> None:
    assert validate_frame(bad_frame("duplicate")) == [
        "missing landmarks: right_foot_index",
        "duplicate landmarks: nose",
    ]


def test_extra_landmark_beyond_33() -> None:
    frame = standing_frame()
    frame.landmarks.append(Landmark("left_knee", 0.0, 0.0, math.inf))
    problems = validate_frame(frame)
    assert "duplicate landmarks: left_knee" in problems
    assert "expected 33 landmarks, got 34" in problems
    assert any(p.startswith("left_knee: coordinates") for p in problems)


def test_empty_landmarks() -> None:
    problems = validate_frame(standing_frame(landmarks=[]))
    assert problems[0].startswith("missing landmarks: nose, left_eye_inner")
    assert problems[-1] == "expected 33 landmarks, got 0"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_coordinates(value: float) -> None:
    frame = standing_frame()
    frame.landmarks[25].z = value
    (problem,) = validate_frame(frame)
    assert problem.startswith("left_knee: coordinates (") and problem.endswith(
        f"{value}) are not finite"
    )


@pytest.mark.parametrize(
    ("field", "value"), [("visibility", -0.01), ("presence", 1.01), ("presence", math.nan)]
)
def test_visibility_and_presence_outside_unit(field: str, value: float) -> None:
    frame = standing_frame()
    setattr(frame.landmarks[7], field, value)
    (problem,) = validate_frame(frame)
    assert problem.startswith("left_ear: visibility")


@pytest.mark.parametrize("confidence", [-0.1, 1.0001, math.nan])
def test_frame_confidence_outside_unit(confidence: float) -> None:
    (problem,) = validate_frame(standing_frame(confidence=confidence))
    assert problem.startswith("confidence")


def test_timestamp_and_frame_seq() -> None:
    assert validate_frame(standing_frame(timestamp_ms=math.inf)) == [
        "timestamp_ms inf is not finite"
    ]
    assert validate_frame(standing_frame(frame_seq=0)) == ["frame_seq 0 is below 1"]
    assert validate_frame(standing_frame(frame_seq=None)) == []


def test_several_problems_are_all_reported() -> None:
    frame = bad_frame("missing")
    frame.confidence = 2.0
    frame.pose_schema = "x"
    assert len(validate_frame(frame)) == 4


# ---- wire encoding ----------------------------------------------------------------------


def test_frames_always_carry_schema_confidence_and_null_fields() -> None:
    frame = PoseFrame(timestamp_ms=1.5, landmarks=[Landmark("nose", 0.0, -0.6, -0.2)], frame_seq=1)
    obj = msgspec.json.decode(encoder.encode(frame))
    assert obj["pose_schema"] == INPUT_SCHEMA_VERSION
    assert obj["confidence"] == 1.0
    assert obj["timestamp_ms"] == 1.5 and obj["frame_seq"] == 1
    assert obj["landmarks"][0] == {
        "name": "nose",
        "x": 0.0,
        "y": -0.6,
        "z": -0.2,
        "visibility": None,
        "presence": None,
    }


def test_frame_from_the_protocol_example_decodes() -> None:
    raw = (
        b'{"frame_seq": 1, "timestamp_ms": 0.0, "pose_schema": "mediapipe_pose_landmarker/v1",'
        b' "confidence": 0.91, "source": {"kind": "upload", "frame_width": 1280,'
        b' "frame_height": 720}, "landmarks": [{"name": "nose", "x": 0.01, "y": -0.62,'
        b' "z": -0.21, "visibility": 0.99, "presence": 0.99}], "extra": true}'
    )
    frame = msgspec.json.decode(raw, type=PoseFrame)
    assert frame.source == FrameSource("upload", 1280, 720)
    assert frame.landmarks[0].visibility == 0.99


def _events() -> list[Any]:
    common: dict[str, Any] = {"session_id": "sess_1", "ts_ms": 33.3}
    return [
        ShapeEnter(event_id="e1", payload=ShapePayload("standing", 0.93), **common),
        ShapeExit(event_id="e2", payload=ShapePayload("standing", 0.9), **common),
        EventCompleted(event_id="e3", payload=CompletedPayload("squat", 0.97), **common),
        EventCompleted(event_id="e4", payload=CompletedPayload("squat", None), **common),
        EventInterrupted(event_id="e5", payload=InterruptedPayload("too slow"), **common),
        Feedback(event_id="e6", payload=FeedbackPayload("coaching", "Knees out"), **common),
    ]


CLIENT_MESSAGES = [
    FrameBatch(batch_seq=1, frames=generate_squats(0, noise=0.0)[:2]),
    Finalize(),
    Cancel(),
    Ping(),
    Pong(),
]

SERVER_MESSAGES = [
    FrameAck(batch_seq=1, accepted_frame_count=2, accepted_frames_total=2),
    FrameAck(
        batch_seq=2, accepted_frame_count=1, accepted_frames_total=3, rejected_frame_indexes=[0]
    ),
    SessionUpdate(session_id="sess_1", status="streaming", accepted_frames_total=0),
    SessionDone(
        session_id="sess_1",
        status="completed",
        accepted_frames_total=2,
        terminal_outcome="completed",
    ),
    SessionDone(
        session_id="sess_1",
        status="failed",
        accepted_frames_total=2,
        error=ErrorDetail("internal_error", "boom", retryable=True, details={"n": 1}),
    ),
    ErrorMessage(error=ErrorDetail("validation_error", "bad batch")),
    Ping(),
    Pong(),
]


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda m: type(m).__name__)
def test_client_messages_round_trip(message: Any) -> None:
    data = encoder.encode(message)
    assert msgspec.json.decode(data)["type"] == type(message).__struct_config__.tag
    assert client_message_decoder.decode(data) == message


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: type(m).__name__)
def test_server_messages_round_trip(message: Any) -> None:
    assert server_message_decoder.decode(encoder.encode(message)) == message


def test_event_batch_round_trip_with_every_event_type() -> None:
    events = _events()
    wire = encoder.encode({"type": "event_batch", "batch_seq": 4, "events": events})
    batch = server_message_decoder.decode(wire)
    assert isinstance(batch, EventBatch) and batch.batch_seq == 4
    assert [decode_detection_event(raw) for raw in batch.events] == events
    again = server_message_decoder.decode(encoder.encode(batch))
    assert again == batch


def test_message_type_tags() -> None:
    tags = {type(m).__struct_config__.tag for m in SERVER_MESSAGES + CLIENT_MESSAGES}
    assert tags == {
        "frame_batch",
        "finalize",
        "cancel",
        "ping",
        "pong",
        "frame_ack",
        "session_update",
        "session_done",
        "error",
    }
    assert EventBatch.__struct_config__.tag == "event_batch"


def test_protocol_example_messages_decode() -> None:
    ack = server_message_decoder.decode(
        b'{"type": "frame_ack", "batch_seq": 1, "accepted_frame_count": 2,'
        b' "accepted_frames_total": 2}'
    )
    assert ack == FrameAck(1, 2, 2, [])
    done = server_message_decoder.decode(
        b'{"type": "session_done", "session_id": "s", "status": "completed",'
        b' "accepted_frames_total": 2, "terminal_outcome": "completed", "error": null}'
    )
    assert isinstance(done, SessionDone) and done.error is None
    err = server_message_decoder.decode(
        b'{"type": "error", "error": {"code": "rate_limited", "message": "slow down",'
        b' "retryable": true, "details": {"retry_after_seconds": 2}}}'
    )
    assert isinstance(err, ErrorMessage) and err.error.retryable
    assert err.error.details == {"retry_after_seconds": 2}


def test_unknown_fields_and_new_statuses_are_tolerated() -> None:
    update = server_message_decoder.decode(
        b'{"type": "session_update", "session_id": "s", "status": "paused",'
        b' "accepted_frames_total": 0, "terminal_outcome": null, "new_field": [1, 2]}'
    )
    assert isinstance(update, SessionUpdate) and update.status == "paused"


def test_unknown_message_type_is_a_validation_error() -> None:
    with pytest.raises(msgspec.ValidationError):
        server_message_decoder.decode(b'{"type": "brand_new", "x": 1}')


# ---- detection events -------------------------------------------------------------------


def test_event_batch_with_an_unknown_event_type_keeps_the_others() -> None:
    wire = (
        b'{"type": "event_batch", "batch_seq": 1, "events": ['
        b'{"type": "shape_enter", "event_id": "evt_1", "session_id": "sess_7f0c", "ts_ms": 33.3,'
        b' "payload": {"shape_key": "standing", "confidence": 0.93}},'
        b'{"type": "pose_score", "event_id": "evt_2", "session_id": "sess_7f0c", "ts_ms": 34,'
        b' "payload": {"score": 0.5}},'
        b'{"type": "event_completed", "event_id": "evt_3", "session_id": "sess_7f0c",'
        b' "ts_ms": 40, "payload": {"event_key": "squat", "score": null}}]}'
    )
    batch = server_message_decoder.decode(wire)
    assert isinstance(batch, EventBatch)
    first, second, third = (decode_detection_event(raw) for raw in batch.events)
    assert isinstance(first, ShapeEnter) and first.payload.shape_key == "standing"
    assert isinstance(second, UnknownEvent) and second.type == "pose_score"
    assert second.event_id == "evt_2" and second.raw["payload"] == {"score": 0.5}
    assert isinstance(third, EventCompleted)
    assert third.payload == CompletedPayload("squat", None) and third.ts_ms == 40.0


def test_known_type_with_unexpected_shape_becomes_unknown() -> None:
    event = decode_detection_event(
        b'{"type": "feedback", "event_id": "e", "session_id": "s", "ts_ms": 1, "payload": 3}'
    )
    assert isinstance(event, UnknownEvent) and event.type == "feedback"


def test_new_feedback_level_still_decodes() -> None:
    event = decode_detection_event(
        b'{"type": "feedback", "event_id": "e", "session_id": "s", "ts_ms": 1,'
        b' "payload": {"level": "warning", "message": "m"}}'
    )
    assert isinstance(event, Feedback) and event.payload.level == "warning"


def test_event_without_type_or_id() -> None:
    event = decode_detection_event(b'{"payload": {}}')
    assert isinstance(event, UnknownEvent)
    assert event.type == "" and event.event_id is None


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"{not json", b""])
def test_non_object_event_raises_decode_error(raw: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_detection_event(raw)


def test_decode_detection_event_accepts_raw_bytes_and_str() -> None:
    data = encoder.encode(_events()[0])
    assert decode_detection_event(msgspec.Raw(data)) == _events()[0]
    assert decode_detection_event(data.decode()) == _events()[0]


# ---- REST -------------------------------------------------------------------------------


def test_access_token_repr_hides_the_token() -> None:
    token = msgspec.json.decode(
        b'{"access_token": "eyJsecret", "token_type": "Bearer", "expires_in_seconds": 900,'
        b' "organization_id": "org_1", "project_id": "proj_1"}',
        type=AccessToken,
    )
    assert token.project_id == "proj_1" and token.expires_in_seconds == 900
    assert "eyJsecret" not in repr(token)


def test_session_created_decodes_and_hides_runtime_token() -> None:
    created = msgspec.json.decode(
        b'{"session_id": "sess_7f0c", "project_id": "proj_1", "status": "created",'
        b' "mode": "replay", "resolved_movespec_version_id": "msv_42",'
        b' "stream_url": "wss://x/stream", "runtime_token": "eyJhbGciOi",'
        b' "input_schema_version": "mediapipe_pose_landmarker/v1",'
        b' "output_schema_version": "kynasmith_detection_events/v1"}',
        type=DetectionSessionCreated,
    )
    assert created.mode == "replay" and created.output_schema_version == OUTPUT_SCHEMA_VERSION
    assert "eyJhbGciOi" not in repr(created)


def test_session_record_minimal_and_full() -> None:
    minimal = msgspec.json.decode(
        b'{"session_id": "s", "organization_id": "o", "project_id": "p", "mode": "live",'
        b' "status": "streaming", "resolved_movespec_version_id": "v",'
        b' "accepted_frames_total": 12}',
        type=DetectionSessionRecord,
    )
    assert minimal.started_at is None and minimal.accepted_frames_total == 12
    full = msgspec.json.decode(
        b'{"session_id": "s", "organization_id": "o", "project_id": "p", "mode": "live",'
        b' "status": "failed", "resolved_movespec_version_id": "v", "accepted_frames_total": 1,'
        b' "started_at": "2026-04-04T12:00:00Z", "ended_at": "2026-04-04T12:01:00Z",'
        b' "terminal_outcome": "failed", "error_code": "internal_error", "error_message": "x"}',
        type=DetectionSessionRecord,
    )
    assert full.status in TERMINAL_STATUSES and full.error_code == "internal_error"


def test_movespec_models_tolerate_both_variants() -> None:
    public = msgspec.json.decode(
        b'{"movespec_id": "ms_1", "project_id": "p", "name": "squat", "description": null,'
        b' "visibility": "delisted", "current_released_version_id": null,'
        b' "created_at": "t", "updated_at": "t", "archived_at": null, "star_count": 3}',
        type=MoveSpec,
    )
    assert public.visibility == "delisted" and public.star_count == 3
    sdk = msgspec.json.decode(
        b'{"movespec_id": "ms_1", "organization_id": "o", "project_id": "p", "name": "squat",'
        b' "visibility": "private", "created_by": "u", "created_at": "t", "updated_at": "t",'
        b' "caller_starred": true}',
        type=MoveSpec,
    )
    assert sdk.organization_id == "o" and sdk.star_count == 0 and public.organization_id is None
    with pytest.raises(msgspec.ValidationError, match="project_id"):  # both variants have it
        msgspec.json.decode(b'{"movespec_id": "ms_1", "name": "squat"}', type=MoveSpec)
    draft = msgspec.json.decode(
        b'{"draft_id": "d", "movespec_id": "ms_1", "yaml_source": "name: x",'
        b' "updated_by": null, "updated_at": "t"}',
        type=MoveSpecDraft,
    )
    assert draft.yaml_source == "name: x"
    version = msgspec.json.decode(
        b'{"movespec_version_id": "v", "movespec_id": "ms_1", "version_number": 2,'
        b' "yaml_source": "", "content_hash": "ab", "created_at": "t"}',
        type=MoveSpecVersion,
    )
    assert version.version_number == 2 and version.created_by is None


def test_validation_result() -> None:
    result = msgspec.json.decode(
        b'{"ok": false, "target_type": "draft", "target_id": "d", "validated_at": "t",'
        b' "errors": [{"code": "unknown_phase", "message": "m", "severity": "error",'
        b' "path": "detection.movement.sequence[2]", "line": 17, "column": 35}]}',
        type=ValidationResult,
    )
    assert not result.ok and result.warnings == []
    (issue,) = result.errors
    assert (issue.code, issue.line, issue.column) == ("unknown_phase", 17, 35)
