"""One connector per system and process, built from the settings when first needed; which class is each
vendor's is its line in syncengine.vendors.REGISTRY."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from syncengine.vendors import REGISTRY


@cache
def connector_for(system: str) -> Any:
    module, _, name = REGISTRY[system].connector.partition(":")
    if not module:
        raise KeyError(f"{system} has no connector built from the settings")
    return getattr(importlib.import_module(module), name).from_settings()
