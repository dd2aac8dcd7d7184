"""The notification channels: names for apprise URLs (DRONELOG_NOTIFY_CHANNELS).

apprise (https://github.com/caronc/apprise) speaks WeCom group bots (`wecombot://KEY`),
DingTalk group bots (`dingtalk://TOKEN[/SECRET]`), e-mail (`mailto://`, `mailtos://`), JSON
webhooks (`json://`, `jsons://`) and about a hundred more behind one URL form, with
attachments where the service takes them (e-mail does; a group bot gets the text).

Recipients: an e-mail channel sends to the route's recipients (its URL's `to=` otherwise);
a group bot posts to its group, whoever the route names. `relay`: the bots' HTTP requests
go to this base URL instead of their hosts (path and query kept), for an outbound relay, or
a local stand-in in tests; never the internet from a test.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import apprise
import structlog

log = structlog.get_logger("dronelog.notify")

_EMAIL = ("mailto", "mailtos")
_BOT_ATTRIBUTES = ("api_url", "notify_url")  # where apprise's bot plugins keep their endpoint


class ChannelError(ValueError):
    """The channels' configuration cannot be read."""


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    scheme: str  # what kind it is (mailtos, wecombot, ...), never its secrets

    @property
    def email(self) -> bool:
        return self.scheme in _EMAIL


class Channels:
    def __init__(self, urls: dict[str, str], relay: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.urls = urls
        self.relay = relay.rstrip("/") if relay else None
        self.timeout_s = timeout_s

    @classmethod
    def from_setting(cls, value: str | None, relay: str | None = None) -> "Channels":
        """From DRONELOG_NOTIFY_CHANNELS (a JSON object of name → apprise URL)."""
        if not value:
            return cls({}, relay)
        try:
            urls = json.loads(value)
        except json.JSONDecodeError as error:
            raise ChannelError(f"DRONELOG_NOTIFY_CHANNELS is not JSON: {error.msg}") from None
        if not isinstance(urls, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in urls.items()):
            raise ChannelError("DRONELOG_NOTIFY_CHANNELS must be an object of name → URL")
        for name, url in urls.items():
            if apprise.Apprise.instantiate(url) is None:
                raise ChannelError(f"channel {name!r}: apprise does not take its URL "
                                   f"(scheme {urlsplit(url).scheme!r})")
        return cls(urls, relay)

    def describe(self) -> list[ChannelInfo]:
        return [ChannelInfo(name, urlsplit(url).scheme) for name, url in sorted(
            self.urls.items())]

    def info(self, name: str) -> ChannelInfo | None:
        url = self.urls.get(name)
        return ChannelInfo(name, urlsplit(url).scheme) if url else None

    def send(self, channel: str, recipients: Sequence[str], title: str, body: str,
             attachments: Sequence[Path] = ()) -> str | None:
        """Send one message; None once the service took it, else why not."""
        url = self.urls.get(channel)
        if url is None:
            return f"no channel {channel!r} in DRONELOG_NOTIFY_CHANNELS"
        info = self.info(channel)
        plugin = apprise.Apprise.instantiate(
            _with_recipients(url, recipients) if info.email and recipients else url)
        if plugin is None:
            return f"channel {channel!r}: apprise does not take its URL"
        plugin.socket_read_timeout = plugin.socket_connect_timeout = self.timeout_s
        if self.relay:
            self._redirect(plugin)
        notifier = apprise.Apprise()
        notifier.add(plugin)
        attach = apprise.AppriseAttachment([str(path) for path in attachments]) \
            if attachments else None
        try:
            sent = notifier.notify(body=body, title=title, attach=attach)
        except Exception as error:  # a plugin that raises is a failed attempt, not a crash
            return f"{type(error).__name__}: {error}"[:500]
        return None if sent else f"channel {channel!r} ({info.scheme}) refused or unreachable"

    def _redirect(self, plugin) -> None:
        for attribute in _BOT_ATTRIBUTES:
            value = getattr(plugin, attribute, None)
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                parts = urlsplit(value)
                moved = self.relay + parts.path + (f"?{parts.query}" if parts.query else "")
                setattr(plugin, attribute, moved)


def _with_recipients(url: str, recipients: Sequence[str]) -> str:
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("to="))
    to = "to=" + ",".join(recipients)
    return parts._replace(query=f"{query}&{to}" if query else to).geturl()
