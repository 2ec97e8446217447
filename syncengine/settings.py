"""Configuration, read once from the environment.

The variable names are a contract with deployments (Heroku config vars, Dokku, app.json): keep them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SERVICES = ("invoiceninja", "revolut", "erpnext", "mautic", "directus")


class Secret:
    """A value that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = env.get(name, "").strip()
    return Secret(value) if value else None


def _secrets(env: Mapping[str, str], name: str) -> tuple[Secret, ...]:
    """Several comma-separated values, so a secret can be rotated without downtime."""
    return tuple(Secret(v.strip()) for v in env.get(name, "").split(",") if v.strip())


@dataclass(frozen=True)
class ServiceSettings:
    """What syncengine needs to talk to one service and to trust its webhooks."""

    name: str
    url: str | None
    webhook_secrets: tuple[Secret, ...]
    credentials: dict[str, Secret] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.url)


# Per service: the credential variables (secret) and plain options it reads, after <NAME>_URL and
# <NAME>_WEBHOOK_SECRET.
_SERVICE_VARS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "invoiceninja": (("TOKEN",), ()),
    "revolut": (("PRIVATE_KEY",), ("CLIENT_ID", "REDIRECT_URI", "PRIVATE_KEY_PATH", "ACCOUNT_ID")),
    "erpnext": (("API_KEY", "API_SECRET"), ("COMPANY", "TAX_ACCOUNT", "BANK_ACCOUNT")),
    "mautic": (
        ("PASSWORD", "CLIENT_SECRET"),
        ("USERNAME", "CLIENT_ID", "INVOICE_EMAIL_ID", "RECEIPT_EMAIL_ID"),
    ),
    "directus": (("TOKEN",), ("DOCUMENTS_FOLDER",)),  # only files in this folder go to OCR, when set
}


