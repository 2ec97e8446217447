"""The vendors' APIs as the tasks call them: one connector per vendor (auth, paging, retries, its breaker),
its adapters (`<vendor>_mapping`, registered in `connectors.adapters`), and what `setup` and `webhooks
install` make on the vendor's side (`<vendor>_setup`, `<vendor>_hooks`). Which module is each vendor's is its
line in syncengine.vendors.REGISTRY."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from syncengine.vendors import REGISTRY


def load(reference: str) -> Any:
    """The object a REGISTRY reference names: "module:Name", or a module."""
    module, _, name = reference.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, name) if name else loaded


@cache
def connector_for(system: str) -> Any:
    """The process's one connector for `system`, built from the settings when first needed."""
    reference = REGISTRY[system].connector
    if not reference:
        raise KeyError(f"{system} has no connector built from the settings")
    return load(reference).from_settings()
