"""CPU seconds by part of a deployment, read from /proc (Linux): where a benchmark's time goes on a machine
whose cores are the bottleneck. A process's figure includes its children that ended and were waited for
(cutime), so the pool processes a worker recycled and the Postgres backends that closed still count.
Elsewhere (no /proc) every part reads 0 and the report says so."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return (PROC / "self" / "stat").exists()


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds of the process and its waited-for children)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
    # after the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), counted from field 3
    return name, int(rest[1]), sum(int(v) for v in rest[11:15]) / TICK


def _command(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _processes() -> dict[int, tuple[str, int, float]]:
    found = {}
    for entry in PROC.iterdir() if available() else ():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def tree(pid: int, procs: dict[int, tuple[str, int, float]] | None = None) -> float:
    """CPU seconds of `pid` and every live descendant (each with its own ended children), from `procs`
    (one reading of /proc) or a fresh reading."""
    procs = _processes() if procs is None else procs
    children: dict[int, list[int]] = {}
    for child, (_name, parent, _cpu) in procs.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in procs:
            total += procs[current][2]
            todo += children.get(current, [])
    return total


def servers(name: str, argument: str = "") -> float:
    """CPU seconds of every process tree named `name` whose parent is not one (the Postgres postmaster with
    its backends, redis-server), with `argument` in its command line: a server shared with other work
    counts that work too."""
    procs = _processes()
    roots = [
        pid for pid, (n, parent, _cpu) in procs.items()
        if n == name and procs.get(parent, ("",))[0] != name and argument in _command(pid)
    ]  # fmt: skip
    return sum(tree(pid, procs) for pid in roots)


def own() -> float:
    """This process (the simulators run in its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ended_children() -> float:
    """This process's children that ended and were waited for (a command run to its end)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Meter:
    """Named parts read at `start` and at `stop`; `spent` is each part's CPU seconds in between."""

    parts: dict[str, Callable[[], float]]
    at_start: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def start(self) -> Meter:
        self.at_start = {name: read() for name, read in self.parts.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.spent = {name: read() - self.at_start[name] for name, read in self.parts.items()}
        return self.spent

    def line(self, seconds: float, objects: int) -> str:
        """ "worker 40.1 s (41.8 ms/object), ... = 72.0 CPU-s in 57.0 s: 1.3 of 2 cores" """
        if not available():
            return "CPU by part: needs /proc (Linux)"
        total = sum(self.spent.values())
        parts = ", ".join(
            f"{name} {cpu:.1f} s ({1000 * cpu / objects:.1f} ms/object)"
            for name, cpu in sorted(self.spent.items(), key=lambda kv: -kv[1])
        )
        busy = f"{total / seconds:.2f} of {os.cpu_count()} cores"
        return f"{parts} = {total:.1f} CPU-s in {seconds:.1f} s: {busy}"
