"""Secrets never show: not in a repr, not in a log line, not in a traceback."""

from __future__ import annotations

import logging

from syncengine import redaction
from syncengine.settings import Secret, Settings


def test_secret_hides_its_value():
    s = Secret("sk-live-123456")
    assert "sk-live" not in repr(s) and "sk-live" not in str(s) and "sk-live" not in f"{s}"
    assert s.reveal() == "sk-live-123456"
    assert "sk-live" not in repr({"token": s})


def test_settings_read_service_variables_by_their_contract_names():
    env = {
        "DATABASE_URL": "postgres://u:p@db.example:5432/app",
        "REDIS_URL": "redis://r:6379/0",
        "INVOICENINJA_URL": "https://in.example/",
        "INVOICENINJA_TOKEN": "tok-xyz-42",
        "INVOICENINJA_WEBHOOK_SECRET": "old, new",
        "ERPNEXT_API_KEY": "k",
        "ERPNEXT_API_SECRET": "s",
        "REVOLUT_CLIENT_ID": "client",
    }
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql+psycopg2://u:p@db.example:5432/app"
    assert not settings.embedded and settings.broker_url == "redis://r:6379/0"
    ninja = settings.services["invoiceninja"]
    assert ninja.url == "https://in.example" and ninja.configured
    assert [s.reveal() for s in ninja.webhook_secrets] == ["old", "new"]
    assert settings.services["erpnext"].credentials["api_secret"].reveal() == "s"
    assert settings.services["revolut"].options["client_id"] == "client"
    assert "tok-xyz-42" not in repr(settings)
    assert {s.reveal() for s in settings.all_secrets()} >= {"tok-xyz-42", "old", "new", "k", "s"}


def test_embedded_default_needs_no_servers(tmp_path):
    settings = Settings.from_env({"SYNCENGINE_HOME": str(tmp_path)})
    assert settings.embedded
    assert settings.database_url == f"sqlite:///{tmp_path / 'syncengine.sqlite3'}"
    assert settings.broker_url.startswith("sqla+sqlite:///")


def test_log_lines_are_redacted(caplog):
    redaction.install(["configured-secret-value"])
    log = logging.getLogger("syncengine.test")
    with caplog.at_level(logging.INFO):
        log.info("calling with %s", {"Authorization": "Bearer abc.def.ghi", "X-API-TOKEN": "tok-123"})
        log.info("form access_token=oa_prod_xyz&refresh_token=oa_prod_abc&client_assertion=eyJ.x.y")
        log.info("the secret is configured-secret-value, signature v1=" + "ab" * 32)
        log.info('json {"api_secret": "erp-s", "password": "hunter2"}')
        try:
            raise RuntimeError("failed with token=sk-in-exception")
        except RuntimeError:
            log.exception("boom")
    text = caplog.text
    leaks = ("abc.def.ghi", "tok-123", "oa_prod_xyz", "oa_prod_abc", "eyJ.x.y", "configured-secret-value")
    for leaked in (*leaks, "ab" * 32, "erp-s", "hunter2", "sk-in-exception"):
        assert leaked not in text, leaked
    assert text.count("[REDACTED]") >= 9


def test_redaction_leaves_ordinary_text_alone():
    assert redaction.redact("inbox 12 done: mautic mautic.lead_post_save_new in 3 ms") == (
        "inbox 12 done: mautic mautic.lead_post_save_new in 3 ms"
    )


def test_run_time_tokens_are_remembered_in_a_bounded_set():
    """Tokens rotate (Revolut's every 40 minutes): the newest are masked, and the set stops growing."""
    redaction.install(["configured-forever-value"])
    start = redaction.known_count()
    for i in range(5000):
        redaction.register_secrets([f"rotating-token-{i:05d}"])
    assert redaction.known_count() <= start + redaction.RECENT_LIMIT
    assert redaction.redact("now rotating-token-04999, then configured-forever-value") == (
        "now [REDACTED], then [REDACTED]"
    )
    assert "rotating-token-00000" in redaction.redact("long gone rotating-token-00000")


def test_authorization_codes_are_masked_by_their_shape():
    line = 'GET /oauth/revolut/callback?code=oa_sand_Xy9&state=revolut.1.n.s "code=anything"'
    masked = redaction.redact(line)
    assert "oa_sand_Xy9" not in masked and "anything" not in masked and "state=revolut.1.n.s" in masked
    assert redaction.redact("bare oa_prod_AbC-12_x token") == "bare [REDACTED] token"
