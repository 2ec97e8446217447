"""Running a command as a person does: its stderr on a real pseudo-terminal (what they see), its stdout
piped (what they would redirect), so a test can read both."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

from tests.support import ROOT


@dataclass
class Screen:
    returncode: int
    terminal: str  # what the terminal received, control sequences included
    stdout: str


def on_a_terminal(
    *args: str, env: dict[str, str], timeout: float = 120, columns: int = 120, stdout_too: bool = False
) -> Screen:
    """`syncengine <args>` with stderr (and stdout too if asked) on a pty of `columns` x 40."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns)}
    proc = subprocess.Popen([sys.executable, "-m", "syncengine", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=slave if stdout_too else subprocess.PIPE,
                            stderr=slave)  # fmt: skip
    os.close(slave)
    seen, deadline = bytearray(), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the command closed its end
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        stdout = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0] or b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    return Screen(proc.returncode, seen.decode(errors="replace"), stdout.decode(errors="replace"))
