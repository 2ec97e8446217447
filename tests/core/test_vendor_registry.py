"""Each vendor's line in syncengine.vendors.REGISTRY names its parts in the layers above; everything that
needs a vendor's part finds it there, so a wrong line must fail here, not in a worker."""

from __future__ import annotations

import pytest

from connectors import load
from connectors.adapters import adapters
from connectors.hooks import Hooks
from connectors.setup import SETUPS, VendorSetup
from connectors.subscriptions import hooks
from syncengine.settings import SERVICES
from syncengine.vendors import REGISTRY
from tasks.sweep_sources import SOURCES

REFERENCES = [
    (name, part, getattr(vendor, part))
    for name, vendor in REGISTRY.items()
    for part in ("sender", "connector", "simulator", "sweeps", "mapping", "setup", "hooks")
    if getattr(vendor, part)
]


@pytest.mark.parametrize(("vendor", "part", "reference"), REFERENCES)
def test_every_part_a_vendor_names_exists(vendor, part, reference):
    assert load(reference) is not None, f"{vendor} {part}: {reference}"


def test_every_vendor_with_a_connector_has_its_settings():
    assert {name for name, vendor in REGISTRY.items() if vendor.connector} == set(SERVICES)


def test_each_vendors_parts_are_its_own():
    for name, cls in hooks().items():
        assert issubclass(cls, Hooks) and cls.system == name
    for name in SETUPS:
        assert issubclass(load(REGISTRY[name].setup), VendorSetup)
    assert {system for system, _kind in adapters()} == {n for n, v in REGISTRY.items() if v.mapping}
    assert {system for system, _kind in SOURCES} == {n for n, v in REGISTRY.items() if v.sweeps}


def test_what_is_read_back_is_each_adapters_own():
    """Contacts, products and invoices are written in several systems, so each is read before a push;
    activities are written by one flow only and never read back."""
    from connectors.current import readable

    read = {pair for pair in adapters() if readable(*pair)}
    written_in_several = ("contact", "product", "invoice")
    assert read == {(system, kind) for system, kind in adapters() if kind in written_in_several}
    assert ("mautic", "contact") in read and ("directus", "activity") not in read
