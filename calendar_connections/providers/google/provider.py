"""Google Calendar as the registry knows it."""

from __future__ import annotations

from ...models import Provider
from ..session import ProviderSession
from ..spec import ClientContext, ProviderSpec
from ..types import CalendarClient
from .account import LABEL, api_base_url, fetch_account, missing_scopes, oauth_config
from .client import GoogleCalendarClient


def _client(context: ClientContext) -> CalendarClient:
    settings = context.settings
    http = ProviderSession(
        LABEL, oauth_config(settings), settings, context.token, context.save_token
    )
    return GoogleCalendarClient(
        http, api_base_url(settings), context.calendar_id, batch_url=settings.google_batch_url
    )


GOOGLE = ProviderSpec(
    name=Provider.GOOGLE,
    label=LABEL,
    oauth=oauth_config,
    client=_client,
    fetch_account=fetch_account,
    missing_scopes=missing_scopes,
)
