"""Importing this module registers every contact and product adapter (connectors.mapping.ADAPTERS)."""

from __future__ import annotations

from . import directus_mapping, erpnext_mapping, invoiceninja_mapping, mautic_mapping

__all__ = ["directus_mapping", "erpnext_mapping", "invoiceninja_mapping", "mautic_mapping"]
