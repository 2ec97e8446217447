"""A seed's plan: a few people created in random systems, then random edits of one field at a time in
random systems (some in the same second as the previous step, some a little later, some after the last
one had time to spread) and now and then a delete, after which the person is left alone. `plan(seed)` is the
same list every time; `Runner` carries it out against a stack and writes down what it did and when."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from simulators.convergence.contacts import CARRIES, SYSTEMS, Contacts

SAME_SECOND, SOON, LATER = 0.0, (0.2, 1.2), (1.5, 3.5)  # pauses before a step, in seconds
# How long a step waits for the person's copy to reach the system it edits; then it edits the copy where
# the person was created instead (a create whose webhook was lost spreads only with the sweep).
COPY_WAIT = 6.0


@dataclass(frozen=True)
class Step:
    pause: float  # seconds after the previous step of the same seed
    person: int
    action: str  # create, edit, delete
    system: str
    values: dict[str, str] = field(default_factory=dict)  # create: every field the system carries; edit: one
    n: int = 0  # the step's number in the seed's plan (values are made from it)

    def describe(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.values.items())
        return f"{self.action} p{self.person} in {self.system} {shown}".rstrip()


@dataclass(frozen=True)
class Write:
    """A field set in one system, between `start` and `end` (time.time()): the vendor stamped it then."""

    system: str
    field: str
    value: str | None
    start: float
    end: float


@dataclass
class Person:
    email: str
    writes: list[Write] = field(default_factory=list)
    deleted_in: str | None = None
    created: bool = False
    origin: str | None = None  # the system it was created in


def value(seed: int, person: int, name: str, n: int) -> str:
    """Every value written is unique, so a value seen at the end names the step that wrote it."""
    if name == "phone":
        return f"+3360{seed % 1000:03d}{person}{n:03d}"
    if name == "city":
        return f"City-{seed}-{person}-{n}"
    return f"FR{seed % 10000:04d}{person}{n:04d}"


def plan(seed: int, people: int = 2, steps: int = 5, delete_rate: float = 0.12) -> list[Step]:
    rng = random.Random(seed)
    out: list[Step] = []
    alive = list(range(people))
    origin: dict[int, str] = {}
    for person in range(people):
        system = origin[person] = rng.choice(SYSTEMS)
        values = {name: value(seed, person, name, 0) for name in CARRIES[system]}
        out.append(Step(rng.choice((SAME_SECOND, rng.uniform(*SOON))), person, "create", system, values))
    for n in range(1, steps + 1):
        if not alive:
            break
        person, system = rng.choice(alive), rng.choice(SYSTEMS)
        pause = rng.choice((SAME_SECOND, rng.uniform(*SOON), rng.uniform(*LATER)))
        if rng.random() < delete_rate:
            alive.remove(person)
            # Half the deletes where the person was made: its create's webhook may still be on its way.
            where = origin[person] if rng.random() < 0.5 else system
            out.append(Step(pause, person, "delete", where, n=n))
            continue
        name = rng.choice(CARRIES[system])
        out.append(Step(pause, person, "edit", system, {name: value(seed, person, name, n)}, n))
    return out


class Runner:
    """Carries out one seed's plan; `trace` holds every step and fault that touched this seed."""

    def __init__(self, seed: int, tag: str, contacts: Contacts, steps: list[Step]) -> None:
        self.seed, self.contacts, self.steps = seed, contacts, steps
        self.people = {p: Person(f"conv-{tag}-s{seed}-p{p}@example.test") for p in {s.person for s in steps}}
        self.trace: list[str] = []
        self.deleted_ids: dict[str, set[str]] = {system: set() for system in SYSTEMS}
        self.t0 = time.time()
        self._lock = threading.Lock()

    def note(self, line: str) -> None:
        with self._lock:
            self.trace.append(f"+{time.time() - self.t0:6.2f}s {line}")

    def run(self) -> None:
        self.t0 = time.time()
        for step in self.steps:
            time.sleep(step.pause)
            try:
                self._do(step)
            except Exception as exc:  # the run goes on; the trace says what could not be done
                self.note(f"{step.describe()}: not done ({type(exc).__name__}: {str(exc)[:160]})")

    def _do(self, step: Step) -> None:
        person = self.people[step.person]
        if step.action != "create" and not self._wait_for_copy(step.system, person.email):
            step = self._at_origin(step)
        start = time.time()
        if step.action == "create":
            self.contacts.create(step.system, person.email, f"S{self.seed}P{step.person}", step.values)
            person.created, person.origin = True, step.system
            written = {name: step.values.get(name) for name in CARRIES[step.system]}
        elif step.action == "edit":
            self.contacts.edit(step.system, person.email, *next(iter(step.values.items())))
            written = step.values
        else:
            self.deleted_ids[step.system].add(self.contacts.delete(step.system, person.email))
            person.deleted_in, written = step.system, {}
        end = time.time()
        person.writes += [Write(step.system, name, v, start, end) for name, v in written.items()]
        self.note(step.describe())

    def _wait_for_copy(self, system: str, email: str) -> bool:
        deadline = time.monotonic() + COPY_WAIT
        while not any(c.live for c in self.contacts.copies(system, email)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def _at_origin(self, step: Step) -> Step:
        """The step moved to the system the person was created in (phone if that one lacks the field)."""
        origin = self.people[step.person].origin or step.system
        self.note(f"{step.describe()}: no live copy there after {COPY_WAIT:.0f} s, done in {origin} instead")
        if step.action == "delete":
            return Step(0, step.person, "delete", origin, n=step.n)
        name = next(iter(step.values))
        if name not in CARRIES[origin]:
            name = "phone"
        values = {name: value(self.seed, step.person, name, step.n)}
        return Step(0, step.person, "edit", origin, values, step.n)
