"""Schedules as slots: intervals with anchors, cron expressions in time zones, missed-slot counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probekit.tracking.schedule import ScheduleError, floor_to_unit, parse_schedule

UTC = timezone.utc
CREATED = datetime(2025, 3, 12, 15, 47, 13, tzinfo=UTC)  # a Wednesday


def test_interval_anchors_floor_to_the_unit() -> None:
    assert parse_schedule("1d", created=CREATED).anchor == datetime(2025, 3, 12, tzinfo=UTC)
    assert parse_schedule("1w", created=CREATED).anchor == datetime(2025, 3, 10, tzinfo=UTC)  # Monday
    assert parse_schedule("6h", created=CREATED).anchor == datetime(2025, 3, 12, 15, tzinfo=UTC)
    assert parse_schedule("30m", created=CREATED).anchor == datetime(2025, 3, 12, 15, 47, tzinfo=UTC)
    start = datetime(2025, 1, 1, 6, tzinfo=UTC)
    assert parse_schedule("1d", created=CREATED, anchor=start).anchor == start


def test_interval_slots() -> None:
    daily = parse_schedule("1d", created=CREATED)
    # A job created mid-day is due at once (the slot at midnight), then every midnight.
    assert daily.latest_slot(CREATED) == datetime(2025, 3, 12, tzinfo=UTC)
    assert daily.latest_slot(datetime(2025, 3, 14, 0, 0, tzinfo=UTC)) == datetime(2025, 3, 14, tzinfo=UTC)
    assert daily.latest_slot(datetime(2025, 3, 11, tzinfo=UTC)) is None  # before the anchor
    assert daily.next_slot(CREATED) == datetime(2025, 3, 13, tzinfo=UTC)
    # Missed: after the slot of the 12th, due the 16th -> the 13th, 14th, 15th were missed.
    assert daily.slots_between(datetime(2025, 3, 12, tzinfo=UTC), datetime(2025, 3, 16, tzinfo=UTC)) == 3
    assert daily.slots_between(datetime(2025, 3, 12, tzinfo=UTC), datetime(2025, 3, 13, tzinfo=UTC)) == 0


def test_cron_slots_include_an_exact_fire_time_and_follow_the_time_zone() -> None:
    cron = parse_schedule("0 6 * * *")
    assert cron.is_cron
    assert cron.latest_slot(datetime(2025, 3, 12, 6, 0, tzinfo=UTC)) == datetime(2025, 3, 12, 6, tzinfo=UTC)
    assert cron.latest_slot(datetime(2025, 3, 12, 5, 59, 59, tzinfo=UTC)) == datetime(2025, 3, 11, 6, tzinfo=UTC)
    assert cron.next_slot(datetime(2025, 3, 12, 6, 0, tzinfo=UTC)) == datetime(2025, 3, 13, 6, tzinfo=UTC)
    berlin = parse_schedule("0 9 * * *", tz="Europe/Berlin")
    # 09:00 in Berlin is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST).
    assert berlin.latest_slot(datetime(2025, 1, 15, 12, tzinfo=UTC)) == datetime(2025, 1, 15, 8, tzinfo=UTC)
    assert berlin.latest_slot(datetime(2025, 7, 15, 12, tzinfo=UTC)) == datetime(2025, 7, 15, 7, tzinfo=UTC)
    assert parse_schedule("@weekly").latest_slot(CREATED) == datetime(2025, 3, 9, tzinfo=UTC)  # Sunday 00:00


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 24 * 60 * 40), st.integers(0, 24 * 60 * 40))
def test_cron_and_interval_agree_on_daily_slots(start_minutes: int, length_minutes: int) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    after, until = base + timedelta(minutes=start_minutes), base + timedelta(minutes=start_minutes + length_minutes)
    interval, cron = parse_schedule("1d", created=base), parse_schedule("0 0 * * *")
    assert interval.latest_slot(until) == cron.latest_slot(until)
    assert interval.slots_between(after, until) == cron.slots_between(after, until)


@pytest.mark.parametrize("text", ["", "daily", "0d", "61 * * * *", "* * *", "1y"])
def test_bad_schedules_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(ScheduleError, match="interval|positive"):
        parse_schedule(text)


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match="time zone"):
        parse_schedule("0 6 * * *", tz="Mars/Olympus")


def test_floor_to_week_is_monday() -> None:
    assert floor_to_unit(datetime(2025, 3, 16, 23, 59, tzinfo=UTC), "w") == datetime(2025, 3, 10, tzinfo=UTC)
    assert floor_to_unit(datetime(2025, 3, 17, 0, 0, tzinfo=UTC), "w") == datetime(2025, 3, 17, tzinfo=UTC)
