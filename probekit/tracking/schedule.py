"""When a tracking job is due: its schedule as slots in time.

A schedule is either a fixed interval (`30m`, `6h`, `1d`, `2w`) or a cron expression (`0 6 * * 1`,
`@daily`; five fields, or six with seconds, evaluated in the job's time zone, UTC by default).

Slots are the points in time the schedule names. An interval schedule's slots are `anchor + k · interval`;
the anchor is the job's start (by default its creation time floored to the interval's unit: midnight UTC
for `Nd`, Monday 00:00 UTC for `Nw`, the full hour for `Nh`, the full minute for `Nm`). A cron schedule's
slots are its fire times. The slot that is due at time `now` is the latest slot at or before `now`; a job
created between two slots is therefore due at once (its first snapshot is taken on the first
`run-due` call), not only at the next slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from probekit.errors import ProbekitError

_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_MONDAY = datetime(1970, 1, 5, tzinfo=timezone.utc)  # the epoch was a Thursday
MAX_COUNTED_MISSED = 100_000
"""Missed cron slots are counted one by one up to this many (an interval's are computed exactly)."""


class ScheduleError(ProbekitError, ValueError):
    """A schedule string that is neither an interval nor a valid cron expression (the message says which forms work)."""


def utc(moment: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken to be UTC already)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _zone(tz: str) -> ZoneInfo | timezone:
    if tz.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {tz!r}: use an IANA name such as UTC or Europe/Berlin") from None


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: an interval with an anchor, or a cron expression in a time zone."""

    text: str
    """As the user wrote it (`1d`, `0 6 * * 1`)."""
    interval: timedelta | None = None
    """The fixed interval; None for a cron expression."""
    anchor: datetime | None = None
    """An interval's first slot (UTC)."""
    tz: str = "UTC"
    """Time zone of a cron expression."""

    @property
    def is_cron(self) -> bool:
        return self.interval is None

    def latest_slot(self, now: datetime) -> datetime | None:
        """The latest slot at or before `now` (UTC), or None when the schedule has none yet."""
        now = utc(now)
        if self.interval is not None:
            assert self.anchor is not None
            if now < self.anchor:
                return None
            steps = (now - self.anchor) // self.interval
            return self.anchor + steps * self.interval
        from croniter import croniter

        # croniter's get_prev is strict: start one second after `now` (floored) so a slot at `now` counts.
        start = now.astimezone(_zone(self.tz)).replace(microsecond=0) + timedelta(seconds=1)
        return utc(croniter(self.text, start).get_prev(datetime))

    def next_slot(self, now: datetime) -> datetime:
        """The first slot strictly after `now` (UTC)."""
        now = utc(now)
        if self.interval is not None:
            assert self.anchor is not None
            if now < self.anchor:
                return self.anchor
            return self.anchor + ((now - self.anchor) // self.interval + 1) * self.interval
        from croniter import croniter

        return utc(croniter(self.text, now.astimezone(_zone(self.tz))).get_next(datetime))

    def slots_between(self, after: datetime, until: datetime) -> int:
        """How many slots lie strictly after `after` and strictly before `until` (the missed ones when the
        last slot run was `after` and the due one is `until`); cron slots are counted up to
        MAX_COUNTED_MISSED."""
        after, until = utc(after), utc(until)
        if until <= after:
            return 0
        if self.interval is not None:
            assert self.anchor is not None
            first = self.next_slot(after)
            if first >= until:
                return 0
            return int((until - first - timedelta(microseconds=1)) // self.interval) + 1
        from croniter import croniter

        it = croniter(self.text, after.astimezone(_zone(self.tz)))
        count = 0
        while count < MAX_COUNTED_MISSED and utc(it.get_next(datetime)) < until:
            count += 1
        return count


def floor_to_unit(moment: datetime, unit: str) -> datetime:
    """`moment` (UTC) floored to the start of its minute, hour, day (midnight UTC) or week (Monday)."""
    moment = utc(moment).replace(second=0, microsecond=0)
    if unit == "m":
        return moment
    moment = moment.replace(minute=0)
    if unit == "h":
        return moment
    moment = moment.replace(hour=0)
    if unit == "d":
        return moment
    return moment - timedelta(days=(moment - _MONDAY).days % 7)


def parse_schedule(text: str, *, created: datetime | None = None, anchor: datetime | None = None, tz: str = "UTC") -> Schedule:
    """Parse `--every`: `Nm|Nh|Nd|Nw` (an interval anchored at `anchor`, default `created` floored to the
    unit) or a cron expression (`croniter` syntax, evaluated in `tz`). Raises ScheduleError with the fix."""
    text = " ".join(text.split())
    match = _INTERVAL.match(text)
    if match:
        count, unit = int(match.group(1)), match.group(2)
        if count <= 0:
            raise ScheduleError(f"interval {text!r} must be positive, e.g. 1d")
        start = utc(anchor) if anchor is not None else floor_to_unit(created or datetime.now(timezone.utc), unit)
        return Schedule(text=text, interval=count * _UNITS[unit], anchor=start, tz="UTC")
    from croniter import croniter

    _zone(tz)  # fails early on an unknown zone
    if not text or not croniter.is_valid(text):
        raise ScheduleError(
            f"schedule {text!r} is neither an interval nor a cron expression: use e.g. 30m, 6h, 1d, 1w, "
            "'0 6 * * *' (06:00 daily) or @weekly")
    return Schedule(text=text, tz=tz)
