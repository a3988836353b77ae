"""``validate_frame``'s fast path accepts only frames the detailed check finds nothing in.

``validate_frame`` returns ``[]`` at once when ``_plainly_valid`` vouches for a frame, and
asks the detailed check (``_frame_problems``, the validator as it always was) otherwise.
So the accepted and rejected frames, and every message, stay those of the detailed check
as long as the fast path never vouches for a frame the detailed check would reject.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolens.kynasmith._frames import _frame_problems, _plainly_valid
from aiolens.kynasmith.models import FrameSource, Landmark, PoseFrame, validate_frame
from aiolens.kynasmith.synthetic import generate_squats

BASE: list[PoseFrame] = generate_squats(1, seed=5)[::9]

ODD: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    10**400,
    -0.0,
    0,
    1,
    True,
    False,
    None,
    "x",
    -0.01,
    1.01,
    0.0,
    1.0,
]
FIELDS = ["x", "y", "z", "visibility", "presence"]


def copy(frame: PoseFrame) -> PoseFrame:
    return msgspec.structs.replace(
        frame, landmarks=[msgspec.structs.replace(m) for m in frame.landmarks]
    )


@st.composite
def frames(draw: st.DrawFn) -> PoseFrame:
    frame = copy(draw(st.sampled_from(BASE)))
    marks = frame.landmarks
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.sampled_from(["value", "value", "frame", "names", "scores"]))
        if change == "value" and marks:
            mark = marks[draw(st.integers(0, len(marks) - 1))]
            setattr(mark, draw(st.sampled_from(FIELDS)), draw(st.sampled_from(ODD)))
        elif change == "scores":  # every landmark without scores (a detector that gives none)
            for mark in marks:
                mark.visibility = mark.presence = None
        elif change == "frame":
            field = draw(
                st.sampled_from(["confidence", "timestamp_ms", "frame_seq", "schema", "source"])
            )
            if field == "frame_seq":
                frame.frame_seq = draw(st.sampled_from([None, 0, -1, 1, 7, "x"]))
            elif field == "schema":
                frame.pose_schema = draw(st.sampled_from(["", "mediapipe_pose_landmarker/v2"]))
            elif field == "source":
                frame.source = draw(
                    st.sampled_from([None, FrameSource("tv", 1, 1), FrameSource("stream", 1, 1)])
                )
            else:
                setattr(frame, field, draw(st.sampled_from(ODD)))
        elif marks:
            i = draw(st.integers(0, len(marks) - 1))
            j = draw(st.integers(0, len(marks) - 1))
            what = draw(st.sampled_from(["swap", "duplicate", "drop", "rename", "append"]))
            if what == "swap":
                marks[i], marks[j] = marks[j], marks[i]
            elif what == "duplicate":
                marks[i] = msgspec.structs.replace(marks[j])
            elif what == "drop":
                del marks[i]
            elif what == "rename":
                marks[i].name = "left_tail"
            else:
                marks.append(Landmark("nose", 0.0, 0.0, 0.0))
    return frame


def outcome(check: Any, frame: PoseFrame) -> Any:
    try:
        return check(frame)
    except Exception as exc:  # an odd value: both must fail alike
        return type(exc)


@settings(max_examples=2000, deadline=None)
@given(frames())
def test_the_fast_path_vouches_only_for_frames_without_problems(frame: PoseFrame) -> None:
    if _plainly_valid(frame):
        assert _frame_problems(frame) == []
    assert outcome(validate_frame, frame) == outcome(_frame_problems, frame)


def test_the_usual_frames_take_the_fast_path() -> None:
    for frame in generate_squats(2, seed=1):
        assert _plainly_valid(frame)
        unscored = copy(frame)
        for mark in unscored.landmarks:
            mark.visibility = mark.presence = None
        assert _plainly_valid(unscored)


def test_a_sum_that_overflows_is_judged_by_the_detailed_check() -> None:
    frame = copy(BASE[0])
    for mark in frame.landmarks[:3]:
        mark.x = 1e308  # finite, but the sum is not
    assert not _plainly_valid(frame)
    assert validate_frame(frame) == []
