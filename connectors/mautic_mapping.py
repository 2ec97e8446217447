"""Mautic carries contacts: the person, their company name, address and marketing consent.

Fields by alias: `firstname`, `lastname`, `email`, `phone`, `company`, `address1`, `address2`, `city`,
`zipcode`, `country` (Mautic's English country name; the canonical value is the ISO code). Mautic has no
billing name or VAT number for a contact.

Marketing consent is Mautic's to say (docs/architecture.md, The store) and is only ever read here, never
written: an email do-not-contact entry (unsubscribed, bounced or set by hand) means False; otherwise a boolean
contact field with the alias `marketing_consent`, where the site declares one, gives True or False; with
neither, consent is unknown (None), never assumed. Writing it back could only undo a newer choice made in
Mautic.

Mautic skips blank values on edit unless told `overwriteWithBlank`, so updates say it (a field cleared
elsewhere is cleared here); creates send no blanks, as a create may match an existing contact by email.
That match is also how a contact is created once: where the email is Mautic's unique identifier, the create
goes first and its answer is the contact, new or matched (`unique`); elsewhere it is looked up first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from syncengine.errors import Permanent
from syncengine.idempotency import Attempt
from syncengine.records import Change
from syncengine.vendors.mautic import CONSENT_FIELD as CONSENT

from . import countries
from .adapters import Refs, from_iso, register
from .history import group_dates
from .normalise import blank, canonical, flag

CONSENT_FIELD = CONSENT.alias  # the boolean contact field `setup` creates (syncengine.vendors.mautic)
ALIASES = {
    "first_name": "firstname",
    "last_name": "lastname",
    "email": "email",
    "phone": "phone",
    "company_name": "company",
    "address1": "address1",
    "address2": "address2",
    "city": "city",
    "postal_code": "zipcode",
    "country": "country",
}
CONTACT_FIELDS = (*ALIASES, "marketing_consent")


def field_values(contact: dict[str, Any]) -> dict[str, Any]:
    """`fields.all` (API answers), else the grouped `{alias: {"value": …}}` some webhook payloads carry."""
    fields = contact.get("fields") or {}
    if isinstance(fields.get("all"), dict):
        return fields["all"]
    grouped = (group for group in fields.values() if isinstance(group, dict))
    return {
        alias: spec.get("value") if isinstance(spec, dict) else spec
        for group in grouped
        for alias, spec in group.items()
    }


def consent(contact: dict[str, Any], values: dict[str, Any]) -> bool | None:
    entries = contact.get("doNotContact") or []
    if any(isinstance(e, dict) and (e.get("channel") or "email") == "email" for e in entries):
        return False
    return flag(values.get(CONSENT_FIELD))


def country_name(value: str | None) -> str | None:
    """Mautic's name for an ISO code; text that is not a code goes as it is."""
    return countries.NAMES.get(value, value) if value else None


class ContactAdapter:
    system, kind = "mautic", "contact"

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return canonical(self.kind, CONTACT_FIELDS, data)

    def to_change(self, obj: dict[str, Any]) -> Change:
        values = field_values(obj)
        raw = {field: values.get(alias) for field, alias in ALIASES.items()}
        fields = canonical(self.kind, CONTACT_FIELDS, {**raw, "marketing_consent": consent(obj, values)})
        at = from_iso(obj.get("dateModified") or obj["dateAdded"])
        # Mautic stamps `dateModified` on every save after the first (which leaves it null): unset, or
        # equal to `dateAdded`, the contact is as it was created.
        unedited = obj.get("dateModified") in (None, "", obj.get("dateAdded"))
        return Change(
            self.system, self.kind, str(obj["id"]), fields, at, match_key=fields["email"], unedited=unedited
        )

    def dates(
        self, connector: Any, external_id: str, groups: dict[str, dict[str, Any]]
    ) -> dict[str, datetime]:
        """When each group got the values it holds (name -> canonical values), from the contact's audit
        log (connectors.history): each save's changed fields by alias. Consent is not a plain field and is
        left to `dateModified`."""
        by_alias = {alias: name for name, alias in ALIASES.items()}
        saves = []
        for changed, added in connector.contact_changes(external_id):
            wrote = {by_alias[alias]: value for alias, value in changed.items() if alias in by_alias}
            if not wrote:
                continue
            try:
                saves.append((canonical(self.kind, tuple(wrote), wrote), from_iso(added)))
            except (TypeError, ValueError):
                continue
        return group_dates(saves, groups)

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        """Every carried field but consent, by alias; None as "" (cleared on update)."""
        values = {**fields, "country": country_name(fields.get("country"))}
        return {alias: blank(values[field]) for field, alias in ALIASES.items() if field in fields}

    def marker(self, fields: dict[str, Any]) -> str:
        if not fields.get("email"):
            raise Permanent("a Mautic contact without an email cannot be created once (no marker)")
        return fields["email"]

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        return connector.find_contact(self.marker(fields))

    def unique(self, connector: Any, fields: dict[str, Any]) -> bool:
        """A contact with an email is created first: Mautic answers the contact that already has it (200,
        updated with what we sent), compared as `find` compares it (MySQL ignores case). Only while the
        email is the one unique identifier among the fields we send: with another one (a phone, say) Mautic
        could match someone else by it, or, told to match on all of them, miss the contact with the email."""
        sent = frozenset(ALIASES.values())
        return bool(fields.get("email")) and connector.unique_on(
            "contact email", lambda: connector.unique_identifiers() & sent == {"email"}
        )

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        return connector.create_contact({alias: value for alias, value in body.items() if value != ""})

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update_contact(int(external_id), {**body, "overwriteWithBlank": True})

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])

    def current(self, connector: Any, external_id: str) -> dict[str, Any] | None:
        return connector.get_contact(int(external_id))


register(ContactAdapter())
