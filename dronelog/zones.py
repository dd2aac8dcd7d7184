"""A time zone's name as every entrance takes it: an IANA name this machine knows.

The network file (`[scenario]` and each `[[sites]]`), the admin API's site and
`DRONELOG_NETWORK_TIMEZONE` all take `TimeZoneName`, so an unknown zone is refused where it
is given, with the name, instead of failing later wherever a time is shown in it (a
notification, a report, a request id).
"""

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field


def known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. "
                         "Asia/Shanghai)") from error
    return value


TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(known_zone)]
