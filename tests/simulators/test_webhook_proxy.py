"""The webhook proxy: what it forwards is what the sender sent, byte for byte, and its faults (hold, drop,
duplicate, delay) do what they say, by hand or drawn from a seed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import pytest
import requests

from simulators import REGISTRY
from simulators.webhook_proxy import DELAY, DROP, DUPLICATE, PASS, Action, Chaos, WebhookProxy, matching
from tests.support import wait_until


@pytest.fixture()
def proxied(hook_receiver) -> Iterator:
    """A proxy in front of the recording receiver; `proxied.proxy`, `proxied.url`."""
    running = WebhookProxy(hook_receiver.url).serve()
    yield running
    running.stop()


def post(url: str, n: int, sender: str = "mautic") -> requests.Response:
    headers = {"Content-Type": "application/json", "X-Sig": f"s{n}"}
    return requests.post(f"{url}/webhooks/{sender}?n={n}", data=b'{"n": %d}' % n, headers=headers, timeout=10)


def received(hook_receiver) -> list[int]:
    return [r["json"]["n"] for r in hook_receiver.received]


def test_a_signed_simulator_webhook_arrives_byte_for_byte_and_still_verifies(hook_receiver, proxied, serve):
    # given a Mautic simulator whose webhooks go through the proxy
    mautic = REGISTRY["mautic"]()
    server = serve(mautic)
    mautic.add_webhook_target(f"{proxied.url}/webhooks/mautic", secret="s3cret",
                              events=["mautic.lead_post_save_new"])  # fmt: skip
    # when a contact is created there
    answer = requests.post(f"{server.url}/api/contacts/new", json={"email": "p@example.test"},
                           auth=("admin", "sim-mautic-pass"), timeout=10)  # fmt: skip
    assert answer.status_code in (200, 201), answer.text
    assert mautic.flush_webhooks(timeout=10)
    # then the receiver got the very bytes Mautic signed, and its signature verifies
    [sent] = mautic.webhook_log
    [got] = hook_receiver.received
    assert got["body"] == sent["body"].encode()
    assert got["path"] == "/webhooks/mautic"
    expected = base64.b64encode(hmac.new(b"s3cret", got["body"], hashlib.sha256).digest()).decode()
    assert got["headers"]["Webhook-Signature"] == sent["headers"]["Webhook-Signature"] == expected
    assert sent["status"] == 200  # the sender heard the receiver's own answer
    assert proxied.proxy.counts() == {PASS: 1}


def test_a_held_delivery_is_overtaken_and_arrives_when_released(hook_receiver, proxied):
    hold = proxied.proxy.hold_next(matching("mautic", r'"n": 1\b'))
    assert post(proxied.url, 1).status_code == 202  # the sender is done with it
    assert hold.wait(5).path == "/webhooks/mautic?n=1"
    assert post(proxied.url, 2).status_code == 200
    assert received(hook_receiver) == [2]
    assert proxied.proxy.release(hold) == 1
    assert proxied.proxy.flush(5)
    assert received(hook_receiver) == [2, 1]
    assert hook_receiver.received[1]["headers"]["X-Sig"] == "s1"


def test_release_without_argument_lets_every_held_delivery_go(hook_receiver, proxied):
    proxied.proxy.hold_next()
    proxied.proxy.hold_next()
    post(proxied.url, 1)
    post(proxied.url, 2)
    assert len(proxied.proxy.held()) == 2 and received(hook_receiver) == []
    assert proxied.proxy.release() == 2
    assert proxied.proxy.flush(5)
    assert sorted(received(hook_receiver)) == [1, 2]


def test_a_hand_drop_loses_only_the_delivery_it_matches(hook_receiver, proxied):
    proxied.proxy.drop_next(matching(pattern=r"n=2"))
    for n in (1, 2, 3):
        post(proxied.url, n)
    assert proxied.proxy.flush(5)
    assert received(hook_receiver) == [1, 3]


def test_the_same_seed_draws_the_same_faults_in_the_same_order():
    def draws(seed: int) -> list[str]:
        chaos = Chaos(seed, drop=0.2, duplicate=0.2, delay=0.2)
        return [chaos(None).kind for _ in range(50)]  # type: ignore[arg-type]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert {DROP, DUPLICATE, DELAY, PASS} <= set(draws(7))


def test_a_duplicate_arrives_twice_and_a_delayed_one_after_its_successor(hook_receiver):
    script = iter([Action(DUPLICATE, 0.2), Action(DELAY, 0.5), Action(PASS)])
    running = WebhookProxy(hook_receiver.url, policy=lambda d: next(script)).serve()
    try:
        for n in (1, 2, 3):
            post(running.url, n)
        assert running.proxy.flush(5)
    finally:
        running.stop()
    assert sorted(received(hook_receiver)) == [1, 1, 2, 3]
    assert received(hook_receiver).index(3) < received(hook_receiver).index(2)


def test_a_delayed_copy_meeting_a_5xx_is_retried(hook_receiver):
    hook_receiver.statuses = [503, 200]
    running = WebhookProxy(hook_receiver.url, policy=lambda d: Action(DELAY, 0.1)).serve()
    try:
        post(running.url, 1)
        wait_until(lambda: len(hook_receiver.received) == 2, timeout=5)
        assert running.proxy.flush(5)
    finally:
        running.stop()
    [entry] = running.proxy.log
    assert [result for _, result in entry["events"]] == [503, 200]


def test_a_passed_delivery_answers_the_sender_with_the_receivers_status(hook_receiver, proxied):
    hook_receiver.statuses = [503, 200]
    assert post(proxied.url, 1).status_code == 503  # so a sender that retries still retries
    assert post(proxied.url, 1).status_code == 200
