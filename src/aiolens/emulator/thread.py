"""An :class:`Emulator` on its own event loop in a background thread, for sync code.

Synchronous tests (FastAPI's ``TestClient``, Django, plain scripts) cannot
``async with Emulator()``: they have no running loop, and a ``TestClient``
runs the app on a loop of its own. :class:`EmulatorThread` starts the
emulator on a private loop in a daemon thread, so any thread and any loop can
talk to it over 127.0.0.1::

    with EmulatorThread() as emu:
        os.environ["ATAI_API_KEY"] = emu.api_key
        os.environ["ATAI_API_ENDPOINT"] = emu.lens_url
        ...  # run sync code, or a TestClient, against it
        assert emu.call(lambda: len(emu.emulator.lens.active_sessions())) == 0
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from aiolens.emulator.server import Emulator

__all__ = ["EmulatorThread"]

T = TypeVar("T")


class EmulatorThread:
    """Run an :class:`Emulator` in a background thread on a loop of its own.

    Args:
        timeout: seconds :meth:`start`, :meth:`stop`, :meth:`call` and
            :meth:`run` wait for the emulator's thread.
        **options: :class:`Emulator` options (``api_key``, ``event_interval`` ...).

    Attributes:
        emulator: the :class:`Emulator`; read or change its state only through
            :meth:`call` or :meth:`run` (it belongs to the other thread).

    :meth:`stop` (or leaving the ``with`` block) stops the server, the loop and
    the thread; it is idempotent. A call that outlives ``timeout`` raises
    :class:`TimeoutError` (the emulator's thread goes on).
    """

    def __init__(self, *, timeout: float = 30.0, **options: Any) -> None:
        self.emulator: Emulator = Emulator(**options)
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # The addresses and keys, readable from any thread once started.
    @property
    def api_key(self) -> str:
        """The Lens API key it accepts."""
        return self.emulator.api_key

    @property
    def lens_url(self) -> str:
        """The Lens API base URL."""
        return self.emulator.lens_url

    @property
    def kynasmith_api_key(self) -> str:
        """The Kynasmith credential it accepts."""
        return self.emulator.kynasmith_api_key

    @property
    def kynasmith_url(self) -> str:
        """The Kynasmith API base URL."""
        return self.emulator.kynasmith_url

    def environ(self) -> dict[str, str]:
        """The clients' environment variables (``ATAI_*``, ``KYNASMITH_*``) for it."""
        return {
            "ATAI_API_KEY": self.api_key,
            "ATAI_API_ENDPOINT": self.lens_url,
            "KYNASMITH_API_KEY": self.kynasmith_api_key,
            "KYNASMITH_BASE_URL": self.kynasmith_url,
        }

    def start(self) -> None:
        """Start the thread and the emulator; return once it listens.

        Raises:
            TimeoutError: it did not start within ``timeout``.
            OSError: it could not bind its port.
        """
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="aiolens-emulator", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self.run(self.emulator.start())
        except BaseException:
            self.stop()
            raise

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the emulator's loop and return its result (from any other thread).

        Raises:
            TimeoutError: no result within ``timeout``; ``coro`` is cancelled.
            RuntimeError: the emulator is not running.
        """
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("The emulator thread is not running; call start() first.")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"The emulator did not answer within {self.timeout}s") from None

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn()`` on the emulator's loop (to read or change its state safely)."""

        async def in_loop() -> T:
            return fn()

        return self.run(in_loop())

    def stop(self) -> None:
        """Stop the emulator, its loop and its thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                self.run(self.emulator.stop())
        finally:
            self._loop = self._thread = None
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)
            if not thread.is_alive():
                loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorThread({self.emulator!r})"
