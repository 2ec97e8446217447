"""An operator's mistake: what is wrong and what to do, as one line, never a traceback.

The core raises it where configuration is wrong (settings: a variable that is not a number); the command
line (commands.explain) raises it for its own checks, turns the environment's failures into it, and prints it.
"""

from __future__ import annotations

USAGE = 2  # a usage, configuration or environment mistake: the command did nothing
PROBLEMS = 1  # the command ran and found (or left) something wrong


class Mistake(Exception):
    """Something the operator can put right: what is wrong, and what to do about it."""

    def __init__(self, what: str, fix: str, code: int = USAGE) -> None:
        super().__init__(f"{what}: {fix}")
        self.what, self.fix, self.code = what, fix, code
