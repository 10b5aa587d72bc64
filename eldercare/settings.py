"""The platform's one Settings object, read from ELDERCARE_* environment variables.

Built in ``main()`` or a lifespan and passed down, never at import time, so
tests build their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eldercare.protocol import Limits


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """``mqtt://[user[:password]@]host[:port]`` (mqtts:// for TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme!r}")
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


DEV_API_SECRET = "development-only-secret-change-me"  # noqa: S105 - refused outside demo/tests


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELDERCARE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # None means "not configured": `eldercare demo` then starts embedded services.
    database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    db_pool_max: int = Field(default=10, ge=1)

    # Ingest
    ingest_client_id: str = "eldercare-ingest"
    ingest_shared_group: str | None = None  # MQTT v5 $share group for several ingest processes
    ingest_batch_max: int = Field(default=4000, ge=1)
    ingest_batch_max_age_ms: int = Field(default=100, ge=1)
    ingest_receive_maximum: int = Field(default=8000, ge=1, le=65535)
    ingest_publish_internal: bool = True
    max_payload_bytes: int = Field(default=16_384, ge=256)
    max_imu_payload_bytes: int = Field(default=524_288, ge=1024, le=1_000_000)  # broker: 1 MiB
    max_clock_skew_s: int = Field(default=300, ge=0)
    # How long ingest waits on its database before taking a connection for lost and
    # retrying on a new one (ingest/database.py): a database that stops answering with
    # the socket left open stalled ingest for good, and a stop with it.
    ingest_db_connect_timeout_s: int = Field(default=10, ge=2)  # libpq connect_timeout
    ingest_db_statement_timeout_s: float = Field(default=30.0, gt=0)  # server side
    # client side, per transaction (a batch, one message of a split batch, a lookup):
    # longer than the statement timeout, so that a merely slow statement is the server's
    ingest_db_reply_timeout_s: float = Field(default=60.0, gt=0)
    ingest_db_keepalives_idle_s: int = Field(default=30, ge=1)
    ingest_db_keepalives_interval_s: int = Field(default=10, ge=1)
    ingest_db_keepalives_count: int = Field(default=3, ge=1)

    # Storage
    raw_retention_days: int = Field(default=30, ge=1)
    compress_after_days: int = Field(default=7, ge=1)
    rollup_retention_days: int = Field(default=730, ge=1)
    imu_retention_days: int = Field(default=90, ge=1)
    partitions_ahead_days: int = Field(default=3, ge=1)

    # Dispatch
    dispatch_client_id: str = "eldercare-dispatch"
    # alerts that create emergency orders; a value no alert has is refused at start (before
    # 2026-12-04 "Critical" silently turned emergency dispatch off)
    dispatch_auto_severities: list[Literal["critical", "high", "medium", "low"]] = ["critical"]
    dispatch_auto_types: list[str] = []  # empty: every type of those severities
    dispatch_sla_s: float = Field(default=900.0, gt=0)  # the 15-minute service circle
    dispatch_offer_timeout_s: float = Field(default=60.0, gt=0)
    dispatch_check_in_radius_m: float = Field(default=150.0, gt=0)
    dispatch_catalogue: str | None = None  # YAML path; None: the packaged catalogue
    dispatch_retry_s: float = Field(default=5.0, gt=0)  # re-offer waiting emergencies

    # The residents this alert engine decides for: k/n owns resident ids = k mod n
    # (alerts/shard.py); n engines together cover everyone.
    alert_shard: str = Field(default="0/1", pattern=r"^\s*\d+\s*/\s*\d+\s*$")
    # The standalone engine's MQTT session on the ingested topic (ingest/consumer.py):
    # "<alerts_client_id>-<k>-of-<n>"; the broker keeps it while the engine is down.
    alerts_client_id: str = "eldercare-alerts"

    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a terminal

    api_secret_key: SecretStr = SecretStr(DEV_API_SECRET)
    # API (api/): token lifetimes, login rate limit, how long a looked-up login
    # session is trusted in-process (revocation elsewhere takes effect within it),
    # and how coarse a family member's view of a location is (decimal places).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_access_ttl_s: int = Field(default=900, ge=30)
    api_refresh_ttl_s: int = Field(default=7 * 86_400, ge=300)
    api_login_attempts: int = Field(default=5, ge=1)
    api_login_window_s: int = Field(default=300, ge=1)
    api_principal_cache_s: float = Field(default=5.0, ge=0)
    api_family_location_decimals: int = Field(default=3, ge=0, le=6)
    api_web_dir: str | None = None  # None: the repository's web/ when present

    def api_secret_is_default(self) -> bool:
        return self.api_secret_key.get_secret_value() == DEV_API_SECRET

    @model_validator(mode="after")
    def _shard_in_range(self) -> Settings:
        k, n = (int(part) for part in self.alert_shard.split("/"))
        if not 0 <= k < n:
            raise ValueError(f"ELDERCARE_ALERT_SHARD {self.alert_shard!r}: need k/n with k < n")
        return self

    @model_validator(mode="after")
    def _known_auto_dispatch_types(self) -> Settings:
        if not self.dispatch_auto_types:
            return self
        from alerts.detectors.types import AlertType  # noqa: PLC0415  (the engine owns the types)

        unknown = sorted(set(self.dispatch_auto_types) - {t.value for t in AlertType})
        if unknown:  # before 2026-12-04 "falls" silently sent nobody to any fall
            raise ValueError(
                f"ELDERCARE_DISPATCH_AUTO_TYPES: no alert has type {', '.join(unknown)}"
                f" (the types: {', '.join(t.value for t in AlertType)})"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        secret = self.api_secret_key.get_secret_value()
        if self.environment == "production" and (
            secret == DEV_API_SECRET or "change-me" in secret or len(secret.encode()) < 32
        ):  # .env.example's placeholder, or a key too short to sign tokens with
            raise ValueError(
                "ELDERCARE_API_SECRET_KEY must be set in production: a random key of at least"
                " 32 bytes (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_imu_payload_bytes=self.max_imu_payload_bytes,
            max_future_ms=self.max_clock_skew_s * 1000,
            max_age_ms=self.raw_retention_days * 86_400_000,
        )

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ValueError("ELDERCARE_DATABASE_URL is not set")
        return self.database_url

    def mqtt(self) -> MqttEndpoint:
        if not self.mqtt_url:
            raise ValueError("ELDERCARE_MQTT_URL is not set")
        return parse_mqtt_url(self.mqtt_url)
