"""F3: a product created or changed in Invoice Ninja or ERPNext reaches the other and Directus."""

from __future__ import annotations

from syncengine.vendors import erpnext

from .dispatch import handles
from .sync import as_sent, directus_items, erpnext_document, sync_handler

handles("invoiceninja", "create_product", "update_product", "restore_product")(
    sync_handler("invoiceninja", "product", as_sent)
)
handles("erpnext", *erpnext.changes("Item"))(sync_handler("erpnext", "product", erpnext_document("Item")))
handles("directus", "products.items.create", "products.items.update")(
    sync_handler("directus", "product", directus_items("products"))
)
