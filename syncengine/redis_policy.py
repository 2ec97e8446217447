"""Redis must keep every key we give it: the broker's queued tasks, redbeat's schedule and lock, our locks,
breaker states and counters. A Redis with a `maxmemory-policy` other than `noeviction` drops keys when it
fills up; that loses tasks and schedules silently (`allkeys-*`), or lets two processes into a critical
section at once (`volatile-*` drops keys that expire, and our locks are such keys). `noeviction` makes a
full Redis refuse writes instead: loud, and nothing lost.

Read from INFO (managed services such as Heroku's may refuse CONFIG) when worker, beat and serve start, and
by /readyz.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

SAFE = "noeviction"
FIX = (
    "set it to noeviction (Heroku: `heroku redis:maxmemory <redis add-on> --policy noeviction -a <app>`; "
    "your own Redis: `maxmemory-policy noeviction` in redis.conf, or CONFIG SET maxmemory-policy noeviction)"
)


@dataclass(frozen=True)
class Verdict:
    policy: str | None  # None: no Redis configured, or it could not be asked
    refuse: bool = False
    problem: str = ""  # one line when the policy is not noeviction

    @property
    def ready(self) -> bool:
        return not self.refuse


def judge(policy: str) -> Verdict:
    if policy == SAFE:
        return Verdict(policy)
    if policy.startswith("volatile-"):
        return Verdict(policy, problem=(
            f"Redis's maxmemory-policy is {policy}: when Redis fills up it drops keys that expire, and our "
            "locks are such keys (a record's lock, the Revolut token refresh, redbeat's), so two processes "
            f"could write to a vendor, or pay, at once; {FIX}"
        ))  # fmt: skip
    return Verdict(policy, refuse=True, problem=(
        f"Redis's maxmemory-policy is {policy}: when Redis fills up it drops any key, queued tasks and "
        f"redbeat's schedule among them; {FIX}"
    ))  # fmt: skip


def read_policy(client: Any) -> str:
    """The policy as INFO memory reports it, else as CONFIG GET does."""
    policy = client.info("memory").get("maxmemory_policy")
    if policy is None:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    return str(policy)


def verdict() -> Verdict:
    """The current Redis's verdict; a Redis that cannot be asked now is not held against it here (the
    broker check says whether it is reachable)."""
    from .shared_state import get_redis

    client = get_redis()
    if client is None:
        return Verdict(None)
    try:
        return judge(read_policy(client))
    except Exception as exc:
        return Verdict(None, problem=f"could not read Redis's maxmemory-policy ({type(exc).__name__})")


def check_at_start(role: str) -> bool:
    """Before worker, beat or serve starts: False (after one line saying why and what to do) when it must
    not; a warning line for a policy that is risky but not fatal."""
    found = verdict()
    if found.refuse:
        print(f"refusing to start {role}: {found.problem}", file=sys.stderr)
        return False
    if found.problem:
        print(f"WARNING ({role}): {found.problem}", file=sys.stderr)
    return True
