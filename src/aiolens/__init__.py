"""aiolens: an asyncio client for session-based real-time inference APIs."""

from aiolens._core.model import to_builtins
from aiolens._core.timeouts import Timeouts
from aiolens._logs import configure_from_env as _configure_logs_from_env
from aiolens._transport.http import RateLimit
from aiolens.archetype import AsyncArchetypeClient, LensSession, SessionStatus
from aiolens.errors import (
    AgentQueryError,
    AgentRunError,
    AiolensError,
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ConnectionLostError,
    DetectionError,
    EventError,
    InternalServerError,
    MessageTooLargeError,
    MissingExtraError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PoseFrameError,
    ProtocolError,
    QueryTimeoutError,
    RateLimitError,
    RejectedRequestError,
    StreamResumeError,
    UnprocessableEntityError,
    WaitTimeoutError,
)
from aiolens.kynasmith import AsyncKynasmithClient, DetectionSession

_configure_logs_from_env()

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AgentQueryError",
    "AgentRunError",
    "AiolensError",
    "AsyncArchetypeClient",
    "AsyncKynasmithClient",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ConnectionLostError",
    "DetectionError",
    "DetectionSession",
    "EventError",
    "InternalServerError",
    "LensSession",
    "MessageTooLargeError",
    "MissingExtraError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PoseFrameError",
    "ProtocolError",
    "QueryTimeoutError",
    "RateLimit",
    "RateLimitError",
    "RejectedRequestError",
    "SessionStatus",
    "StreamResumeError",
    "Timeouts",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "__version__",
    "to_builtins",
]
