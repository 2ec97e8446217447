"""One convergence run of many seeds side by side in one stack: each seed works on people of its own, its
webhooks get faults drawn from its own seed, the worker is killed now and then; then the held webhooks
arrive (last), everything settles, one `syncengine sweep` runs, everything settles again, and each seed's
people are checked (simulators.convergence.oracle)."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

from simulators.convergence import oracle
from simulators.convergence.scenario import Runner, plan
from simulators.convergence.stack import Stack
from simulators.webhook_proxy import PASS, Action, Chaos, Delivery

REDELIVER_EVERY = 10.0  # seconds; the stack's leases are 10 s
EVENT = re.compile(rb'"(?:event|type)"\s*:\s*"([^"]{1,60})"|"(mautic\.[a-z_]+)"')


@dataclass(frozen=True)
class Faults:
    drop: float = 0.08
    duplicate: float = 0.08
    delay: float = 0.12  # by 0.2 to `max_delay` seconds: later deliveries overtake it
    hold: float = 0.05  # until every step is done: the latest webhook of all
    max_delay: float = 4.0
    # Seconds before the first worker kill (so every run has one), then between kills; None: no kills.
    first_kill: tuple[float, float] | None = (2.0, 6.0)
    kill_every: tuple[float, float] = (20.0, 40.0)


@dataclass
class Outcome:
    seed: int
    problems: list[str]
    trace: list[str] = field(default_factory=list)

    def report(self) -> str:
        head = f"seed {self.seed}: " + ("converged" if not self.problems else "; ".join(self.problems))
        return "\n".join([head, f"replay: pytest tests/convergence --seed {self.seed}", *self.trace])


class Router:
    """The proxy's policy: a delivery belongs to the seed whose person it names (by email; a Directus event
    names only keys, looked up in Directus or among the items a seed deleted), and draws its seed's faults."""

    def __init__(self, tag: str, runners: dict[int, Runner], faults: Faults) -> None:
        self.runners = runners
        self.email = re.compile(rf"conv-{tag}-s(\d+)-p\d+@".encode())
        self.chaos = {seed: Chaos(seed, faults.drop, faults.duplicate, faults.delay, faults.hold,
                                  faults.max_delay) for seed in runners}  # fmt: skip

    def __call__(self, delivery: Delivery) -> Action:
        seed = self.owner(delivery)
        if seed is None:
            return Action(PASS)
        action = self.chaos[seed](delivery)
        if action.kind != PASS:
            found = EVENT.search(delivery.body)
            event = f" ({(found.group(1) or found.group(2)).decode()})" if found else ""  # else in the path
            delay = f" {action.delay:.1f}s" if action.delay else ""
            self.runners[seed].note(f"proxy: {action.kind}{delay} {delivery.path}{event} #{delivery.id}")
        return action

    def owner(self, delivery: Delivery) -> int | None:
        found = self.email.search(delivery.body)
        if found:
            seed = int(found.group(1))
            return seed if seed in self.runners else None
        if delivery.sender != "directus":
            return None
        try:
            keys = [str(k) for k in json.loads(delivery.body).get("keys") or []]
        except (ValueError, AttributeError):
            return None
        any_runner = next(iter(self.runners.values()))
        for key in keys:
            found = self.email.search((any_runner.contacts.email_of("directus", key) or "").encode())
            if found and int(found.group(1)) in self.runners:
                return int(found.group(1))
            for runner in self.runners.values():
                if key in runner.deleted_ids["directus"]:
                    return runner.seed
        return None


