"""Who runs a process and with which command, read from ``/proc`` (Linux).

Elsewhere, for a process that has ended, or one the reader may not inspect, the user is
:data:`UNKNOWN` and the command ``None``. NVML reports process ids as the host sees
them: inside a container a process id can name another process, or none.
"""

from __future__ import annotations

import pwd
from pathlib import Path

UNKNOWN = "?"


def process_user(pid: int) -> str:
    """The name of the user running ``pid`` (its real uid's name, or the uid itself
    when it has no name), or :data:`UNKNOWN`."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return UNKNOWN
    uids = [line.split()[1] for line in status.splitlines() if line.startswith("Uid:")]
    if not uids:
        return UNKNOWN
    try:
        return pwd.getpwuid(int(uids[0])).pw_name
    except KeyError:
        return uids[0]


def process_command(pid: int) -> str | None:
    """The command line of ``pid``, its arguments joined by spaces, or ``None`` (gone,
    not readable, or a process without one)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    arguments = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    return " ".join(arguments) or None
