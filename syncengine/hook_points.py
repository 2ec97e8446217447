"""Named points in the engine's work where a plugin may act. Nothing acts in production: the crash tests
load a plugin (SYNCENGINE_PLUGINS) that kills the worker at a point, to prove the step survives it."""

from __future__ import annotations

from collections.abc import Callable

_armed: list[Callable[[str], None]] = []


def arm(action: Callable[[str], None]) -> None:
    """Run `action` with the point's name at every point reached from now on, in this process."""
    _armed.append(action)


def reached(point: str) -> None:
    for action in _armed:
        action(point)
