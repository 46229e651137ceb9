"""A user's command sent in the middle of a timer's sweep (issue 11, B8).

The test wraps a function the sweep calls once per unit or record while it computes; on
the ``at``-th call the user's command runs, on the same thread. Were the sweep still
computing inside its unit of work, that command would wait for the log's writer lock
until the lock timeout and fail; a phased sweep (``shared.app.Steps``) computes on a read
connection, so the command is recorded at once. The proof is then the order of events in
the log (``before`` / ``after`` are the log's head around the command), not a clock."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Interruption:
    at: int
    calls: int = 0
    result: Any = None
    error: BaseException | None = None
    before: int | None = None  # the log's head just before the command ...
    after: int | None = None   # ... and just after it

    def check(self) -> None:
        """The command ran, mid-sweep, and did not wait for the timer."""
        assert self.calls >= self.at, "the sweep called the hook %d times, not %d" % (self.calls, self.at)
        assert self.error is None, "the command failed (waited for the timer?): %r" % (self.error,)
        assert self.after > self.before, "the command recorded nothing"


def interrupt(monkeypatch, owner, name: str, act: Callable[[], Any], head: Callable[[], int],
              at: int = 1) -> Interruption:
    """Replace ``owner.name`` so that its ``at``-th call, once computed, runs ``act()``."""
    original = getattr(owner, name)
    seen = Interruption(at)

    def hooked(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.calls += 1
        if seen.calls == at:
            seen.before = head()
            try:
                seen.result = act()
            except Exception as exc:  # noqa: BLE001 - kept for check()
                seen.error = exc
            seen.after = head()
        return out

    monkeypatch.setattr(owner, name, hooked)
    return seen