def _service(env: Mapping[str, str], name: str) -> ServiceSettings:
    prefix = name.upper()
    secret_vars, option_vars = _SERVICE_VARS[name]
    credentials = {v.lower(): s for v in secret_vars if (s := _secret(env, f"{prefix}_{v}"))}
    options = {v.lower(): env[f"{prefix}_{v}"] for v in option_vars if env.get(f"{prefix}_{v}")}
    return ServiceSettings(
        name=name,
        url=(env.get(f"{prefix}_URL") or "").rstrip("/") or None,
        webhook_secrets=_secrets(env, f"{prefix}_WEBHOOK_SECRET"),
        credentials=credentials,
        options=options,
    )


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number from the environment; a typo is one line naming the variable, not a traceback."""
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        from .mistakes import Mistake

        raise Mistake(f"{name}={value!r} is not a whole number", f"set it to one, e.g. {default}") from None


def _flag(value: str | None) -> bool:
    """An opt-in switch: only an explicit yes turns it on."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _with_psycopg2(url: str) -> str:
    """Heroku hands out postgres:// URLs, and SQLAlchemy 2.1 picks psycopg 3 for a bare postgresql://;
    we ship psycopg2-binary."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    redis_url: str | None
    services: dict[str, ServiceSettings]
    secret_key: Secret | None
    openai_api_key: Secret | None
    openai_base_url: str | None
    openai_model: str
    documents_token: Secret | None
    log_level: str
    max_body_bytes: int = 1024 * 1024
    inbox_lease_seconds: int = 300
    inbox_max_attempts: int = 8
    revolut_signature_tolerance: int = 300
    max_document_bytes: int = 10 * 1024 * 1024  # POST /documents (receipts, supplier invoices)
    pay_suppliers: bool = False  # F7 moves money: off unless SYNCENGINE_PAY_SUPPLIERS=true
    sweep_lookback_seconds: int = 120  # sweeps re-list this far before their cursor (clock and commit lag)
    redis_ssl_cert_reqs: str = "required"  # rediss:// certificate check: required, optional or none
    metrics_token: Secret | None = None  # when set, GET /metrics wants `Authorization: Bearer <it>`
    public_url: str | None = None  # the receiver as the vendors reach it, for `webhooks install`
    openai_detail: str = "high"  # image detail sent to the model: low, high or auto
    ocr_max_side: int = 2048  # pages are downscaled to this longest side before OCR
    ocr_engine: str = "auto"  # auto (OpenAI when configured and its breaker closed), openai, tesseract
    bind_host: str = "0.0.0.0"  # the interface web and flower bind: all of them, the PaaS contract

    @property
    def on_loopback(self) -> bool:
        """True when web binds a loopback address only (a local run): nobody else can reach it."""
        host = self.bind_host.strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: the broker is a table in the SQLite file."""
        return self.redis_url is None

    @property
    def broker_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{self.home / 'broker.sqlite3'}"

    def all_secrets(self) -> list[Secret]:
        """Every configured secret value, for the log redaction filter."""
        own = (self.secret_key, self.openai_api_key, self.documents_token, self.metrics_token)
        found = [s for s in own if s]
        for svc in self.services.values():
            found.extend(svc.webhook_secrets)
            found.extend(svc.credentials.values())
        return found

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("SYNCENGINE_HOME") or Path.cwd() / "var").resolve()
        database_url = env.get("DATABASE_URL") or f"sqlite:///{home / 'syncengine.sqlite3'}"
        database_url = _with_psycopg2(database_url)
        return cls(
            home=home,
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or env.get("REDIS_TLS_URL") or None,
            services={name: _service(env, name) for name in SERVICES},
            secret_key=_secret(env, "SYNCENGINE_SECRET_KEY"),
            openai_api_key=_secret(env, "OPENAI_API_KEY"),
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            openai_model=env.get("OPENAI_MODEL", "gpt-4o-mini"),
            documents_token=_secret(env, "SYNCENGINE_DOCUMENTS_TOKEN"),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            max_body_bytes=_whole(env, "SYNCENGINE_MAX_BODY_BYTES", 1024 * 1024),
            inbox_lease_seconds=_whole(env, "SYNCENGINE_INBOX_LEASE", 300),
            inbox_max_attempts=_whole(env, "SYNCENGINE_INBOX_MAX_ATTEMPTS", 8),
            max_document_bytes=_whole(env, "SYNCENGINE_MAX_DOCUMENT_BYTES", 10 * 1024 * 1024),
            pay_suppliers=_flag(env.get("SYNCENGINE_PAY_SUPPLIERS")),
            sweep_lookback_seconds=_whole(env, "SYNCENGINE_SWEEP_LOOKBACK", 120),
            redis_ssl_cert_reqs=env.get("REDIS_SSL_CERT_REQS", "required").strip().lower(),
            metrics_token=_secret(env, "SYNCENGINE_METRICS_TOKEN"),
            public_url=(env.get("SYNCENGINE_PUBLIC_URL") or "").rstrip("/") or None,
            openai_detail=env.get("OPENAI_DETAIL", "high"),
            ocr_max_side=_whole(env, "SYNCENGINE_OCR_MAX_SIDE", 2048),
            ocr_engine=env.get("SYNCENGINE_OCR_ENGINE", "auto").lower(),
            bind_host=env.get("SYNCENGINE_BIND_HOST") or "0.0.0.0",
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings.from_env()


# What is read where it is used rather than once into Settings (leases and intervals a module reads when it
# is imported, an operator's knob read at each call, the plugins), from the process's environment as
# Settings is: this module is the one that reads it.
def env_value(name: str, default: str = "") -> str:
    """The variable as set, else `default` (set but empty counts as not set)."""
    return os.environ.get(name) or default


def env_seconds(name: str, default: float) -> float:
    return float(env_value(name) or default)


def environment() -> dict[str, str]:
    """A copy of this process's environment, for the child processes it starts."""
    return dict(os.environ)
