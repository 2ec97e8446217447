"""What is true of each vendor whoever uses it: pure data and functions, importable by the receiver, the
connectors, the tasks and the simulators alike (its events, tables and payload readers, and what the vendor
side must hold), one module per vendor.

`REGISTRY` is the one line per vendor that names its parts in the layers above, as `module` or
`module:Class` strings so that this ground floor imports none of them: the receiver takes its senders from
it, `connectors.registry` its connectors, `simulators` its simulators, `tasks.sweep_sources` its sweeps.
Adding a vendor is a home here, a sender in webhooks/, a connector in connectors/, a simulator in
simulators/, its sweeps in tasks/sweep_sources/, and its line below.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import directus, erpnext, invoiceninja, mautic, revolut


@dataclass(frozen=True)
class Vendor:
    name: str
    label: str  # the name a person knows it by, in what we tell an operator
    sender: str  # the module in webhooks/ whose SENDER receives its webhooks ("" when it sends none)
    connector: str  # module:Class in connectors/ whose `from_settings` builds the process's one ("": none)
    simulator: str  # module:Class in simulators/
    # the module in tasks/sweep_sources/ whose SOURCES list its changes for the sweeps ("" when none)
    sweeps: str = ""


REGISTRY: dict[str, Vendor] = {
    v.name: v
    for v in (
        Vendor("invoiceninja", "Invoice Ninja", "webhooks.invoiceninja",
               "connectors.invoiceninja:InvoiceNinja", "simulators.invoiceninja:InvoiceNinjaSimulator",
               "tasks.sweep_sources.invoiceninja"),
        Vendor("erpnext", "ERPNext", "webhooks.erpnext", "connectors.erpnext:ERPNextConnector",
               "simulators.erpnext:ERPNextSimulator", "tasks.sweep_sources.erpnext"),
        Vendor("mautic", "Mautic", "webhooks.mautic", "connectors.mautic:MauticConnector",
               "simulators.mautic:MauticSimulator", "tasks.sweep_sources.mautic"),
        Vendor("directus", "Directus", "webhooks.directus", "connectors.directus:Directus",
               "simulators.directus:DirectusSimulator", "tasks.sweep_sources.directus"),
        Vendor("revolut", "Revolut", "webhooks.revolut", "connectors.revolut:RevolutConnector",
               "simulators.revolut:RevolutSimulator", "tasks.sweep_sources.revolut"),
        # OCR: it sends no webhooks, and tasks.ocr builds its reader itself
        Vendor("openai", "OpenAI", "", "", "simulators.openai:OpenAISimulator"),
    )
}  # fmt: skip

__all__ = ["REGISTRY", "Vendor", "directus", "erpnext", "invoiceninja", "mautic", "revolut"]
