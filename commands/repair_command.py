"""`syncengine reconcile --repair [--dry-run]`: the anti-entropy pass (tasks.repair) run here and now by an
operator, with progress on a terminal and one line per difference repaired. A vendor that cannot be listed
is one line; the calls go through breakers of this process only (syncengine.breaker.keep_local)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from syncengine.breaker import keep_local
from syncengine.progress import progress

from .explain import PROBLEMS, Mistake

if TYPE_CHECKING:
    from tasks.repair import Repair


def run(system: str | None, kind: str | None, *, repair: bool) -> int:
    """0 when nothing differs or every difference was repaired (or, dry, only listed); 1 when a repair
    or a listing failed."""
    from tasks import repair as anti_entropy

    keep_local()
    targets = anti_entropy.kinds(system, kind)
    if not targets:
        raise Mistake(
            f"nothing to compare for {system or 'any configured system'} {kind or ''}".rstrip(),
            "configure the system (README: Configuration); kinds compared: contact, product, invoice",
        )
    with progress("reconcile", total=len(targets), unit="kinds") as bar:

        def on_kind(s: str, k: str) -> Callable[[Repair], None]:
            bar.describe(f"reconcile {s} {k}")
            bar.advance()
            return lambda r: print(_line(r))

        repairs = anti_entropy.run(system, kind, dry_run=not repair, on_kind=on_kind)
    failed = [r for r in repairs if r.failed]
    for r in failed:
        if r.action == "list":
            print(f"{r.system} {r.kind}: {r.outcome}", file=sys.stderr)
    done = "would be repaired" if not repair else "repaired"
    print(f"{len(repairs)} difference(s): {len(repairs) - len(failed)} {done}, {len(failed)} failed"
          if repairs else "nothing differs: nothing to repair")  # fmt: skip
    return PROBLEMS if failed else 0


def _line(r: Repair) -> str:
    """ "mautic contact 12 (record 3): content differs from the hub: merged, 1 field(s) changed" """
    subject = f"{r.system} {r.kind} {r.external_id or '-'} (record {r.record_id})"
    return f"{subject}: {r.problem}: {r.outcome or r.action}"
