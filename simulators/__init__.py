"""Vendor API simulators for tests, the demo and benchmarks (docs/architecture.md, Simulators).

Which class is each vendor's simulator is its line in ``syncengine.vendors.REGISTRY``. Modules (or classes)
not written yet are skipped, so ``REGISTRY`` holds exactly the simulators that exist.
"""

from __future__ import annotations

import importlib

from simulators.base import Clock, RunningServer, Simulator, route
from syncengine.vendors import REGISTRY as VENDORS

__all__ = ["REGISTRY", "Clock", "RunningServer", "Simulator", "route", "run"]


def _load() -> dict[str, type[Simulator]]:
    found: dict[str, type[Simulator]] = {}
    for name, ref in ((v.name, v.simulator) for v in VENDORS.values()):
        module_name, _, cls_name = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real import error inside an existing module must surface
                raise
            continue
        cls = getattr(module, cls_name, None)
        if cls is not None:  # None: a package still being written (e.g. a directory without its class yet)
            found[name] = cls
    return found


REGISTRY: dict[str, type[Simulator]] = _load()


def run(vendor: str, port: int, host: str = "127.0.0.1") -> None:
    """Serve one simulator in the foreground until interrupted (``syncengine simulate``)."""
    if vendor not in REGISTRY:
        raise SystemExit(f"unknown simulator {vendor!r}; available: {', '.join(sorted(REGISTRY))}")
    import shlex

    from simulators.wiring import simulator_env

    running = REGISTRY[vendor]().serve(host=host, port=port)
    env = simulator_env(vendor, running.url)
    print(f"{vendor} simulator on {running.url} (its control surface: {running.url}/_sim/)")
    accepted = [f"{k}={v}" for k, v in env.items() if not k.endswith(("_URL", "_WEBHOOK_SECRET"))]
    print(f"credentials it accepts: {' '.join(accepted) or 'OAuth tokens from a consent (below)'}")
    print("point the engine at it (in the shell that runs syncengine):")
    print("  export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items()))
    if vendor == "revolut":
        print("Revolut's API wants OAuth tokens: seed a client through the control surface, then "
              "`syncengine revolut consent`")  # fmt: skip
    elif vendor != "openai":
        print("then `syncengine setup --url <the receiver's URL>` subscribes the receiver to its webhooks")
    print("Ctrl-C stops it", flush=True)
    try:
        running.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
