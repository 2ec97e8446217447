"""What is true of each vendor whoever uses it: pure data and functions, importable by the receiver, the
connectors, the tasks and the simulators alike (its events, tables and payload readers, and what the vendor
side must hold), one module per vendor.

`REGISTRY` is the one line per vendor that names its parts in the layers above, as `module` or
`module:Class` strings so that this ground floor imports none of them: the receiver takes its senders from
it, `connectors` its connectors, adapters, setup and subscriptions, `simulators` its simulators,
`tasks.sweep_sources` its sweeps. Adding a vendor is a home here, a sender in webhooks/, a connector (with
its adapters, setup and subscriptions) in connectors/, a simulator in simulators/, its sweeps in
tasks/sweep_sources/, and its line below.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import directus, erpnext, invoiceninja, mautic, revolut


@dataclass(frozen=True)
class Vendor:
    name: str
    label: str  # the name a person knows it by, in what we tell an operator
    simulator: str  # module:Class in simulators/
    sender: str = ""  # the module in webhooks/ whose SENDER receives its webhooks ("" when it sends none)
    connector: str = ""  # module:Class in connectors/ whose `from_settings` builds the process's one
    # the module in tasks/sweep_sources/ whose SOURCES list its changes for the sweeps ("" when none)
    sweeps: str = ""
    mapping: str = ""  # the module in connectors/ whose adapters map its objects to canonical records
    setup: str = ""  # module:Class in connectors/: what `syncengine setup` makes on its side
    hooks: str = ""  # module:Class in connectors/: how `webhooks install` subscribes us to its webhooks


REGISTRY: dict[str, Vendor] = {
    v.name: v
    for v in (
        Vendor("invoiceninja", "Invoice Ninja", sender="webhooks.invoiceninja",
               connector="connectors.invoiceninja:InvoiceNinja",
               simulator="simulators.invoiceninja:InvoiceNinjaSimulator",
               sweeps="tasks.sweep_sources.invoiceninja", mapping="connectors.invoiceninja_mapping",
               setup="connectors.invoiceninja_setup:InvoiceNinjaSetup",
               hooks="connectors.invoiceninja_hooks:InvoiceNinjaHooks"),
        Vendor("erpnext", "ERPNext", sender="webhooks.erpnext",
               connector="connectors.erpnext:ERPNextConnector",
               simulator="simulators.erpnext:ERPNextSimulator", sweeps="tasks.sweep_sources.erpnext",
               mapping="connectors.erpnext_mapping", setup="connectors.erpnext_setup:ERPNextSetup",
               hooks="connectors.erpnext_hooks:ERPNextHooks"),
        Vendor("mautic", "Mautic", sender="webhooks.mautic", connector="connectors.mautic:MauticConnector",
               simulator="simulators.mautic:MauticSimulator", sweeps="tasks.sweep_sources.mautic",
               mapping="connectors.mautic_mapping", setup="connectors.mautic_setup:MauticSetup",
               hooks="connectors.mautic_hooks:MauticHooks"),
        Vendor("directus", "Directus", sender="webhooks.directus", connector="connectors.directus:Directus",
               simulator="simulators.directus:DirectusSimulator", sweeps="tasks.sweep_sources.directus",
               mapping="connectors.directus_mapping", setup="connectors.directus_setup:DirectusSetup",
               hooks="connectors.directus_hooks:DirectusFlows"),
        # Revolut: nothing to set up on its side but its webhook; its money is booked, not mapped
        Vendor("revolut", "Revolut", sender="webhooks.revolut",
               connector="connectors.revolut:RevolutConnector",
               simulator="simulators.revolut:RevolutSimulator", sweeps="tasks.sweep_sources.revolut",
               hooks="connectors.revolut_hooks:RevolutHooks"),
        # OCR: it sends no webhooks, and tasks.ocr builds its reader itself
        Vendor("openai", "OpenAI", simulator="simulators.openai:OpenAISimulator"),
    )
}  # fmt: skip

__all__ = ["REGISTRY", "Vendor", "directus", "erpnext", "invoiceninja", "mautic", "revolut"]
