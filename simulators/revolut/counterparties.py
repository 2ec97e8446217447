"""Revolut counterparties: list (newest first, paged by ``created_before``), create by Revtag or bank details.

A Revtag can be added once (422/3012 with the existing id); bank details may repeat; an IBAN must pass the
mod-97 check (400/3000 "… is not a valid IBAN").
"""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import route
from simulators.revolut.common import RevolutBase, iso, parse_ts, to_dt


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check: Revolut rejects a bad IBAN with 400/3000 ("… is not a valid IBAN")."""
    text = iban.replace(" ", "").upper()
    if len(text) < 15 or not text.isalnum() or not text[:2].isalpha() or not text[2:4].isdigit():
        return False
    digits = "".join(str(int(c, 36)) for c in text[4:] + text[:4])
    return int(digits) % 97 == 1


class RevolutCounterparties(RevolutBase):
    """Mixin: ``/counterparties`` and ``/counterparty``; payments look counterparties up in ``self.db``."""

    # ---- counterparties ---------------------------------------------------------------------------

    @route("GET", "/api/1.0/counterparties")
    def list_counterparties(self, request: Request) -> Response:
        args = request.args
        try:
            limit = int(args.get("limit", 100))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise self.fail(400, 2101, "limit must be between 1 and 1000")
        if args.get("bic") and not args.get("iban"):
            raise self.fail(400, 2101, "bic param can be used only combined with iban param")
        if args.get("sort_code") and not args.get("account_no"):
            raise self.fail(400, 2101, "sort_code param can be used only combined with account_no param")
        try:
            before = parse_ts(args["created_before"]) if args.get("created_before") else None
        except ValueError:
            raise self.fail(400, 2101, "Parameter created_before must be a valid timestamp") from None
        name = (args.get("name") or "").lower()
        exact = {k: args[k] for k in ("account_no", "sort_code", "iban", "bic") if args.get(k)}
        picked = []
        for cp in self.db["counterparties"].values():
            if cp.get("state") == "deleted" or (before is not None and to_dt(cp["created_at"]) >= before):
                continue
            if name and name not in cp["name"].lower():
                continue
            if exact and not any(
                all(acc.get(k) == v for k, v in exact.items()) for acc in cp.get("accounts", [])
            ):
                continue
            picked.append(cp)
        picked.sort(key=lambda c: c["created_at"], reverse=True)
        return self.json(picked[:limit])

    @route("GET", "/api/1.0/counterparty/{cp_id}")
    def get_counterparty(self, request: Request, cp_id: str) -> Response:
        cp = self.db["counterparties"].get(cp_id)
        if cp is None or cp.get("state") == "deleted":
            raise self.fail(404, 3006, "Counterparty not found")
        return self.json(cp)

    @route("DELETE", "/api/1.0/counterparty/{cp_id}")
    def delete_counterparty(self, request: Request, cp_id: str) -> Response:
        cp = self.db["counterparties"].get(cp_id)
        if cp is None or cp.get("state") == "deleted":
            raise self.fail(404, 3006, "Counterparty not found")
        cp.update(state="deleted", updated_at=iso(self.now()))
        return self.empty(204)

    @route("POST", "/api/1.0/counterparty")
    def create_counterparty(self, request: Request) -> Response:
        data = self.body_or_fail(request)
        now = iso(self.now())
        cp: dict[str, Any] = {"id": str(uuid.uuid4())}
        if data.get("revtag"):
            if not data.get("name") or data.get("company_name") or data.get("individual_name"):
                raise self.fail(
                    400, 3000, "A Revtag counterparty needs name (and no company/individual name)"
                )
            for other in self.db["counterparties"].values():
                if other.get("revtag") == data["revtag"] and other.get("state") != "deleted":
                    raise self.fail(
                        422, 3012, "This counterparty already exists", params={"counterparty_id": other["id"]}
                    )
            cp.update(
                name=data["name"],
                revtag=data["revtag"],
                profile_type=data.get("profile_type", "personal"),
                country="GB",
            )
        else:
            cp.update(self._bank_counterparty(data))
        cp.update(state="created", created_at=now, updated_at=now)
        self.db["counterparties"][cp["id"]] = cp
        return self.json(cp)

    def _bank_counterparty(self, data: dict[str, Any]) -> dict[str, Any]:
        company, person = data.get("company_name"), data.get("individual_name")
        if bool(company) == bool(person) or data.get("name"):
            raise self.fail(400, 3000, "Provide exactly one of company_name or individual_name")
        if isinstance(person, dict):
            name = " ".join(filter(None, [person.get("first_name"), person.get("last_name")]))
        else:
            name = str(company)
        if not data.get("bank_country") or not data.get("currency"):
            raise self.fail(400, 3000, "bank_country and currency are required")
        account: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": name,
            "bank_country": data["bank_country"],
            "currency": data["currency"],
            "type": "external",
        }
        if data.get("iban"):
            if not iban_is_valid(data["iban"]):
                raise self.fail(400, 3000, f"{data['iban']} is not a valid IBAN")
        elif not data.get("account_no"):
            raise self.fail(400, 3000, "iban or account_no is required")
        for key in ("iban", "bic", "account_no", "sort_code", "routing_number", "address"):
            if data.get(key):
                account[key] = data[key]
        return {"name": name, "profile_type": "business" if company else "personal", "accounts": [account]}
