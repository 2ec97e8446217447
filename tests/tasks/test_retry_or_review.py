"""The one 'retry what may pass later, review what cannot' rule (tasks.dispatch.run_or_review) as bookings
and OCR use it: when it retries, after how long, and what a review says and does to the outbox row."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded

from syncengine import outbox
from syncengine.celery_app import MAX_COUNTDOWN
from syncengine.errors import Permanent, Retryable
from tasks.dispatch import run_or_review


class FakeTask:
    """What the rule uses of a bound task: its retry count, its name, and retry() (recorded)."""

    name = "tests.fake"

    def __init__(self, retries: int = 0) -> None:
        self.request = SimpleNamespace(retries=retries)
        self.retries: list[dict[str, Any]] = []

    def retry(self, **options: Any) -> Retry:
        self.retries.append(options)
        return Retry(exc=options["exc"], when=options["countdown"])


def failing(exc: Exception):
    def work() -> str:
        raise exc

    return work


def reviewer(reasons: list[str]):
    def review(reason: str) -> str:
        reasons.append(reason)
        return "reviewed"

    return review


def claim() -> outbox.Claim:
    return outbox.Claim(row_id=1, token="test-claim", attempts=1, replays=0)


def test_a_booking_under_its_limit_is_retried_with_the_error_and_the_backoff():
    task, reasons = FakeTask(retries=2), []
    with pytest.raises(Retry):
        run_or_review(task, failing(Retryable("down")), reviewer(reasons), limit=3, what="booking")
    [options] = task.retries
    assert reasons == [] and str(options["exc"]) == "down" and options["max_retries"] is None
    assert 0 <= options["countdown"] <= 5 * 2**2  # the third retry: base 5 s, doubled twice


def test_retry_after_is_waited_but_never_past_the_broker_timeout():
    task = FakeTask()
    with pytest.raises(Retry):
        run_or_review(task, failing(Retryable("429", retry_after=7)), reviewer([]), limit=3, what="x")
    with pytest.raises(Retry):
        run_or_review(task, failing(Retryable("429", retry_after=10**9)), reviewer([]), limit=3, what="x")
    assert [o["countdown"] for o in task.retries] == [7, MAX_COUNTDOWN]


def test_a_booking_at_its_limit_is_reviewed_and_fails_its_outbox_row():
    task, reasons, held = FakeTask(retries=3), [], claim()
    with outbox.running(held):
        outcome = run_or_review(task, failing(Retryable("down")), reviewer(reasons), limit=3, what="booking")
    assert outcome == "reviewed" and task.retries == []
    assert reasons == ["gave up after 3 retries: down"]
    assert held.failure == "booking: gave up after 3 retries: down"


def test_a_permanent_failure_is_reviewed_at_once_and_fails_the_row():
    task, reasons, held = FakeTask(), [], claim()
    with outbox.running(held):
        outcome = run_or_review(
            task, failing(Permanent("refused")), reviewer(reasons), limit=3, what="booking"
        )
    assert outcome == "reviewed" and reasons == ["refused"] and held.failure == "booking: refused"


def test_ocr_words_its_own_reason_and_leaves_the_row_to_close_as_done():
    task, reasons, held = FakeTask(retries=8), [], claim()
    with outbox.running(held):
        outcome = run_or_review(
            task, failing(Retryable("500")), reviewer(reasons), limit=8, what=None,
            gave_up=lambda retries, exc: f"OCR failed after {retries} retries: {exc}",
        )  # fmt: skip
    assert outcome == "reviewed" and reasons == ["OCR failed after 8 retries: 500"] and held.failure is None


def test_ocr_retries_on_its_own_base_after_its_hook_and_without_the_error():
    task, seen = FakeTask(retries=1), []
    with pytest.raises(Retry):
        run_or_review(
            task, failing(SoftTimeLimitExceeded()), reviewer([]), limit=8, what=None,
            retryable=(Retryable, SoftTimeLimitExceeded), base=10.0, carry=False,
            before_retry=lambda exc, wait: seen.append((type(exc), wait, len(task.retries))),
        )  # fmt: skip
    [options] = task.retries
    assert options["exc"] is None and 0 <= options["countdown"] <= 10.0 * 2
    assert seen == [(SoftTimeLimitExceeded, options["countdown"], 0)]  # before the retry, with its delay


def test_a_hopeless_failure_is_reviewed_before_its_limit():
    task, reasons = FakeTask(retries=0), []
    outcome = run_or_review(
        task, failing(Retryable("lost")), reviewer(reasons), limit=8, what=None,
        hopeless=lambda exc: f"hopeless: {exc}",
    )  # fmt: skip
    assert outcome == "reviewed" and reasons == ["hopeless: lost"] and task.retries == []


def test_a_task_that_reviews_its_own_permanent_failures_lets_others_through():
    with pytest.raises(Permanent):
        run_or_review(FakeTask(), failing(Permanent("bug")), reviewer([]), limit=8, what=None, permanent=())
