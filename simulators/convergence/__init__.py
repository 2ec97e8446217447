"""Convergence runs: seeded random edits of contacts in the four systems that carry them, with webhooks
delayed, reordered, duplicated, dropped and held by simulators.webhook_proxy and the worker killed now and
then; after quiescence and one sweep, every system must agree. Shared by tests/convergence and
bench/convergence.py."""
