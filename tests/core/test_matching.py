"""F5's matching rule, without any system: which open invoice a bank payment settles."""

from __future__ import annotations

from decimal import Decimal

import pytest

from syncengine.matching import Decision, Incoming, OpenInvoice, match, number_in, same_party
from syncengine.vendors.revolut import payer_from

ACME = OpenInvoice("a1", "INV-0042", "c1", "Acme Trading Ltd", Decimal("120.00"), "EUR", "ann@acme.test")
BETA = OpenInvoice("b1", "INV-0043", "c2", "Beta GmbH", Decimal("120.00"), "EUR")
GAMMA = OpenInvoice("g1", "INV-0044", "c3", "Gamma SA", Decimal("80.00"), "GBP")
OPEN = [ACME, BETA, GAMMA]


def pay(amount: str, reference: str = "", payer: str = "", currency: str = "EUR") -> Incoming:
    return Incoming(Decimal(amount), currency, reference, f"Payment from {payer}" if payer else "", payer)


@pytest.mark.parametrize(
    "reference", ["INV-0042", "inv 0042", "Invoice INV/0042 thanks", "inv_0042", "INV.0042", "#inv0042"]
)
def test_the_invoice_number_in_the_reference_wins_whatever_its_spelling(reference):
    decision = match(pay("120", reference, "Somebody Else"), OPEN)
    assert decision.invoice == ACME and decision.by == "number"
    assert decision.apply == Decimal("120.00") and decision.surplus == 0 and not decision.partial


def test_a_number_inside_a_longer_one_is_not_a_match():
    assert not number_in("INV-0042", "INV-00421")
    assert not number_in("INV-0042", "XINV0042")
    assert number_in("INV-0042", "paid: inv-0042.")


def test_the_number_may_be_in_the_leg_description():
    incoming = Incoming(Decimal("120"), "EUR", "", "Payment from X for INV-0043", "X")
    assert match(incoming, OPEN).invoice == BETA


def test_amount_and_payer_when_the_reference_names_no_invoice():
    decision = match(pay("120", "thanks", "ACME trading"), OPEN)
    assert decision.invoice == ACME and decision.by == "amount_payer"


def test_amount_without_a_resembling_payer_is_no_match():
    decision = match(pay("120", "thanks", "Zeta Corp"), OPEN)
    assert not decision.matched and "no matching open invoice" in decision.reason


def test_two_invoices_with_the_same_amount_and_payer_are_ambiguous():
    twin = OpenInvoice("a2", "INV-0050", "c1", "Acme Trading Ltd", Decimal("120.00"), "EUR")
    decision = match(pay("120", "", "Acme"), [ACME, twin])
    assert not decision.matched and decision.reason.startswith("ambiguous")


def test_a_reference_naming_two_invoices_is_ambiguous():
    decision = match(pay("240", "INV-0042 and INV-0043"), OPEN)
    assert not decision.matched and decision.reason.startswith("ambiguous")


def test_a_partial_payment_applies_what_came():
    decision = match(pay("50", "INV-0042"), OPEN)
    assert decision.invoice == ACME and decision.apply == Decimal("50.00") and decision.partial
    assert decision.surplus == 0


def test_an_over_payment_applies_the_balance_and_leaves_the_surplus():
    decision = match(pay("150.50", "INV-0042"), OPEN)
    assert decision.apply == Decimal("120.00") and decision.surplus == Decimal("30.50")
    assert not decision.partial


def test_a_currency_mismatch_goes_to_review():
    decision = match(pay("80", "INV-0044", currency="EUR"), OPEN)
    assert not decision.matched and "currency mismatch" in decision.reason
    # and amount+payer only looks at invoices in the payment's currency
    assert not match(pay("80", "", "Gamma", currency="EUR"), OPEN).matched
    assert match(pay("80", "", "Gamma", currency="GBP"), OPEN).invoice == GAMMA


def test_paid_invoices_and_outgoing_money_are_never_matched():
    paid = OpenInvoice("p1", "INV-0001", "c1", "Acme", Decimal("0"), "EUR")
    assert not match(pay("10", "INV-0001"), [paid]).matched
    assert not match(pay("-120", "INV-0042"), OPEN).matched


def test_the_decision_survives_its_json_form():
    decision = match(pay("150.50", "INV-0042"), OPEN)
    assert Decision.from_json(decision.to_json()) == decision
    none = match(pay("1", "x"), OPEN)
    assert Decision.from_json(none.to_json()) == none


def test_payer_names():
    assert same_party("ACME TRADING", "Acme Trading Ltd")
    assert same_party("Jöhn Smith", "John Smith")
    assert same_party("Smith John", "John Smith")
    assert not same_party("John Smith", "Jane Doe")
    assert not same_party("", "Acme")
    assert payer_from({"description": "Payment from John Smith"}) == "John Smith"
    assert payer_from({"counterparty": {"name": "Acme"}, "description": "x"}) == "Acme"
    assert payer_from({"description": "Top-Up by Test"}) == ""
