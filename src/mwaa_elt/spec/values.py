"""Parsers for the small value languages of a spec: schedules, durations, dates, identifiers."""

from __future__ import annotations

import difflib
import functools
import re
import zoneinfo
from datetime import date, timedelta
from typing import Any

from croniter import croniter

IDENTIFIER = r"^[a-z][a-z0-9_]{0,63}$"
IDENTIFIER_RE = re.compile(IDENTIFIER)
# SQL names in check/wait fields: letters, digits and '_', so nothing can be injected.
SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
SQL_NAME_RE = re.compile(SQL_NAME)
DURATION = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
_CRON_HELP = (
    "expected 5 fields 'minute hour day-of-month month day-of-week' such as '0 6 * * *', "
    f"or a preset: {', '.join(PRESETS)}"
)


def check_identifier(value: str, what: str) -> str:
    """`value` when it is a lower-case identifier; ValueError naming `what` otherwise."""
    if not IDENTIFIER_RE.match(value):
        raise ValueError(
            f"'{value}' is not a valid {what}; use 1-64 lower-case letters, digits and '_', "
            "starting with a letter"
        )
    return value


def check_cron(value: str) -> str:
    """A cron expression or preset, else ValueError saying what is allowed."""
    text = value.strip()
    if text.startswith("@"):
        if text in PRESETS:
            return text
        close = difflib.get_close_matches(text, PRESETS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(f"'{value}' is not a schedule preset; {hint}allowed: {', '.join(PRESETS)}")
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"'{value}' has {len(fields)} fields, not a cron expression; {_CRON_HELP}")
    try:
        croniter(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"'{value}' is not a valid cron expression ({exc}); {_CRON_HELP}"
        ) from None
    return text


def parse_duration(value: str) -> timedelta:
    """`30s`, `5m`, `1h`, `1d` or a combination such as `1h30m` as a timedelta."""
    match = _DURATION_RE.match(value)
    if not value or not match:
        raise ValueError(value)
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def check_duration(value: Any) -> Any:
    """Pydantic before-validator: a duration string, else ValueError with the accepted forms."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return value  # the str type check reports it
    text = str(value)
    try:
        delta = parse_duration(text)
    except ValueError:
        suggestion = f" (e.g. {value}s)" if isinstance(value, int) else ""
        raise ValueError(
            f"'{value}' is not a duration; write a number and a unit: 30s, 5m, 1h, 1d or "
            f"a combination such as 1h30m{suggestion}"
        ) from None
    if delta.total_seconds() <= 0:
        raise ValueError(f"'{value}' is zero; a duration must be positive")
    return text


# start_date bounds: from the Unix epoch (Airflow's timestamps) to a date a schedule can still
# compute runs after without overflowing.
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2099, 12, 31)


def check_date(value: Any) -> Any:
    """Pydantic before-validator: an ISO date `YYYY-MM-DD` (YAML date or string)."""
    if isinstance(value, date):
        parsed = value
    elif not isinstance(value, str) or not re.match(ISO_DATE, value.strip()):
        raise ValueError(
            f"'{value}' is not a date in the form YYYY-MM-DD (ISO 8601), e.g. 2024-01-01"
        )
    else:
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"'{value}' is not a valid date ({exc}); e.g. 2024-01-01") from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        # Airflow computes run dates past start_date: near year 9999 they overflow.
        raise ValueError(
            f"'{value}' is outside the dates a schedule can start on ({EARLIEST_DATE} to "
            f"{LATEST_DATE}); write the first date the pipeline's data covers, e.g. 2024-01-01"
        )
    return parsed


def scalar_text(value: Any) -> Any:
    """Pydantic before-validator: numbers and booleans written unquoted become their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(value: str) -> str:
    """An IANA time zone name (UTC, Europe/Paris), else ValueError with the closest name."""
    zones = _time_zones()
    if value in zones or value == "UTC":
        return value
    if not zones:  # no tz database to list: ask zoneinfo directly
        try:
            zoneinfo.ZoneInfo(value)
            return value
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    close = difflib.get_close_matches(value, sorted(zones), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ValueError(
        f"'{value}' is not an IANA time zone; {hint}write a name such as UTC, Europe/Paris or "
        "America/New_York (abbreviations such as CEST or offsets such as +02:00 are not zones)"
    )
