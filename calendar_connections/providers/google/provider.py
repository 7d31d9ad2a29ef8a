"""Google Calendar as the registry knows it."""

from __future__ import annotations

from ...models import Provider
from ..channels import ChannelClient
from ..session import ProviderSession
from ..spec import ClientContext, ProviderSpec
from ..types import CalendarClient
from .account import LABEL, api_base_url, fetch_account, missing_scopes, oauth_config
from .channels import GoogleChannels
from .client import GoogleCalendarClient


def _client(context: ClientContext) -> CalendarClient:
    settings = context.settings
    http = ProviderSession(
        LABEL, oauth_config(settings), settings, context.token, context.save_token
    )
    return GoogleCalendarClient(
        http, api_base_url(settings), context.calendar_id, batch_url=settings.google_batch_url
    )


def _channels(context: ClientContext) -> ChannelClient:
    settings = context.settings
    http = ProviderSession(
        LABEL, oauth_config(settings), settings, context.token, context.save_token
    )
    return GoogleChannels(http, api_base_url(settings), context.calendar_id or "primary")


GOOGLE = ProviderSpec(
    name=Provider.GOOGLE,
    label=LABEL,
    oauth=oauth_config,
    client=_client,
    fetch_account=fetch_account,
    missing_scopes=missing_scopes,
    channels=_channels,
    webhook_slug="google",
)
