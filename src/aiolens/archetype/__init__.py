"""The Archetype AI Lens API: client, resources and models."""

from aiolens.archetype.client import DEFAULT_BASE_URL, AsyncArchetypeClient
from aiolens.archetype.models import SessionStatus
from aiolens.archetype.session import LensSession

__all__ = ["DEFAULT_BASE_URL", "AsyncArchetypeClient", "LensSession", "SessionStatus"]
