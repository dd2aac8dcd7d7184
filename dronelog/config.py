"""One place for settings: environment variables `DRONELOG_*`, then a TOML file, then defaults.

The TOML file is `dronelog.toml` in the working directory, or the path in `DRONELOG_CONFIG`.

Everything dronelog writes by default lives in one home, `DRONELOG_HOME` (default: the user
data folder, e.g. ~/.local/share/dronelog on Linux, from platformdirs): the SQLite database,
the demo's broker data and its logs; so a command finds the same data wherever it runs.
"""

import os
from pathlib import Path

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dronelog.zones import TimeZoneName


def _config_file() -> Path:
    return Path(os.environ.get("DRONELOG_CONFIG", "dronelog.toml"))


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("dronelog", appauthor=False))


# CAAC AC-92-FS-002 (2026): flight data recordable, replayable and kept at least 24
# calendar months; 731 days cover any 24 calendar months (docs/operations.md, "Retention").
MIN_FLIGHT_DATA_DAYS = 731


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRONELOG_", extra="forbid")

    home: Path = Field(default_factory=default_home, description="where the database, the "
                       "demo's broker data and the logs live by default (DRONELOG_HOME)")
    database_url: str = Field(
        "", description="SQLAlchemy URL; sqlite:///path or postgresql+psycopg://...; default: "
        "sqlite in the home, <home>/dronelog.db",
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
    batch_interval_s: float = Field(0.03, gt=0, le=10, description="or after this long")
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
    receipts_mqtt_url: str = Field(
        "", description="publish receipts on a connection of their own, as this login "
        "(mqtt:// or mqtts://, as DRONELOG_MQTT_URL), so that under a backlog they are not "
        "held behind the ingester's incoming messages; it must not be the ingester's login "
        "(docs/security.md). Empty: on the ingester's connection")
    receipt_hold_s: float = Field(5.0, ge=0, le=60, description="a sender's receipt may wait "
                                  "this long to tell it about several batches (0: one receipt "
                                  "per batch, before its acknowledgements)")
    policy_file: str | None = Field(None, description="turnaround policies (TOML); default: "
                                    "the built-in defaults, as in config/turnaround.toml")
    stability_file: str | None = Field(None, description="stability per specimen type (TOML); "
                                       "default: the built-in catalogue, as in "
                                       "config/stability.toml")
    dispatch_file: str | None = Field(None, description="dispatch rules (TOML): consumption "
                                      "model, fixed daily departures with cut-offs, routes "
                                      "that wait for an airspace approval; default: the "
                                      "built-in consumption and no fixed departures "
                                      "(config/dispatch.toml shows the format)")
    network_timezone: TimeZoneName = Field("Asia/Shanghai",
                                           description="the day of the daily report")
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
    notify_channels: str | None = Field(
        None, description="the notification channels by name, as a JSON object of apprise "
        "URLs, e.g. {\"lab-mail\": \"mailtos://user:pass@smtp.example.org?from=...\", "
        "\"wecom\": \"wecombot://KEY\", \"dingtalk\": \"dingtalk://TOKEN\"}; secret: "
        "never shown by the API (docs/notifications.md)")
    notify_bot_relay: str | None = Field(
        None, description="send the WeCom and DingTalk bots' HTTP requests to this base URL "
        "instead of their hosts (an outbound relay; a local stand-in in tests)")
    notify_rate_per_hour: int = Field(30, ge=1, le=10_000, description="messages a channel "
                                      "sends in any hour; the rest go in digests")
    notify_landing_lead_min: float = Field(10, gt=0, le=120, description="tell the receiving "
                                           "lab this long before a flight's ETA")
    telemetry_full_days: float | None = Field(
        None, description="opt-in thinning: after this many days keep one telemetry report per "
        "drone and minute; at least 731 (24 months, CAAC AC-92-FS-002); default: never thin")
    telemetry_retention_days: float | None = Field(
        None, description="opt-in expiry: after this many days drop telemetry; at least 731 "
        "(24 months, CAAC AC-92-FS-002); default: keep forever; custody is never dropped")
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
                                       "/; default: the dashboards shipped in the package")
    login_max_failures: int = Field(5, ge=1, description="refused logins of one user id within "
                                    "the login window before it is blocked (a client: 4x)")
    login_window_s: float = Field(900, gt=0, description="the login attempt limit's window")
    stream_poll_s: float = Field(0.02, gt=0, le=10, description="SQLite: how often the live "
                                 "feed checks the file for a commit (one PRAGMA data_version)")
    stream_fallback_s: float = Field(2.0, gt=0, le=60, description="PostgreSQL: how often the "
                                     "live feed reads without a notification, in case one "
                                     "was lost")
    stream_direct_writes: bool = Field(
        True, description="the live streams write each batch straight to their connections "
        "under `dronelog api` (false: every write through the ASGI server, dearer per stream)")
    stream_queue_events: int = Field(10_000, ge=1, description="how many events a slow live "
                                     "client may fall behind before it is sent a reset")
    auto_migrate: bool = Field(True, description="run database migrations when a service starts")
    log_format: str = Field("console", pattern="^(console|json)$")
    log_dashboard_files: bool = Field(False, description="an access log line for every "
                                      "dashboard file served (by default only failures; API "
                                      "requests are always logged)")
    log_level: str = Field("INFO")

    @field_validator("notify_channels")
    @classmethod
    def _channels_usable(cls, value: str | None) -> str | None:
        """A channel apprise cannot take is a configuration error at start, in every process,
        not a crash of the scheduler (which raises the alerts) on its first message."""
        if value:
            from dronelog.notify.channels import Channels  # apprise loads only when needed
            Channels.from_setting(value)
        return value

    @field_validator("telemetry_full_days", "telemetry_retention_days")
    @classmethod
    def _flight_data_kept_24_months(cls, days: float | None, info) -> float | None:
        if days is not None and days < MIN_FLIGHT_DATA_DAYS:
            raise ValueError(
                f"{info.field_name} = {days:g} would thin or drop flight data younger than 24 "
                f"months; CAAC AC-92-FS-002 requires it kept in full for at least 24 calendar "
                f"months: give at least {MIN_FLIGHT_DATA_DAYS} days, or leave it unset "
                "(docs/operations.md, Retention)")
        return days

    @field_validator("receipts_mqtt_url")
    @classmethod
    def _receipts_login_of_their_own(cls, url: str, info) -> str:
        """A second connection under the ingester's login would, on a broker that takes the
        login as client id (the shipped Mosquitto), take over the ingester's persistent
        session and wipe the messages queued for it."""
        if url:
            from dronelog.ingest.mqtt_source import BrokerAddress
            receipts = BrokerAddress.parse(url)
            try:
                ingester = BrokerAddress.parse(info.data.get("mqtt_url", ""))
            except ValueError:
                return url  # DRONELOG_MQTT_URL's own error says what is wrong with it
            if receipts.username and receipts.username == ingester.username:
                raise ValueError(
                    "logs in as the ingester itself (DRONELOG_MQTT_URL); the receipts need a "
                    "login of their own (docs/security.md, Receipts)")
        return url

    @model_validator(mode="after")
    def _database_in_the_home(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'dronelog.db'}"
        return self

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


def invalid_configuration(error: ValidationError) -> str:
    """A settings error for people: each setting and what is wrong with it, never the value
    given (it may be a password, a bot key or a database URL with its credentials)."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        variable = f"DRONELOG_{where.upper()}" if problem["loc"] else where
        lines.append(f"  {variable}: {problem['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)

