"""An owner's calendar as an RFC 5545 iCalendar feed that Outlook can subscribe to.

* Times are Copenhagen wall times with `TZID=Europe/Copenhagen`, and the feed carries the
  zone's VTIMEZONE (EU rules: summer time from the last Sunday of March to the last Sunday
  of October), so a client without the IANA database still places 10:00 at 10:00 on both
  sides of a daylight-saving change.
* UID is stable per activity and SEQUENCE grows with every change of the entry, so a client
  updates the event in place instead of adding a second one.
* Cancelled activities: in `remove` mode they are not in the feed at all (a subscribed
  calendar shows what the feed holds, so omitting is how an entry goes); in `mark` mode
  they stay with STATUS:CANCELLED, the "Aflyst: " subject and TRANSP:TRANSPARENT (free).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard

from calendar_sync.feed import FeedEntry

TZID: Final = "Europe/Copenhagen"
COPENHAGEN: Final = ZoneInfo(TZID)
PRODID: Final = "-//Mediegruppen//CRM calendar-sync//DA"
# How often a subscriber should fetch the feed again (RFC 7986, and Outlook's own name).
REFRESH: Final = timedelta(minutes=15)


def copenhagen_zone() -> Timezone:
    """The VTIMEZONE of Europe/Copenhagen under the EU rules in force since 1996."""
    zone = Timezone()
    zone.add("tzid", TZID)
    summer = TimezoneDaylight()
    summer.add("tzname", "CEST")
    summer.add("dtstart", datetime(1981, 3, 29, 2, 0, 0))
    summer.add("rrule", {"freq": "yearly", "bymonth": 3, "byday": "-1su"})
    summer.add("tzoffsetfrom", timedelta(hours=1))
    summer.add("tzoffsetto", timedelta(hours=2))
    winter = TimezoneStandard()
    winter.add("tzname", "CET")
    winter.add("dtstart", datetime(1996, 10, 27, 3, 0, 0))
    winter.add("rrule", {"freq": "yearly", "bymonth": 10, "byday": "-1su"})
    winter.add("tzoffsetfrom", timedelta(hours=2))
    winter.add("tzoffsetto", timedelta(hours=1))
    zone.add_component(summer)
    zone.add_component(winter)
    return zone


def vevent(item: FeedEntry) -> Event:
    entry = item.entry
    event = Event()
    event.add("uid", item.uid)
    event.add("dtstamp", item.updated_at)
    event.add("last-modified", item.updated_at)
    event.add("sequence", item.sequence)
    event.add("dtstart", entry.start.astimezone(COPENHAGEN))
    event.add("dtend", entry.end.astimezone(COPENHAGEN))
    event.add("summary", entry.subject)
    if entry.body:
        event.add("description", entry.body)
    event.add("location", entry.location)
    event.add("categories", list(entry.categories))
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if entry.show_as == "free" else "OPAQUE")
    event.add("class", "PUBLIC")
    if entry.reminder_minutes is not None and not entry.cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", entry.subject)
        alarm.add("trigger", timedelta(minutes=-entry.reminder_minutes))
        event.add_component(alarm)
    return event


def render_feed(
    owner: str,
    entries: Iterable[FeedEntry],
    on_bad_entry: Callable[[FeedEntry, Exception], None] | None = None,
) -> bytes:
    """The feed; an entry that cannot be rendered is left out and handed to `on_bad_entry`,
    so one bad activity never takes the consultant's whole calendar down."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"CRM – {owner}")
    calendar.add("x-wr-timezone", TZID)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT15M")  # the older, non-standard name of the same
    calendar.add_component(copenhagen_zone())
    for item in entries:
        try:
            component = vevent(item)
            component.to_ical()
        except Exception as error:
            if on_bad_entry is None:
                raise
            on_bad_entry(item, error)
            continue
        calendar.add_component(component)
    ical: bytes = calendar.to_ical()
    return ical
