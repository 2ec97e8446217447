"""The fault suite (issue 8), marked `faults` (tests/faults/conftest.py): `pytest -m faults` runs it alone.

Item -> test:
 1 signature matrix: tests/webhooks/test_signatures.py; replay of a captured webhook: test_replay.py
 2 Redis stopped 30 s at intake: test_redis_outage.py
 3 Postgres stopped at intake: test_postgres_outage.py
 4 the same event 8 times, 5 at once, 3 workers: test_duplicates.py
 5 SIGKILL at each recovery point of a payment: tests/flows/test_payment_crash.py
 6 Redis restarted, 50 queued and 10 in flight: test_redis_restart.py
 7 a service answering 500 for "2 minutes": test_breaker.py
 8 429 storm with Retry-After at Revolut: test_rate_limit.py
 9 8 workers, one Revolut token refresh: tests/connectors/test_tokens.py (test_eight_processes_one_refresh and
   test_eight_workers_hit_401_at_once_one_refresh)
10 10% of webhooks dropped in a burst of 1,000: test_dropped_webhooks.py
11 malformed and hostile bodies: test_hostile_bodies.py
12 secrets: test_secrets.py
Gap found here and closed since (syncengine/outbox.py): test_fanout_broker_loss.py.
"""
