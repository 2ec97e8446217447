"""Seeded random runs: people created, edited and deleted in Invoice Ninja, ERPNext, Mautic and Directus as
users do, their webhooks delayed, reordered, duplicated, dropped or held to the end by the proxy, the worker
killed now and then, edits in the same second; after quiescence and one `syncengine sweep`, every system
agrees on every carried field by the conflict rule, no system holds a person twice, and no deleted person is
back. A failure prints the seed (replay it with `--seed S`) and its trace."""

from __future__ import annotations

import pytest


@pytest.mark.timeout(600)  # the first seed of a batch runs the whole batch: about a minute, two quiescences
def test_every_system_ends_equal_whatever_the_webhooks_do(seed: int, convergence) -> None:
    outcome = convergence.outcome(seed)
    assert not outcome.problems, outcome.report()
