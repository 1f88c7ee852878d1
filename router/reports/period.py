"""Report periods: `--from`/`--to` days (the end day included) as a half-open UTC range."""

from datetime import UTC, date, datetime, time, timedelta


def period(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start 00:00, the day after end 00:00) in UTC; ValueError when end comes before start."""
    if start is not None and end is not None and end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    since = None if start is None else datetime.combine(start, time(), tzinfo=UTC)
    if end is None or end == date.max:  # the last day there is: no end at all
        return since, None
    return since, datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
