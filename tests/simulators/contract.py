"""Validate real HTTP exchanges with a simulator against the vendor's published OpenAPI document.

The vendors' licences keep their documents out of this repository, so they are pointed at:
SYNCENGINE_TEST_SPECS names the folder, else ``../shared/specs`` beside the checkout (or beside the folder of
git worktrees). A contract test fails, never skips, when the folder is missing, and says how to point at it.
Each spec's ``servers`` entry decides
the host and base path a request must carry, so the loopback URL is rewritten to it before validation.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the OpenAI document is 3 MB
# SYNCENGINE_TEST_SPECS, else beside the checkout, or beside the folder of git worktrees (as tests.peers
# finds the peers harness)
_ROOT = Path(__file__).resolve().parents[2]
_BESIDE = (_ROOT.parent / "shared" / "specs", _ROOT.parent.parent / "shared" / "specs")
SPECS = (
    Path(os.environ["SYNCENGINE_TEST_SPECS"]).expanduser()
    if os.environ.get("SYNCENGINE_TEST_SPECS")
    else next((p for p in _BESIDE if p.is_dir()), _BESIDE[0])
)
# Marks a contract test: it fails when the specs are missing (the `vendor_specs` fixture, tests/conftest.py).
needs_specs = pytest.mark.usefixtures("vendor_specs")


def require_specs() -> Path:
    """The specs folder; a failure that says how to point at it when it is missing."""
    if not SPECS.is_dir():
        pytest.fail(
            f"vendor OpenAPI specs not found at {SPECS}: the contract tests check the simulators and "
            "connectors against the vendors' published documents, which their licences keep out of this "
            "repository. Set SYNCENGINE_TEST_SPECS to the folder holding them (invoiceninja/, directus/, "
            "openai/, revolut/), or put it at ../shared/specs beside the checkout.",
            pytrace=False,
        )
    return SPECS


# vendor -> (spec file, base URL from its `servers`; None = the spec has no `servers`, i.e. "/")
SPEC_FILES = {
    "invoiceninja": ("invoiceninja/api-docs.yaml", "https://demo.invoiceninja.com"),
    "directus": ("directus/openapi.json", None),
    "openai": ("openai/openapi.yaml", "https://api.openai.com/v1"),
}


def _fix_quirks(node: Any) -> None:
    """In-memory corrections without which exchanges could not validate (the files stay untouched).

    - Invoice Ninja: the ``X-Requested-With`` header parameter is both ``required`` and ``readOnly``, so every
      request fails as "writing a read-only property": ``readOnly`` is dropped.
    - Directus: ``POST /items/{collection}`` has ``"schema": null`` (openapi-core crashes on it): now ``{}``.
    - OpenAI: 107 ``discriminator``s have no ``mapping`` and role/type values that are not schema names
      (``user`` -> ``#/components/schemas/user``): dropped, the ``oneOf``/``anyOf`` alone still validates.
    """
    if isinstance(node, dict):
        for key in [k for k in node if isinstance(k, int)]:  # YAML reads `200:` as an int; OpenAPI keys are
            node[str(key)] = node.pop(key)  # strings, else openapi-core silently falls back to `default`
        if node.get("in") == "header" and node.get("name") == "X-Requested-With":
            node.get("schema", {}).pop("readOnly", None)
        if "schema" in node and node["schema"] is None:
            node["schema"] = {}
        if isinstance(node.get("discriminator"), dict) and "mapping" not in node["discriminator"]:
            del node["discriminator"]
        for value in node.values():
            _fix_quirks(value)
    elif isinstance(node, list):
        for value in node:
            _fix_quirks(value)


@functools.cache
def spec(vendor: str) -> OpenAPI:
    """Loaded without a spec validator, since no vendor spec passes it (docs/architecture.md, Simulators),
    read as a dict first so ``_fix_quirks`` can run."""
    path = SPECS / SPEC_FILES[vendor][0]
    with path.open() as fh:
        document = json.load(fh) if path.suffix == ".json" else yaml.load(fh, Loader=_Loader)  # noqa: S506
    _fix_quirks(document)
    return OpenAPI.from_dict(document, config=Config(spec_validator_cls=None, spec_base_uri=path.as_uri()))


def _as_spec_request(response: requests.Response, sim_base: str, vendor: str) -> requests.PreparedRequest:
    prepared = response.request.copy()
    target = SPEC_FILES[vendor][1] or "http://localhost"
    prefix = sim_base + ("/v1" if vendor == "openai" else "")
    assert prepared.url is not None and prepared.url.startswith(prefix), prepared.url
    prepared.url = target + prepared.url[len(prefix) :]
    return prepared


def _unwrapped(response: requests.Response) -> requests.Response | None:
    """Invoice Ninja answers one entity as ``{"data": {...}}`` (``BaseController::response``)
    while its spec documents the bare entity. Both are checked: the envelope as sent, and the entity inside it
    against the documented schema (otherwise the entity's fields would never be validated)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not (isinstance(body, dict) and set(body) == {"data"} and isinstance(body["data"], dict)):
        return None
    inner = copy.copy(response)
    inner._content = json.dumps(body["data"]).encode()
    return inner


def check(vendor: str, response: requests.Response, sim_base: str, request: bool = True) -> None:
    """Assert the simulator's answer (and, unless ``request=False``, our request) match the spec."""
    api = spec(vendor)
    prepared = RequestsOpenAPIRequest(_as_spec_request(response, sim_base, vendor))
    if request:
        api.validate_request(prepared)
    api.validate_response(prepared, RequestsOpenAPIResponse(response))
    inner = _unwrapped(response) if vendor == "invoiceninja" else None
    if inner is not None:
        api.validate_response(prepared, RequestsOpenAPIResponse(inner))
