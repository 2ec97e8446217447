"""Connector overhead: for each vendor simulator, requests/s of a plain `requests` loop and of our
connector on the same endpoint, in the same run, and their ratio (target >= 0.8x).

    python bench/connectors.py [--seconds 3]

Each simulator runs in its own process (`syncengine simulate`), so the client loop is what is measured.
The connector's extra work per call is the breaker check in Redis, the retry loop and classification.
OpenAI goes through the `openai` package, not this base, and is measured by bench/ocr.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")

from bench.checked import ok  # noqa: E402
from simulators.stack import free_port, wait_for_port  # noqa: E402

# vendor -> (path, auth headers for the simulator's default test credentials)
ENDPOINTS: dict[str, tuple[str, dict[str, str]]] = {
    "invoiceninja": (
        "/api/v1/clients?per_page=20",
        {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"},
    ),
    "directus": ("/items/contacts?limit=20", {"Authorization": "Bearer directus-static-token"}),
    "erpnext": ("/api/v2/document/Customer?limit=20", {"Authorization": "token erp-api-key:erp-api-secret"}),
    # admin:sim-mautic-pass, the simulator's default (simulators.wiring)
    "mautic": ("/api/contacts?limit=20", {"Authorization": "Basic YWRtaW46c2ltLW1hdXRpYy1wYXNz"}),
    "revolut": ("/api/1.0/accounts", {"Authorization": "Bearer bench-access-token"}),
}
# Control-surface calls that make each simulator answer the endpoint: a token as if consent had happened,
# and Revolut's documented 60/min limit lifted (it would measure the limit, not the client).
SETUP: dict[str, list[tuple[str, str, dict | None]]] = {
    "revolut": [("POST", "/_sim/seed", {"tokens": [{"access_token": "bench-access-token"}]}),
                ("DELETE", "/_sim/faults", None)],
}  # fmt: skip


def rate(call: Callable[[], object], seconds: float) -> float:
    for _ in range(20):
        call()
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        call()
        count += 1
    return count / (time.perf_counter() - started)


def measure(vendor: str, seconds: float) -> tuple[float, float, int]:
    from connectors.base import Connector

    path, headers = ENDPOINTS[vendor]
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "syncengine", "simulate", vendor, "--port", str(port)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        for method, control, body in SETUP.get(vendor, []):
            ok(requests.request(method, base + control, json=body, timeout=5))
        status = ok(requests.get(base + path, headers=headers, timeout=5)).status_code
        session = requests.Session()
        plain = rate(
            lambda: ok(session.get(base + path, headers=headers, timeout=(3.05, 30))).content, seconds
        )

        class Bench(Connector):
            service = f"bench-{vendor}"

            def authenticate(self, outgoing: dict[str, str]) -> None:
                outgoing.update(headers)

        connector = Bench(base)
        ours = rate(lambda: connector.request("GET", path).content, seconds)
        return plain, ours, status
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--short", action="store_true", help="CI: 0.3 s per loop")
    args = parser.parse_args()
    if args.short:
        args.seconds = 0.3
    print(f"{'simulator':<14}{'status':>7}{'plain req/s':>14}{'connector req/s':>17}{'ratio':>8}")
    for vendor in ENDPOINTS:
        plain, ours, status = measure(vendor, args.seconds)
        print(f"{vendor:<14}{status:>7}{plain:>14.0f}{ours:>17.0f}{ours / plain:>7.2f}x")
    print("target: connector >= 0.80x of plain requests")


if __name__ == "__main__":
    main()
