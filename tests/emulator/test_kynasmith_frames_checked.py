"""The emulator's one-pass batch decode judges every frame as frame-by-frame decoding does.

A ``frame_batch`` decodes in one pass into checked frames when every frame passes the
contract's range, schema and source-kind rules; otherwise each frame is decoded alone and
judged by ``frame_problems``. Either way, the set of rejected frames must be the same.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolens.emulator.kynasmith_wire import (
    CheckedPoseFrame,
    DecodedFrameBatch,
    FrameBatchMessage,
    decode_client_message,
    decode_frame,
    frame_is_valid,
    frame_problems,
)
from aiolens.kynasmith.models import encoder
from aiolens.kynasmith.synthetic import generate_squats

BASE: list[dict[str, Any]] = json.loads(encoder.encode(generate_squats(1, seed=3)[:4]))

BAD_VALUES: list[Any] = [-0.1, 1.5, 1e300, None, "x", 0, 1, True, 0.0, 1.0]


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    frame = json.loads(json.dumps(draw(st.sampled_from(BASE))))
    for _ in range(draw(st.integers(0, 2))):
        change = draw(st.sampled_from(["conf", "seq", "schema", "source", "score", "name"]))
        if change == "conf":
            frame["confidence"] = draw(st.sampled_from(BAD_VALUES))
        elif change == "seq":
            frame["frame_seq"] = draw(st.sampled_from([0, -1, 1, 2, 1.5]))
        elif change == "schema":
            frame["pose_schema"] = draw(st.sampled_from(["mediapipe_pose_landmarker/v2", ""]))
        elif change == "source":
            frame["source"] = draw(
                st.sampled_from(
                    [None, {"kind": "tv", "frame_width": 1, "frame_height": 1}, {"kind": "camera"}]
                )
            )
        elif change == "score":
            mark = frame["landmarks"][draw(st.integers(0, len(frame["landmarks"]) - 1))]
            mark[draw(st.sampled_from(["visibility", "presence"]))] = draw(
                st.sampled_from(BAD_VALUES)
            )
        else:
            marks = frame["landmarks"]
            last = len(marks) - 1
            i, j = draw(st.integers(0, last)), draw(st.integers(0, last))
            what = draw(st.sampled_from(["swap", "duplicate", "drop", "rename"]))
            if what == "swap":
                marks[i], marks[j] = marks[j], marks[i]
            elif what == "duplicate":
                marks[i] = dict(marks[j])
            elif what == "drop":
                del marks[i]
            else:
                marks[i]["name"] = "left_tail"
    return frame


def one_by_one(raw_frames: list[msgspec.Raw]) -> list[bool]:
    verdicts = []
    for raw in raw_frames:
        frame = decode_frame(raw)
        verdicts.append(frame is not None and not frame_problems(frame))
    return verdicts


@settings(max_examples=300, deadline=None)
@given(st.lists(frames(), max_size=4))
def test_the_one_pass_decode_judges_each_frame_as_one_by_one(batch: list[dict[str, Any]]) -> None:
    data = json.dumps({"type": "frame_batch", "batch_seq": 1, "frames": batch}).encode()
    message = decode_client_message(data)
    expected = one_by_one([msgspec.Raw(json.dumps(f).encode()) for f in batch])
    if isinstance(message, DecodedFrameBatch):
        assert all(type(f) is CheckedPoseFrame for f in message.frames)
        got = [frame_is_valid(f) for f in message.frames]
    else:
        assert isinstance(message, FrameBatchMessage)
        got = [
            (frame := decode_frame(r)) is not None and frame_is_valid(frame) for r in message.frames
        ]
    assert got == expected
