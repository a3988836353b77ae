"""The Kynasmith Detection API: client, detection sessions, MoveSpecs, models."""

from aiolens.kynasmith.client import DEFAULT_BASE_URL, AsyncKynasmithClient
from aiolens.kynasmith.session import DetectionSession

__all__ = ["DEFAULT_BASE_URL", "AsyncKynasmithClient", "DetectionSession"]
