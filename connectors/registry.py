"""One connector per system and process, built from the settings when first needed."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

_CLASSES = {
    "invoiceninja": "connectors.invoiceninja:InvoiceNinja",
    "directus": "connectors.directus:Directus",
    "erpnext": "connectors.erpnext:ERPNextConnector",
    "mautic": "connectors.mautic:MauticConnector",
    "revolut": "connectors.revolut:RevolutConnector",
}


@cache
def connector_for(system: str) -> Any:
    module, _, name = _CLASSES[system].partition(":")
    return getattr(importlib.import_module(module), name).from_settings()
