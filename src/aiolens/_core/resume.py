"""The resume cursor of a Server-Sent-Events sequence (pure, no I/O).

A stream that drops is resumed with ``Last-Event-ID``; the server then sends the events after
that id, and perhaps some that were already delivered. :class:`ResumeCursor` decides which
events were delivered (to drop their repeats) and whether a resume is safe at all:

* **Numeric ids** (ASCII digits, the usual kind) are ordered: an id not above the highest one
  delivered is a repeat. They are compared as decimal strings (length after leading zeros,
  then text), so an id of any length works; no ``int()`` conversion, whose digit limit
  (:func:`sys.get_int_max_str_digits`) a hostile id would hit.
* **Other ids** are opaque: one counts as delivered while it is among the last
  :data:`RECENT_IDS` ids remembered (of any kind).
* **Events without ids** cannot be resumed after: once one is delivered after the last id,
  :attr:`ResumeCursor.resumable` is false until an id moves the cursor again.
"""

from __future__ import annotations

import operator
from itertools import islice
from typing import Final

from aiolens._core.seen import SeenWindow

__all__ = ["RECENT_IDS", "ResumeCursor"]

RECENT_IDS: Final = 4096
_RUN_DIGITS: Final = 18
"""Ids of a run taken at once (:meth:`ResumeCursor.take_run`) have at most this many digits:
``int()`` is then cheap and far below its digit limit."""


class ResumeCursor:
    """Which ids of one event sequence were delivered, and where a resume starts.

    Attributes:
        last_event_id: the id to resume after (``Last-Event-ID``); ``""`` before any id.
        since_id: events of the sequence delivered without an id since the cursor last
            moved; a resume would repeat or lose them, so it is unsafe while this is not 0.
    """

    __slots__ = ("_last_digits", "_named", "last_event_id", "since_id")

    def __init__(self) -> None:
        """A cursor before the first event: nothing seen, nothing to resume after."""
        self.last_event_id = ""
        self.since_id = 0
        self._last_digits: str | None = None  # the highest numeric id, without leading zeros
        # The other ids among the last RECENT_IDS remembered; a numeric id is a step of it.
        self._named: SeenWindow[str] = SeenWindow(RECENT_IDS)

    @property
    def resumable(self) -> bool:
        """Whether a resume from :attr:`last_event_id` loses and repeats nothing."""
        return self.since_id == 0

    def seen(self, event_id: str) -> bool:
        """Whether the event with this (non-empty) id was already delivered or skipped."""
        if event_id.isascii() and event_id.isdigit():
            last = self._last_digits
            if last is None:
                return False
            digits = event_id.lstrip("0")
            return len(digits) < len(last) or (len(digits) == len(last) and digits <= last)
        return event_id in self._named

    def remember(self, event_id: str) -> None:
        """Move the cursor to a (non-empty, not :meth:`seen`) id.

        Call it for every frame that carried the id, whether its event was delivered,
        skipped as malformed or carried no event at all: the stream moved past it.
        """
        self.last_event_id = event_id
        self.since_id = 0
        if event_id.isascii() and event_id.isdigit():
            self._last_digits = event_id.lstrip("0")
            self._named.tick()
            return
        self._named.add(event_id)

    def fresh_run(self, ids: list[str]) -> bool:
        """Whether a run of ids is all new, in a form checked at once: a chunk's fast path.

        True when every id is numeric (at most 18 digits), each above the one before it
        and the first above every numeric id delivered so far: then none is
        :meth:`seen`, and :meth:`remember_run` leaves the cursor as :meth:`remember` on
        each would. ``False`` says nothing (check the ids one by one).
        """
        if not ids:
            return False
        count, size = len(ids), len(ids[0])
        joined = ",".join(ids)
        if (
            0 < size <= _RUN_DIGITS
            and len(joined) == count * (size + 1) - 1
            and joined.count(",") == count - 1
            and joined[size :: size + 1] == "," * (count - 1)
            and joined.isascii()
            and joined.replace(",", "").isdigit()
        ):
            # The usual run: ids of one length (the commas between them are where that
            # says), so ordered as decimal strings as by value; checked by C code.
            return all(map(operator.lt, ids, islice(ids, 1, None))) and self._above_last(
                int(ids[0])
            )
        joined = "".join(ids)
        if not (joined.isascii() and joined.isdigit() and all(ids)):
            return False
        if max(map(len, ids)) > _RUN_DIGITS:
            return False
        numbers = list(map(int, ids))
        if not all(map(operator.lt, numbers, islice(numbers, 1, None))):
            return False
        return self._above_last(numbers[0])

    def _above_last(self, number: int) -> bool:
        """Whether ``number`` is above every numeric id delivered (none: ``True``)."""
        last = self._last_digits
        return last is None or (len(last) <= _RUN_DIGITS and int(last or "0") < number)

    def remember_run(self, ids: list[str]) -> None:
        """Move the cursor past a run that :meth:`fresh_run` accepted."""
        self.last_event_id = ids[-1]
        self.since_id = 0
        self._named.tick(len(ids))
        self._last_digits = ids[-1].lstrip("0")

    def advance(self, event_id: str) -> None:
        """A frame with an id and no event: move the cursor unless the id was seen."""
        if event_id and not self.seen(event_id):
            self.remember(event_id)
