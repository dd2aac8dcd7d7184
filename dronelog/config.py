"""One place for settings: environment variables `DRONELOG_*`, then a TOML file, then defaults.

The TOML file is `dronelog.toml` in the working directory, or the path in `DRONELOG_CONFIG`.
"""

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _config_file() -> Path:
    return Path(os.environ.get("DRONELOG_CONFIG", "dronelog.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRONELOG_", extra="forbid")

    database_url: str = Field(
        "sqlite:///.dronelog/dronelog.db",
        description="SQLAlchemy URL; sqlite:///path (default) or postgresql+psycopg://...",
    )
    sqlite_synchronous: str = Field(
        "FULL", description="SQLite PRAGMA synchronous: FULL survives power loss, NORMAL does not"
    )
    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="mqtt://[user:pass@]host:port, or over TLS mqtts://[user:pass@]host:8883"
        "[?cafile=PATH][&certfile=PATH&keyfile=PATH] (docs/security.md)",
    )
    mqtt_protocol: str = Field("5", pattern=r"^(5|3\.1\.1)$",
                               description="MQTT 5 (default) or 3.1.1 (for brokers without 5)")
    mqtt_client_id: str = Field("dronelog-ingester", description="stable id: the broker keeps "
                                "this client's persistent session while it is away")
    shared_group: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="share the stream with the other ingesters of this group (MQTT shared "
                    "subscription $share/<group>/...); each needs its own mqtt_client_id")
    topic_prefix: str = Field("dronelog/v1", description="root of every dronelog topic")
    batch_size: int = Field(500, ge=1, le=10_000, description="store after this many messages")
    batch_interval_s: float = Field(0.05, gt=0, le=10, description="or after this long")
    receive_maximum: int = Field(
        2000, ge=1, le=65535, description="unacknowledged QoS 1 messages the broker may send us"
    )
    queue_limit: int = Field(20_000, ge=100, description="deliveries held in memory before "
                             "the network thread waits for the batch loop")
    max_payload_bytes: int = Field(65536, ge=256, description="larger payloads are dead-lettered")
    max_future_skew_s: float = Field(300, ge=0, description="reject event times further ahead")
    max_event_age_s: float = Field(30 * 86400, gt=0, description="reject event times older")
    retry_max_delay_s: float = Field(30, gt=0, description="cap of the storage retry backoff")
    receipts: bool = Field(True, description="publish a receipt to each sender after each "
                                             "stored batch (docs/contract.md, Receipts)")
    receipt_hold_s: float = Field(5.0, ge=0, le=60, description="a sender's receipt may wait "
                                  "this long to tell it about several batches (0: one receipt "
                                  "per batch, before its acknowledgements)")
    policy_file: str | None = Field(None, description="turnaround policies (TOML); default: "
                                    "the built-in defaults, as in config/turnaround.toml")
    stability_file: str | None = Field(None, description="stability per specimen type (TOML); "
                                       "default: the built-in catalogue, as in "
                                       "config/stability.toml")
    network_timezone: str = Field("Asia/Shanghai", description="the day of the daily report")
    language: str = Field("zh", pattern="^(zh|en)$", description="the network's language: "
                          "alert texts in MQTT and webhook payloads and the stored message")
    sweep_interval_s: float = Field(10, gt=0, description="how often the turnaround sweep runs")
    scheduler_lease_s: float = Field(30, ge=1, description="a scheduler that stops renewing "
                                     "its lease is taken over after this (at least 3 sweeps)")
    lost_link_s: float = Field(30, gt=0, description="no telemetry this long while airborne")
    off_route_corridor_m: float = Field(300, gt=0, description="allowed distance from route")
    battery_reserve_pct: float = Field(20, ge=0, le=90)
    temperature_max_gap_s: float = Field(120, gt=0, description="a payload temperature reading "
                                         "vouches for the box this long at most; the rest of "
                                         "a longer silence is unknown (temp_unknown_s)")
    webhook_url: str | None = Field(None, description="POST every alert change here")
    telemetry_full_days: float = Field(30, gt=0, description="after this, keep one telemetry "
                                       "report per drone and minute")
    telemetry_retention_days: float = Field(365, ge=0, description="after this, drop telemetry "
                                            "(0: keep forever); custody is never dropped")
    telemetry_seal_delay_s: float = Field(600, ge=60, description="seal a flight's telemetry "
                                          "this long after it ended: reports received later "
                                          "are counted as unsealed (docs/tamper-evidence.md)")
    api_host: str = Field("127.0.0.1", description="where `dronelog api` listens")
    api_port: int = Field(8080, ge=1, le=65535)
    trusted_proxies: str = Field(
        "",
        description="reverse proxies (addresses or networks, comma-separated) whose "
                    "X-Forwarded-For and X-Forwarded-Proto `dronelog api` believes; none by "
                    "default: the client address is the TCP peer's (docs/security.md)")
    token_ttl_h: float = Field(12, gt=0, description="a login's token expires after this long "
                               "(at most person_token_max_h)")
    person_token_max_h: float = Field(24, gt=0, description="the longest token an "
                                      "administrator may issue to a person (lab, dispatcher, "
                                      "admin); device tokens may live longer")
    password_min_length: int = Field(10, ge=8, le=200, description="the shortest password "
                                     "the API and `dronelog users` accept")
    dashboards_dir: str | None = Field(None, description="the web dashboards' folder served at "
                                       "/; default: dashboards/ beside the dronelog package")
    login_max_failures: int = Field(5, ge=1, description="refused logins of one user id within "
                                    "the login window before it is blocked (a client: 4x)")
    login_window_s: float = Field(900, gt=0, description="the login attempt limit's window")
    stream_poll_s: float = Field(0.05, gt=0, le=10, description="SQLite: how often the live "
                                 "feed checks the file for a commit (one PRAGMA data_version)")
    stream_fallback_s: float = Field(2.0, gt=0, le=60, description="PostgreSQL: how often the "
                                     "live feed reads without a notification, in case one "
                                     "was lost")
    stream_queue_events: int = Field(10_000, ge=1, description="how many events a slow live "
                                     "client may fall behind before it is sent a reset")
    auto_migrate: bool = Field(True, description="run database migrations when a service starts")
    log_format: str = Field("console", pattern="^(console|json)$")
    log_level: str = Field("INFO")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_config_file()),
        )
