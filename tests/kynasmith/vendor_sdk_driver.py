"""Drives the emulator with the vendor's own ``kynasmith`` SDK 0.1.0 (run under Python 3.12).

Started by ``tests/kynasmith/test_vendor_sdk.py`` in the SDK's own venv::

    python vendor_sdk_driver.py BASE_URL KEY PROJECT_ID FRAMES.json MOVESPEC.yaml

and prints one JSON object of what the SDK returned. The replay flow is the
SDK's own (``kynasmith.media._run_pose_frame_session``: create a session,
attach, one batch of 15 frames at a time until its ``frame_ack``, ``finalize``
until ``session_done``, then ``GET`` the session); only the MP4 → pose step is
skipped: the frames are synthetic. MediaPipe and OpenCV, which that step alone
uses, are not installed; when absent, empty placeholder modules let
``kynasmith.media`` import.
"""

from __future__ import annotations

import json
import sys
import types
import uuid
from typing import Any


def _placeholders() -> None:
    try:
        import cv2  # noqa: F401
        import mediapipe  # noqa: F401
    except ImportError:
        for name in ("cv2", "mediapipe", "mediapipe.tasks", "mediapipe.tasks.python"):
            sys.modules.setdefault(name, types.ModuleType(name))
        vision = types.ModuleType("mediapipe.tasks.python.vision")
        vision.PoseLandmarker = vision.PoseLandmarkerOptions = vision.RunningMode = None  # type: ignore[attr-defined]
        sys.modules["mediapipe.tasks.python.vision"] = vision
        sys.modules["mediapipe.tasks.python"].BaseOptions = None  # type: ignore[attr-defined]


def main(
    base_url: str, key: str, project_id: str, frames_path: str, yaml_path: str
) -> dict[str, Any]:
    _placeholders()
    from kynasmith.media import _run_pose_frame_session
    from kynasmith.models import (
        DetectionSessionCreate,
        MoveSpecCreate,
        MoveSpecDraftUpdate,
        MoveSpecFork,
        MoveSpecUpdate,
    )
    from kynasmith_contracts import PoseFrameV1

    from kynasmith import KynasmithClient, KynasmithError

    key_id, _, secret = key.partition(":")
    out: dict[str, Any] = {}
    with open(frames_path) as f:
        frames = [PoseFrameV1.model_validate(frame) for frame in json.load(f)]
    with open(yaml_path) as f:
        yaml_source = f.read()
    with KynasmithClient(
        project_id=project_id, api_key_id=key_id, api_key_secret=secret, base_url=base_url
    ) as client:
        token = client.auth.create_access_token()
        out["token"] = {
            "expires_in_seconds": token.expires_in_seconds,
            "project_id": token.project_id,
            "organization_id": token.organization_id,
        }
        client.auth.clear_access_token()  # from here on the SDK mints per call's scopes
        public = client.movespecs.list(visibility="public")
        out["catalogue"] = sorted(spec.name for spec in public)
        squat = next(spec for spec in public if spec.name == "squat")
        out["get"] = client.movespecs.get(squat.movespec_id).name
        mine = client.movespecs.create(MoveSpecCreate(project_id=project_id, name="vendor-squat"))
        updated = client.movespecs.update(mine.movespec_id, MoveSpecUpdate(description="sdk"))
        draft = client.movespecs.update_draft(
            mine.movespec_id, MoveSpecDraftUpdate(yaml_source=yaml_source)
        )
        checked = client.movespecs.validate_draft(mine.movespec_id)
        version = client.movespecs.create_version(mine.movespec_id)
        released = client.movespecs.release_version(mine.movespec_id, version.movespec_version_id)
        versions = client.movespecs.list_versions(mine.movespec_id)
        fork = client.movespecs.fork(
            squat.movespec_id, MoveSpecFork(project_id=project_id, name="vendor-fork")
        )
        out["movespecs"] = {
            "description": updated.description,
            "draft_is_yaml": draft.yaml_source == yaml_source,
            "validation_ok": checked.ok,
            "version_number": version.version_number,
            "released": released.current_released_version_id == version.movespec_version_id,
            "versions": len(versions),
            "fork_draft_copied": client.movespecs.get_draft(fork.movespec_id).yaml_source
            == client.movespecs.get_draft(squat.movespec_id).yaml_source,
        }
        run = _run_pose_frame_session(
            client,
            input=DetectionSessionCreate(
                project_id=project_id,
                movespec_version_id=version.movespec_version_id,
                mode="replay",
            ),
            pose_frames=frames,
            batch_size=15,
        )
        out["replay"] = {
            "frames_sent": len(frames),
            "accepted_frames_total": run.accepted_frames_total,
            "completed_event_counts": run.completed_event_counts,
            "events": len(run.events),
            "status": run.summary.status,
            "ended_at": run.summary.ended_at is not None,
            "session_id": run.session.session_id,
            "runtime_token": run.session.runtime_token,
            "resolved_movespec_version_id": run.session.resolved_movespec_version_id,
        }
        live = DetectionSessionCreate(
            project_id=project_id, movespec_id=squat.movespec_id, mode="live"
        )
        finalizing = client.detection.finalize_session(
            client.detection.create_session(live).session_id
        )
        cancelled = client.detection.cancel_session(
            client.detection.create_session(live).session_id
        )
        out["rest_endings"] = {
            "finalize": finalizing.status,
            "after_finalize": client.detection.get_session(finalizing.session_id).status,
            "cancel": cancelled.status,
        }
        try:
            client.detection.get_session(str(uuid.uuid4()))
        except KynasmithError as exc:
            out["unknown_session"] = [type(exc).__name__, getattr(exc, "code", None)]
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:6])))
