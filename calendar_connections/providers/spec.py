"""What the engine and the connect flow need from a provider, and how providers differ."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from . import oauth as oauth_flow
from .channels import ChannelClient
from .http import OAuthClientConfig
from .types import CalendarClient

TokenSaver = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AccountInfo:
    """The connected account's primary calendar."""

    calendar_id: str
    email: str | None


@dataclass(frozen=True)
class Capabilities:
    """Where a provider's calendar model differs; the engine reads these, never a name."""

    # A listing shows a series' occurrences and exceptions, never its master (Graph calendar
    # views): the engine reads masters itself and tracks occurrences to cancel them.
    lists_occurrences: bool = False
    # An incremental listing reports the removal of an event it never listed (Google does;
    # a Graph delta does not, so inserted events are confirmed by a later listing).
    reports_unlisted_removals: bool = True
    # A series carries its cancelled instances as EXDATE lines; without, the engine deletes
    # the excluded occurrences one by one.
    supports_exdate: bool = True
    # A moved instance is written onto the listed occurrence it replaces, not inserted.
    moves_instances_by_occurrence: bool = False


@dataclass(frozen=True)
class ClientContext:
    """What a client factory gets: the settings, the stored token and where to save new ones."""

    settings: Settings
    token: dict[str, Any]
    save_token: TokenSaver
    calendar_id: str


@dataclass(frozen=True)
class ProviderSpec:
    """One provider as the service sees it: its name, its client, its OAuth and its quirks."""

    name: str
    label: str
    oauth: Callable[[Settings], OAuthClientConfig]
    client: Callable[[ClientContext], CalendarClient]
    fetch_account: Callable[[Settings, dict[str, Any]], AccountInfo]
    missing_scopes: Callable[[dict[str, Any]], list[str]] = field(default=lambda token: [])
    capabilities: Capabilities = field(default_factory=Capabilities)
    # Change notifications (push), when the provider has them: its channel client, and the
    # last segment of the webhook path its notifications are POSTed to.
    channels: Callable[[ClientContext], ChannelClient] | None = None
    webhook_slug: str | None = None

    def authorization_url(self, settings: Settings, *, state: str, code_verifier: str) -> str:
        """Where to send the user's browser to consent (PKCE, S256)."""
        return oauth_flow.authorization_url(self.oauth(settings), state, code_verifier)

    def exchange_code(
        self, settings: Settings, *, code: str, code_verifier: str, redirect_uri: str
    ) -> dict[str, Any]:
        """The token for an authorization code (raises our provider errors)."""
        return oauth_flow.exchange_code(
            self.label,
            self.oauth(settings),
            code=code,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
        )

    def revoke(self, settings: Settings, token: dict[str, Any]) -> None:
        """Revoke the grant where the provider can; failures are logged, never raised."""
        oauth = self.oauth(settings)
        if oauth.revoke_url:
            oauth_flow.revoke(self.name, oauth, token)
