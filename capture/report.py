"""Reading a take's ``capture.json`` (what ``capture record`` writes): is the take whole, and if not, why.

Used by ``capture status`` (its exit status) and by the sync (its warnings). The recorder writes ``state``
(``recording``, ``complete``, ``stopped``, ``incomplete``, ``failed``) and ``problems``: one line per thing that
makes the take incomplete (a camera node that died, a camera error, a trigger clock that died and the ticks it
never sent). Reports written before ``problems`` existed are judged from their per-camera ``gaps``.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone

#: states of a take that holds everything that was asked for (``stopped``: ended early by the operator)
WHOLE = ("complete", "stopped")
#: states of a take still being recorded
LIVE = ("recording", "starting")
#: a live state with no update for this long, seconds, means the recorder is gone
STALE_S = 5.0


def take_problems(report: dict) -> list[str]:
    """What makes the take incomplete (empty for a whole or still running take without trouble)."""
    problems = report.get("problems")
    if isinstance(problems, list):
        return [str(p) for p in problems]
    return [f"camera {cam}: {g}" for cam, c in report.get("cameras", {}).items() for g in c.get("gaps", [])]


def recorder_gone(report: dict, now: datetime | None = None) -> str | None:
    """For a take in a live state: why its recorder is known to be gone (killed), else None."""
    if report.get("state") not in LIVE:
        return None
    try:
        age = ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(report["updated"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        age = 0.0
    if age > STALE_S:
        return f"no update for {age:.0f} s"
    pid = report.get("recorder_pid")
    if report.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0 and not _alive(pid):
        return f"recorder process {pid} is gone"
    return None


def take_state(report: dict, now: datetime | None = None) -> str:
    """The state as an operator should read it: an interrupted take is named so."""
    state = str(report.get("state", "?"))
    gone = recorder_gone(report, now)
    if gone:
        return f"{state}, but {gone}: interrupted take"
    if state in WHOLE and take_problems(report):
        return "incomplete"  # a report from before the state existed
    return state


def take_is_bad(report: dict, now: datetime | None = None) -> bool:
    """True when the take is known to be incomplete, failed or interrupted (a live take is not bad yet)."""
    state = report.get("state")
    if recorder_gone(report, now):
        return True
    if state in LIVE:
        return False
    return state not in WHOLE or bool(take_problems(report))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