class Batch:
    """Seeds side by side on one stack: `steps()` carries out every seed's plan under faults, `settle()`
    waits for quiescence, `sweep()` runs `syncengine sweep`, `outcomes()` checks every seed's people."""

    def __init__(self, stack: Stack, seeds: list[int], faults: Faults | None = None, people: int = 2,
                 steps: int = 5) -> None:  # fmt: skip
        assert stack.proxy is not None
        self.stack, self.faults, self.seeds = stack, faults or Faults(), seeds
        tag = uuid.uuid4().hex[:6]
        contacts = stack.contacts()
        self.runners = {seed: Runner(seed, tag, contacts, plan(seed, people, steps)) for seed in seeds}
        self.router = Router(tag, self.runners, self.faults)
        self.trouble: list[str] = []  # what went wrong for every seed at once (no quiescence, a failed sweep)

    @property
    def changes(self) -> int:
        return sum(len(r.steps) for r in self.runners.values())

    def note(self, line: str) -> None:
        for runner in self.runners.values():
            runner.note(line)

    def steps(self) -> None:
        """Every plan at once, with the beat's redelivery and the worker killed now and then; then the
        webhooks held until now are let go (the latest of all)."""
        self.stack.proxy.policy = self.router
        threads = [threading.Thread(target=r.run, name=f"seed-{r.seed}") for r in self.runners.values()]
        stop = threading.Event()
        helpers = [threading.Thread(target=self._kill_now_and_then, args=(stop,)),
                   threading.Thread(target=_redeliver_now_and_then, args=(self.stack, stop))]  # fmt: skip
        for thread in [*threads, *helpers]:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        for thread in helpers:
            thread.join()
        self.stack.proxy.policy = None
        self.note(f"every step done; {self.stack.proxy.release()} held webhooks released")

    def settle(self, timeout: float = 120.0, when: str = "") -> bool:
        started = time.monotonic()
        try:
            slow = self.stack.settle(timeout)
        except TimeoutError as exc:
            self.trouble.append(f"no quiescence {when}: {exc}")
            return False
        for line in slow:
            self.note(f"still waiting {when}: {line}")
        self.note(f"quiet {when} ({time.monotonic() - started:.1f} s)")
        return True

    def sweep(self) -> None:
        try:
            self.stack.sweep()
        except RuntimeError as exc:
            self.trouble.append(str(exc)[:300])
            return
        self.note("syncengine sweep done")

    def outcomes(self) -> dict[int, Outcome]:
        return {seed: _outcome(runner, self.trouble) for seed, runner in self.runners.items()}

    def divergent(self) -> int:
        """People whose systems do not agree (or hold a duplicate, or a deleted person live) right now."""
        return sum(bool(oracle.problems(person, r.contacts)) for r in self.runners.values()
                   for person in r.people.values())  # fmt: skip

    def _kill_now_and_then(self, stop: threading.Event) -> None:
        if self.faults.first_kill is None:
            return
        rng = random.Random(f"kills-{min(self.seeds)}")
        pause = rng.uniform(*self.faults.first_kill)
        while not stop.wait(pause):
            pause = rng.uniform(*self.faults.kill_every)
            self.note("worker killed (SIGTERM, SIGKILL 2 s later), another started")
            started = time.monotonic()
            self.stack.kill_worker()
            self.note(f"new worker ready ({time.monotonic() - started:.1f} s after the SIGTERM)")


def run_batch(stack: Stack, seeds: list[int], faults: Faults | None = None) -> dict[int, Outcome]:
    """The convergence test's run: the steps, quiescence, one sweep, quiescence, the check."""
    batch = Batch(stack, seeds, faults)
    batch.steps()
    batch.settle(when="after the steps")
    batch.sweep()
    batch.settle(when="after the sweep")
    return batch.outcomes()


def _outcome(runner: Runner, trouble: list[str]) -> Outcome:
    found = list(trouble)
    lines = list(runner.trace)
    for number, person in sorted(runner.people.items()):
        for problem in oracle.problems(person, runner.contacts):
            found.append(f"p{number}: {problem}")
        lines.append(f"p{number} {person.email} at the end:")
        lines += oracle.describe(person, runner.contacts)
    return Outcome(runner.seed, found, lines)


def _redeliver_now_and_then(stack: Stack, stop: threading.Event) -> None:
    """The beat's redelivery entry, at the pace of the stack's short leases, while the steps run."""
    while not stop.wait(REDELIVER_EVERY):
        stack.redeliver(grace=REDELIVER_EVERY)
