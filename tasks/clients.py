"""F1 and F2: a contact created or changed anywhere reaches every system that keeps contacts."""

from __future__ import annotations

from syncengine.vendors import erpnext

from .dispatch import handles
from .sync import as_sent, directus_items, erpnext_document, sync_handler, under

handles("invoiceninja", "create_client", "update_client", "restore_client")(
    sync_handler("invoiceninja", "contact", as_sent)
)
handles("mautic", "mautic.lead_post_save_new", "mautic.lead_post_save_update")(
    sync_handler("mautic", "contact", under("contact"))
)
handles("erpnext", *erpnext.changes("Customer"))(
    sync_handler("erpnext", "contact", erpnext_document("Customer"))
)
handles("directus", "contacts.items.create", "contacts.items.update")(
    sync_handler("directus", "contact", directus_items("contacts"))
)
