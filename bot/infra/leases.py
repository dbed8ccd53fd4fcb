"""Who holds an outbox lease, and whether that holder is provably dead.

Every outbox worker gets an owner id when it is created, stored in ``outbox.claimed_by`` on the rows it claims::

    <host>:<pid namespace>:<pid>:<process start>:<generation>     e.g.  web-1:4026531836:4242:918273:3f9c0a1b2d4e

* ``host``: the hostname (at most 40 characters, ``:`` never occurs in one);
* ``pid namespace``: the inode of ``/proc/self/ns/pid`` ("-" where unknown). Two containers may share a hostname
  and even a pid; they never share a pid namespace, so a process only judges owners it can see;
* ``pid`` and ``process start``: the process and its start time in clock ticks since boot (field 22 of
  ``/proc/<pid>/stat``, "-" where unknown). A pid that is alive with another start time was reused: the owner is dead;
* ``generation``: random per worker, so that two workers of one process (tests) or two lives of one pid never share
  an id (the outcome and heartbeat UPDATEs compare it).

An owner is *provably dead* only if it is on this host and pid namespace and its pid is gone, or alive with another
start time. Anything else (another host, another namespace, this very process, no ``/proc``) counts as alive: its
rows wait for the lease to run out, they are never taken early.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

UNKNOWN = "-"


@dataclass(frozen=True)
class Owner:
    """A lease holder; ``str(owner)`` is what ``outbox.claimed_by`` stores (at most 96 characters)."""

    host: str
    pid_ns: str
    pid: int
    started: str
    generation: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid_ns}:{self.pid}:{self.started}:{self.generation}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner a ``claimed_by`` value names; None for anything else (NULL, an older format)."""
        parts = text.split(":")
        if len(parts) != 5 or not parts[2].isdecimal():
            return None
        host, pid_ns, pid, started, generation = parts
        return cls(host, pid_ns, int(pid), started, generation)


class ProcessTable(Protocol):
    """The boundary to the operating system's process table (tests pass a fake)."""

    def start_time(self, pid: int) -> str | None:
        """The process's start time (an opaque token), UNKNOWN if it runs but the time cannot be read, None if no
        process has this pid."""
        ...


class LinuxProcesses:
    """The real process table, read from ``/proc``; without ``/proc`` a pid is alive as long as ``kill(pid, 0)``
    finds it, with an unknown start time (so pid reuse cannot be proven and such owners count as alive)."""

    def start_time(self, pid: int) -> str | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return self._exists(pid)
        # The command name (field 2) is in parentheses and may hold spaces: count fields after the last ")".
        fields = stat.rsplit(")", 1)[-1].split()
        return fields[19] if len(fields) > 19 else UNKNOWN

    @staticmethod
    def _exists(pid: int) -> str | None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return UNKNOWN
        return UNKNOWN


def _pid_namespace() -> str:
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return UNKNOWN
    inode = link.rpartition("[")[2].rstrip("]")
    return inode if inode.isdecimal() else UNKNOWN


def current_owner(processes: ProcessTable | None = None) -> Owner:
    """A fresh owner id for a worker of this process (a new generation on every call)."""
    pid = os.getpid()
    host = socket.gethostname().replace(":", "_")[:40] or "localhost"
    started = (processes or LinuxProcesses()).start_time(pid) or UNKNOWN
    return Owner(host, _pid_namespace(), pid, started, secrets.token_hex(6))


def provably_dead(owner: Owner, me: Owner, processes: ProcessTable) -> bool:
    """True only when ``owner`` is a process of this host and pid namespace that has exited (or whose pid now
    belongs to a process started at another time)."""
    if owner.host != me.host or owner.pid_ns != me.pid_ns or UNKNOWN in (owner.pid_ns, me.pid_ns):
        return False
    if owner.pid == me.pid and owner.started == me.started:
        return False  # this very process (another worker of it, e.g. in tests): alive
    started = processes.start_time(owner.pid)
    if started is None:
        return True
    return UNKNOWN not in (started, owner.started) and started != owner.started
