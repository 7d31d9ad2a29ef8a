"""Fields the CRM does not hold (guests, reminders, a meeting) that writes must keep."""

from __future__ import annotations

GUESTS = [
    {"email": "ana@example.test", "responseStatus": "accepted"},
    {"email": "bo@example.test", "responseStatus": "needsAction", "optional": True},
]
REMINDERS = {"useDefault": False, "overrides": [{"method": "email", "minutes": 30}]}
MEET = {
    "conferenceId": "abc-defg-hij",
    "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
    "entryPoints": [{"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"}],
}
OUTLOOK_GUESTS = [
    {"type": "required", "emailAddress": {"name": "Ana", "address": "ana@example.test"}},
    {"type": "optional", "emailAddress": {"name": "Bo", "address": "bo@example.test"}},
]
