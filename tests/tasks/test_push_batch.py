"""The followers a push takes (tasks.push_batch), on the real store: each pushed under its own claim and
closed; one that raises, or one left when the leader's time is up, given back (pending again, sent to its own
task, its marker lock released); one taken over meanwhile left to its new holder."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from syncengine import outbox
from syncengine.models import utcnow
from tasks import push_batch
from tests.core.test_outbox import set_row, staged, state


class Leader:
    """What a push task hands its batch: the push of one record, and the resend of one given back."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.fail, self.pushed, self.resent = fail or set(), [], []

    def push_one(self, record_id: int, system: str) -> str:
        if record_id in self.fail:
            raise RuntimeError(f"vendor refused {record_id}")
        assert outbox.current() is not None and outbox.current().row_id == rows_of[record_id]
        self.pushed.append(record_id)
        return "created"

    def resend(self, row_id: int, record_id: int, system: str) -> None:
        self.resent.append((row_id, record_id, system))


rows_of: dict[int, int] = {}


def batch_of(*records: int) -> tuple[push_batch.Batch, list[int]]:
    released: list[int] = []
    followers = []
    for record in records:
        row_id = rows_of[record] = staged(record, "directus")
        claim = outbox.claim(row_id)
        assert claim is not None
        followers.append(
            push_batch.Follower(row_id, record, f"m{record}", lambda r=record: released.append(r), claim)
        )
    return push_batch.Batch("directus", {}, followers, {f.marker for f in followers}), released


def leader_of(fake: Leader) -> Any:
    return push_batch._Leader(fake.push_one, fake.resend)


def test_each_follower_is_pushed_under_its_own_claim_and_closed_and_one_that_raises_goes_back():
    batch, released = batch_of(9101, 9102, 9103)
    fake = Leader(fail={9102})
    push_batch._push_followers(batch, leader_of(fake))
    assert fake.pushed == [9101, 9103]
    assert state(rows_of[9101]) is None and state(rows_of[9103]) is None  # done: the rows go
    assert state(rows_of[9102])[:3] == ("pending", 1, False)  # back, for its own task to retry
    assert "vendor refused 9102" in state(rows_of[9102])[3]
    assert fake.resent == [(rows_of[9102], 9102, "directus")]
    assert released == [9101, 9102, 9103] and batch.held == set()


def test_followers_left_when_the_leaders_time_is_up_are_given_back_untried(monkeypatch):
    batch, released = batch_of(9201, 9202)
    monkeypatch.setattr(push_batch, "BUDGET", -1.0)
    fake = Leader()
    push_batch._push_followers(batch, leader_of(fake))
    assert fake.pushed == []
    assert [state(rows_of[r])[:3] for r in (9201, 9202)] == [("pending", 1, False)] * 2
    assert [r for _row, r, _system in fake.resent] == [9201, 9202] and released == [9201, 9202]


def test_a_follower_taken_over_while_it_waited_is_left_to_its_new_holder():
    batch, released = batch_of(9301)
    (follower,) = batch.followers
    follower.claimed -= outbox.LEASE.total_seconds()  # waited past a third of its lease
    set_row(follower.row_id, claimed_by="elsewhere:1:x", locked_at=utcnow() - timedelta(seconds=1))
    fake = Leader()
    push_batch._push_followers(batch, leader_of(fake))
    assert fake.pushed == [] and fake.resent == [] and released == [9301]
    assert state(follower.row_id)[:3] == ("running", 1, True)  # still the other holder's


def test_a_push_that_raises_gives_its_followers_back_untried():
    batch, released = batch_of(9401, 9402)
    fake = Leader()
    with pytest.raises(RuntimeError), push_batch.following(fake.push_one, fake.resend):
        push_batch._current.set(batch)  # what the leader's create gathered
        raise RuntimeError("the leader's own create failed")
    assert fake.pushed == [] and [r for _row, r, _system in fake.resent] == [9401, 9402]
    assert [state(rows_of[r])[:3] for r in (9401, 9402)] == [("pending", 1, False)] * 2
    assert released == [9401, 9402] and push_batch._current.get() is None
