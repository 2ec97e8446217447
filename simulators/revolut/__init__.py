"""Revolut Business simulator (see ``simulator.py``); OAuth and webhooks v2 live in their own modules."""

from simulators.revolut.oauth import OAuthClient
from simulators.revolut.simulator import RevolutSimulator

__all__ = ["OAuthClient", "RevolutSimulator"]
