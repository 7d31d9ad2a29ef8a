"""Outlook as the registry knows it: Graph lists occurrences and has no EXDATE."""

from __future__ import annotations

from ...models import Provider
from ..channels import ChannelClient
from ..session import ProviderSession
from ..spec import Capabilities, ClientContext, ProviderSpec
from ..types import CalendarClient
from .account import LABEL, api_base_url, fetch_account, oauth_config
from .client import GraphCalendarClient
from .subscriptions import GraphSubscriptions


def _client(context: ClientContext) -> CalendarClient:
    settings = context.settings
    http = ProviderSession(
        LABEL, oauth_config(settings), settings, context.token, context.save_token
    )
    return GraphCalendarClient(
        http, api_base_url(settings), context.calendar_id, page_size=settings.outlook_page_size
    )


def _subscriptions(context: ClientContext) -> ChannelClient:
    settings = context.settings
    http = ProviderSession(
        LABEL, oauth_config(settings), settings, context.token, context.save_token
    )
    return GraphSubscriptions(http, api_base_url(settings), context.calendar_id or None)


OUTLOOK = ProviderSpec(
    name=Provider.OUTLOOK,
    label=LABEL,
    oauth=oauth_config,
    client=_client,
    fetch_account=fetch_account,
    capabilities=Capabilities(
        lists_occurrences=True,
        reports_unlisted_removals=False,
        supports_exdate=False,
        moves_instances_by_occurrence=True,
    ),
    channels=_subscriptions,
    webhook_slug="outlook",
)
