"""Mautic 5 simulator (see ``simulator.py``)."""

from simulators.mautic.simulator import MauticSimulator

__all__ = ["MauticSimulator"]
