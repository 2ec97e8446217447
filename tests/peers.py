"""Real vendor servers for the tests (the harnesses in the project's shared `peers/` folder): a real
Directus 11.17 and a real ERPNext v15 on loopback, started by their own `run.sh`.

The Directus peer runs in every test session (CI included: npm is reachable there); the ERPNext peer is
heavy (about 3 minutes cold, 1.3 GB), so its tests run on demand: `pytest -m peers`, or
`SYNCENGINE_TEST_PEERS=erpnext pytest ...`. A harness that cannot be found or started fails the tests
that need it, with the reason: a peer test never passes by skipping.

Variables: `SYNCENGINE_PEERS_DIR` (the harness folder; default `../shared/peers` beside the checkout),
`SYNCENGINE_TEST_DIRECTUS_HOME` / `SYNCENGINE_TEST_DIRECTUS_PORT` (this suite's own Directus, so a
developer's running peer is never wiped), `SYNCENGINE_TEST_ERPNEXT_HOME` (default: the harness default).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path

from tests.support import ROOT

# Peers whose tests run without being asked for; the others need `-m peers` or SYNCENGINE_TEST_PEERS.
ALWAYS = frozenset({"directus"})
_CANDIDATES = (
    ROOT.parent / "shared" / "peers",
    ROOT.parent.parent / "shared" / "peers",
    Path("/work/shared/peers"),
)


class PeerUnavailable(RuntimeError):
    """The harness is missing or its server did not start: the peer tests fail with this reason."""


def peers_dir() -> Path:
    configured = os.environ.get("SYNCENGINE_PEERS_DIR")
    candidates = [Path(configured)] if configured else list(_CANDIDATES)
    for path in candidates:
        if (path / "directus" / "run.sh").exists():
            return path
    raise PeerUnavailable(
        f"no peers harness in {', '.join(map(str, candidates))}: set SYNCENGINE_PEERS_DIR to the folder "
        "holding directus/run.sh and erpnext/run.sh"
    )


def requested() -> set[str]:
    """Peers asked for by SYNCENGINE_TEST_PEERS (comma-separated, or `all`)."""
    raw = os.environ.get("SYNCENGINE_TEST_PEERS", "")
    names = {name.strip() for name in raw.split(",") if name.strip()}
    return {"directus", "erpnext"} if "all" in names else names


def _exports(text: str) -> dict[str, str]:
    """The variables of the `export A=1 B="x y"` lines a harness prints on stdout."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export "):
            for word in shlex.split(line[len("export ") :]):
                name, _, value = word.partition("=")
                if re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
                    found[name] = value
    return found


def _run(script: Path, env: dict[str, str], timeout: float) -> dict[str, str]:
    """The harness's export lines. A harness that overruns is stopped with everything it started (its own
    process group: an `npm ci` left running would race the next attempt in the same home)."""
    args = ["bash", str(script), *(["--env"] if script.parent.name == "directus" else [])]
    with subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise PeerUnavailable(f"{script} did not finish in {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise PeerUnavailable(f"{script} exited {proc.returncode}:\n{tail}")
    exports = _exports(stdout)
    if not exports:
        raise PeerUnavailable(f"{script} printed no export line")
    return exports


def _once(start: Callable[[], dict[str, str]]) -> Callable[[], dict[str, str]]:
    """One attempt per session: a peer that failed to start fails every test that needs it with the same
    reason, instead of each test starting the harness again (a cold start is minutes)."""
    outcome: list[dict[str, str] | PeerUnavailable] = []

    @wraps(start)
    def get() -> dict[str, str]:
        if not outcome:
            try:
                outcome.append(start())
            except PeerUnavailable as exc:
                outcome.append(exc)
        if isinstance(outcome[0], PeerUnavailable):
            raise outcome[0]
        return outcome[0]

    return get


def directus_home() -> Path:
    default = Path(tempfile.gettempdir()) / "syncengine-test-directus"
    return Path(os.environ.get("SYNCENGINE_TEST_DIRECTUS_HOME") or default)


@_once
def directus() -> dict[str, str]:
    """This suite's Directus, started on a fresh database once per session: `DIRECTUS_URL`, `DIRECTUS_TOKEN`
    (the admin static token). A cold start installs Directus (about 3.5 minutes); a warm one takes seconds."""
    env = dict(
        os.environ, RESET="1", DIRECTUS_PEER_HOME=str(directus_home()),
        DIRECTUS_PORT=os.environ.get("SYNCENGINE_TEST_DIRECTUS_PORT", "18055"),
    )  # fmt: skip
    return _run(peers_dir() / "directus" / "run.sh", env, timeout=900)


@_once
def erpnext() -> dict[str, str]:
    """The ERPNext peer (shared by every session: its site is never reset, so tests name what they make
    uniquely): `ERPNEXT_URL`, `ERPNEXT_API_KEY`, `ERPNEXT_API_SECRET`, `ERPNEXT_COMPANY`, and, while its
    listener runs, `ERPNEXT_WEBHOOK_URL`/`ERPNEXT_WEBHOOK_LOG`."""
    env = dict(os.environ)
    if os.environ.get("SYNCENGINE_TEST_ERPNEXT_HOME"):
        env["ERPNEXT_PEER_HOME"] = os.environ["SYNCENGINE_TEST_ERPNEXT_HOME"]
    return _run(peers_dir() / "erpnext" / "run.sh", env, timeout=1200)


def get(name: str) -> dict[str, str]:
    return {"directus": directus, "erpnext": erpnext}[name]()
