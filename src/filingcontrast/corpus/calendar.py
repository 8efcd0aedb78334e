"""NYSE trading calendar (exchange_calendars' XNYS), shared by the simulator and the event study."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from filingcontrast.errors import UserError

CALENDAR = "XNYS"
# exchange_calendars needs explicit bounds; these cover the oldest EDGAR 8-Ks and a year ahead.
FIRST_DAY = "1993-01-04"


def last_day() -> dt.date:
    """The calendar's last day: a year from today (exchange_calendars knows no further)."""
    return dt.date.today() + dt.timedelta(days=365)


@functools.lru_cache(maxsize=1)
def xnys() -> Any:
    import exchange_calendars as xcals

    return xcals.get_calendar(CALENDAR, start=FIRST_DAY, end=last_day().isoformat())


def sessions(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """Trading days in [start, end], as dates."""
    return [ts.date() for ts in xnys().sessions_in_range(str(start), str(end))]


def is_session(day: dt.date) -> bool:
    return bool(xnys().is_session(str(day)))


def parse_date_arg(value: str | dt.date | None, name: str) -> dt.date | None:
    """A YYYY-MM-DD command-line date (None and dates pass through); UserError naming `name`."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"{name} {value!r}: not a date (YYYY-MM-DD)") from None
