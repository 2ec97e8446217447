"""Ids from outside (webhooks, answers) never steer our credentials: each is checked against its vendor's
shape and quoted as one path segment before any request, and a file download is streamed with a byte cap
and follows no redirect to another host."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import segment
from connectors.directus import Directus
from connectors.invoiceninja import InvoiceNinja
from connectors.mautic import MauticConnector
from connectors.revolut import RevolutConnector
from syncengine.errors import Permanent

from .conftest import DIRECTUS_TEST_TOKEN, INVOICENINJA_TEST_TOKEN

HOSTILE = ["../users/me", "abc?fields=*&export=json", "1/../../server/info", "%2e%2e", "", "1#x", "a b", "..",
           "7\r\nX-Injected: 1"]  # fmt: skip


@pytest.mark.parametrize("key", HOSTILE)
def test_a_directus_key_from_outside_is_refused_before_any_request(directus_sim, key):
    sim, url = directus_sim
    directus = Directus(url, DIRECTUS_TEST_TOKEN)
    before = len(sim.requests_log())
    calls = (lambda: directus.get_item("contacts", key), lambda: directus.update_item("contacts", key, {}),
             lambda: directus.delete_item("contacts", key), lambda: directus.file(key),
             lambda: directus.download_asset(key))  # fmt: skip
    for call in calls:
        with pytest.raises(Permanent, match="refused directus"):
            call()
    assert len(sim.requests_log()) == before


@pytest.mark.parametrize("key", HOSTILE)
def test_invoiceninja_mautic_and_revolut_ids_from_outside_are_refused(invoiceninja_sim, key):
    sim, url = invoiceninja_sim
    before = len(sim.requests_log())
    with pytest.raises(Permanent, match="refused invoice ninja id"):
        InvoiceNinja(url, INVOICENINJA_TEST_TOKEN).get("clients", key)
    with pytest.raises(Permanent, match="refused mautic id"):
        MauticConnector("http://127.0.0.1:9", username="u", password="p").get_contact(key)  # type: ignore[arg-type]
    with pytest.raises(Permanent, match="refused revolut transaction id"):
        RevolutConnector("http://127.0.0.1:9").transaction(key)
    assert len(sim.requests_log()) == before


def test_well_formed_ids_pass_as_one_quoted_segment():
    assert segment("42", "integer") == "42"
    assert segment("Acme Ltd / Paris", "name") == "Acme%20Ltd%20%2F%20Paris"
    assert segment(uid := str(uuid.uuid4()), "uuid") == uid
    with pytest.raises(Permanent):
        segment("..", "name")


class _Files:
    """A file server as a Directus `/assets` might misbehave: a redirect within its origin, one to another
    host, and a body much larger than the record said."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        self.hits.append(request.path)
        if request.path.startswith("/assets/") and request.path.endswith("1"):
            response = Response(status=302, headers={"Location": f"{self.url}/stored/file"})
        elif request.path.startswith("/assets/") and request.path.endswith("2"):
            response = Response(status=302, headers={"Location": "http://127.0.0.2:9/steal"})
        elif request.path.startswith("/assets/"):
            response = Response((b"x" * 65536 for _ in range(64)), content_type="application/pdf")  # 4 MiB
        else:
            response = Response(b"%PDF-1.4 small", content_type="application/pdf")
        return response(environ, start_response)


@pytest.fixture()
def files() -> Iterator[_Files]:
    import threading

    served = _Files()
    threading.Thread(target=served.server.serve_forever, daemon=True).start()
    yield served
    served.server.shutdown()


def test_a_download_follows_a_redirect_within_its_origin_only_and_stops_at_the_cap(files):
    directus = Directus(files.url, DIRECTUS_TEST_TOKEN)
    same_origin, other_host, large = (f"{uuid.uuid4().hex[:-1]}{n}" for n in "120")
    same_origin, other_host, large = (f"{k[:8]}-{k[8:12]}-{k[12:16]}-{k[16:20]}-{k[20:32]}"
                                      for k in (same_origin, other_host, large))  # fmt: skip

    assert directus.download_asset(same_origin, limit=1024) == b"%PDF-1.4 small"
    with pytest.raises(Permanent, match="redirects to another host"):
        directus.download_asset(other_host, limit=1024)
    with pytest.raises(Permanent, match="over the 1048576-byte limit") as refused:
        directus.download_asset(large, limit=1024 * 1024)
    assert refused.value.status == 413
    assert "/steal" not in files.hits


@pytest.mark.parametrize("name", ["..", "", "Acme\nLtd", "x" * 141])
def test_an_erpnext_document_name_from_outside_is_refused(name):
    from connectors.erpnext import ERPNextConnector

    with pytest.raises(Permanent, match="refused erpnext document name"):
        ERPNextConnector.doc_path("Customer", name)
    assert (
        ERPNextConnector.doc_path("Customer", "Acme / Paris?x")
        == "/api/v2/document/Customer/Acme%20%2F%20Paris%3Fx"
    )
