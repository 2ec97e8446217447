"""rediss:// (Heroku Redis): the broker, redbeat and our own client get the certificate check from
REDIS_SSL_CERT_REQS; plain redis:// keeps syncengine's fast transport and no TLS options."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys

import pytest

from syncengine.redis_tls import ssl_options
from tests.support import ROOT

SHOW = """
import json
from syncengine.celery_app import app
from syncengine.shared_state import get_redis
conf = app.conf
kwargs = get_redis().connection_pool.connection_kwargs
print(json.dumps({"broker": conf.broker_use_ssl, "backend": conf.redis_backend_use_ssl,
                  "redbeat": conf.redbeat_redis_use_ssl, "transport": conf.broker_transport,
                  "client": kwargs.get("ssl_cert_reqs")}, default=int))
"""


def settings_of(**env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SHOW], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_rediss_takes_the_configured_certificate_check():
    shown = settings_of(REDIS_URL="rediss://:pw@127.0.0.1:6380/0", REDIS_SSL_CERT_REQS="none")
    expected = {"ssl_cert_reqs": int(ssl.CERT_NONE)}
    assert shown["broker"] == shown["backend"] == shown["redbeat"] == expected
    assert shown["transport"] is None  # kombu's own transport: its TLS set-up keys on the rediss scheme
    assert shown["client"] in ("none", int(ssl.CERT_NONE))


def test_plain_redis_has_no_tls_and_verification_is_the_default():
    shown = settings_of(REDIS_URL="redis://127.0.0.1:6379/0")
    assert shown["broker"] is None and shown["transport"] == "syncengine.broker:Transport"
    assert ssl_options("rediss://h:1/0", "required") == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    with pytest.raises(ValueError, match="REDIS_SSL_CERT_REQS"):
        ssl_options("rediss://h:1/0", "sometimes")
