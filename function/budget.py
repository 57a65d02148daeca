"""The invocation's time budget: the function must answer before FunctionGraph stops it."""

from __future__ import annotations

import threading
import time
from typing import Any

# Kept back from the platform's deadline to log and return the payload.
SAFETY_MARGIN_SECONDS = 0.5


class Deadline:
    def __init__(self, seconds_left: float | None, start: float | None = None) -> None:
        self._start = time.monotonic() if start is None else start
        self._end = None if seconds_left is None else self._start + seconds_left - SAFETY_MARGIN_SECONDS

    @classmethod
    def from_context(cls, context: Any) -> Deadline:
        """The platform's deadline, read on the handler's first line; unlimited when the context cannot
        tell (a local run without a deadline)."""
        getter = getattr(context, "getRemainingTimeInMilliSeconds", None)
        try:
            millis = float(getter()) if getter is not None else None
        except Exception:  # noqa: BLE001 - a context that cannot tell means no deadline
            millis = None
        return cls(None if millis is None else millis / 1000.0)

    def capped(self, seconds: float) -> Deadline:
        """This deadline, or ``seconds`` counted from when it was made if that ends sooner: an HTTP
        budget runs from the handler's first line, like the platform's."""
        left = seconds if self._end is None else min(seconds, self._end + SAFETY_MARGIN_SECONDS - self._start)
        return Deadline(left, self._start)

    def sooner(self, seconds: float) -> Deadline:
        """This deadline, ``seconds`` earlier (unlimited stays unlimited): time kept back for what must
        follow, such as the record after a selection's DELETEs."""
        sooner = Deadline(None, self._start)
        sooner._end = None if self._end is None else self._end - seconds
        return sooner

    def remaining(self) -> float:
        """Seconds left for work; may be negative once the budget is spent."""
        return float("inf") if self._end is None else self._end - time.monotonic()


class ByteBudget:
    """Bytes that the tasks kept by all targets of one invocation may take together: the targets run
    at once in one function's memory."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._left = total
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Takes ``size`` bytes if they are left."""
        with self._lock:
            if size > self._left:
                return False
            self._left -= size
            return True
