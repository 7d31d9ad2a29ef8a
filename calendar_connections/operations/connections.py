"""Connecting and disconnecting a provider: the OAuth authorization-code flow with PKCE."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.common.security import generate_token
from cryptography.fernet import InvalidToken
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import Settings
from ..crypto import TokenCipher
from ..models import (
    CalendarConnection,
    CalendarEvent,
    OAuthState,
    Provider,
    SyncStatus,
    utcnow,
)
from ..providers.errors import ProviderNotConfigured, TokenUnreadable
from ..providers.registry import label, provider_spec
from ..providers.spec import ProviderSpec
from ..sync import lease
from ..sync.channels import stop_channels
from ..sync.engine import SyncAlreadyRunning
from ..token_store import load_token, save_token
from .reads import reading

log = logging.getLogger(__name__)

# How long a disconnect holds the sync lease while it revokes and forgets (freed with the row).
DISCONNECT_LEASE = timedelta(seconds=60)


class AuthorizationStateError(Exception):
    """The callback's ``state`` is unknown, expired, used, or not this user's or provider's."""


class CalendarAccessNotGranted(Exception):
    """The user consented but left out a scope the service needs (Google lets them untick)."""

    def __init__(self, provider: Provider, missing: list[str]) -> None:
        super().__init__(
            f"{label(provider)} access was granted without calendar access "
            f"(missing: {', '.join(missing)}): connect again and allow access to your calendar."
        )
        self.missing = missing


class AuthorizationDenied(Exception):
    """The provider sent the user back with an OAuth error instead of a code."""

    def __init__(self, error: str, description: str | None) -> None:
        super().__init__(error)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the user's browser, and the state that will come back."""

    url: str
    state: str


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _configured(provider: Provider, settings: Settings) -> ProviderSpec:
    """The provider's registration, when the service has its OAuth client credentials."""
    spec = provider_spec(provider)
    oauth = spec.oauth(settings)
    if not oauth.client_id or not oauth.client_secret:
        raise ProviderNotConfigured(
            f"{spec.label} is not configured on this service: set "
            f"{provider.value}_CLIENT_ID and {provider.value}_CLIENT_SECRET."
        )
    return spec


def start_authorization(
    session: Session,
    cipher: TokenCipher,
    *,
    user_id: str,
    provider: Provider,
    settings: Settings,
) -> AuthorizationRequest:
    """Create a single-use state bound to the user and provider; return the authorize URL."""
    spec = _configured(provider, settings)
    now = utcnow()
    session.execute(delete(OAuthState).where(OAuthState.expires_at < now))

    state = generate_token(43)
    code_verifier = generate_token(64)  # RFC 7636: 43 to 128 characters
    url = spec.authorization_url(settings, state=state, code_verifier=code_verifier)
    session.add(
        OAuthState(
            state_hash=_state_hash(state),
            user_id=user_id,
            provider=provider.value,
            code_verifier_encrypted=cipher.encrypt(code_verifier),
            redirect_uri=spec.oauth(settings).redirect_uri,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.oauth_state_ttl),
        )
    )
    session.flush()
    return AuthorizationRequest(url=url, state=state)


def consume_state(session: Session, *, state: str, user_id: str, provider: Provider) -> OAuthState:
    """Mark ``state`` used, once; raise ``AuthorizationStateError`` saying why it cannot be."""
    key = _state_hash(state)
    row = session.get(OAuthState, key)
    # Another user's state is reported exactly like an unknown one.
    if row is None or row.user_id != user_id:
        raise AuthorizationStateError(
            "Unknown authorization state: start the connection again from the authorize step."
        )
    if row.provider != provider.value:
        raise AuthorizationStateError(
            f"This authorization state was issued for {label(row.provider)}, not {label(provider)}."
        )
    now = utcnow()
    if row.used_at is not None:
        raise AuthorizationStateError(
            "This authorization state was already used: start the connection again."
        )
    if row.expires_at <= now:
        raise AuthorizationStateError(
            "This authorization state has expired: start the connection again."
        )
    # The conditional update makes reuse impossible even for two callbacks racing.
    claimed = session.execute(
        update(OAuthState)
        .where(OAuthState.state_hash == key, OAuthState.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise AuthorizationStateError(
            "This authorization state was already used: start the connection again."
        )
    return row


def complete_authorization(
    session: Session,
    cipher: TokenCipher,
    *,
    user_id: str,
    provider: Provider,
    settings: Settings,
    state: str,
    code: str | None,
    error: str | None = None,
    error_description: str | None = None,
) -> CalendarConnection:
    """Check the state, exchange the code (PKCE), read the account, store tokens encrypted.

    Commits twice: once when the state is consumed, before any provider call, so that a
    state stays single-use whatever happens next; once when the connection is stored.
    """
    spec = _configured(provider, settings)
    pending = consume_state(session, state=state, user_id=user_id, provider=provider)
    redirect_uri = pending.redirect_uri
    session.commit()
    try:
        verifier = cipher.decrypt(pending.code_verifier_encrypted)
    except InvalidToken:  # its key was retired during the authorization
        raise AuthorizationStateError(
            "This authorization can no longer be completed: start it again."
        ) from None

    if error:
        raise AuthorizationDenied(error, error_description)
    if not code:
        raise AuthorizationStateError("The callback has neither `code` nor `error`.")

    token = spec.exchange_code(
        settings, code=code, code_verifier=verifier, redirect_uri=redirect_uri
    )
    try:
        return _connect(session, cipher, user_id, provider, settings, token)
    except Exception:
        # Whatever failed, the grant must not outlive it at the provider.
        session.rollback()
        spec.revoke(settings, token)
        raise


def _connect(
    session: Session,
    cipher: TokenCipher,
    user_id: str,
    provider: Provider,
    settings: Settings,
    token: dict[str, Any],
) -> CalendarConnection:
    """Check the grant, read the account and store the connection with its tokens."""
    spec = provider_spec(provider)
    missing = spec.missing_scopes(token)
    if missing:
        raise CalendarAccessNotGranted(provider, missing)
    account = spec.fetch_account(settings, token)

    connection = _get_or_create_connection(session, user_id, provider)
    if connection.calendar_id and connection.calendar_id != account.calendar_id:
        # Another account: what was synced belongs to the old calendar, and so do its push
        # channels (stopped with the old account's grant, still stored; best effort).
        stop_channels(session, settings, connection)
        _forget_provider_copies(session, connection)
        connection.links.clear()
        connection.reset_sync_state()
    connection.calendar_id = account.calendar_id
    connection.account_email = account.email
    connection.connected = True
    connection.last_sync_status = SyncStatus.PENDING.value
    connection.last_sync_error = None
    # A new grant: a channel the provider refused is tried again at the next sync.
    connection.push_error = None
    connection.push_retry_at = None
    save_token(connection, token, cipher)
    session.commit()
    log.info("connected user=%s provider=%s", user_id, provider.value)
    return connection


def find_connection(
    session: Session, user_id: str, provider: Provider
) -> CalendarConnection | None:
    """The user's connection to ``provider``, if any."""
    return session.execute(
        select(CalendarConnection).where(
            CalendarConnection.user_id == user_id,
            CalendarConnection.provider == provider.value,
        )
    ).scalar_one_or_none()


def _get_or_create_connection(
    session: Session, user_id: str, provider: Provider
) -> CalendarConnection:
    connection = find_connection(session, user_id, provider)
    if connection is not None:
        return connection
    try:
        with session.begin_nested():
            connection = CalendarConnection(user_id=user_id, provider=provider.value)
            session.add(connection)
    except IntegrityError:
        # Two callbacks of one user raced: the other one created the row first.
        connection = find_connection(session, user_id, provider)
        if connection is None:
            raise
    return connection


def disconnect(
    session: Session,
    cipher: TokenCipher,
    *,
    user_id: str,
    provider: Provider,
    settings: Settings,
) -> bool:
    """Revoke at the provider where it can be, then forget tokens and sync state.

    The CRM's own events stay. Returns whether there was a connection to remove.
    """
    connection = find_connection(session, user_id, provider)
    if connection is None:
        return False
    # A running sync holds the lease: disconnecting under it would orphan the event it is
    # writing. The caller gets a 409 and tries again once the sync is done (seconds).
    if not lease.claim(session, connection.id, lease.new_owner(), DISCONNECT_LEASE):
        raise SyncAlreadyRunning(connection.id)
    spec = provider_spec(provider)
    try:
        token = load_token(connection, cipher)
    except TokenUnreadable:
        token = None  # nothing to revoke with; forgetting the connection still works
        log.warning("disconnect of %s: the stored token is unreadable, not revoked", provider.value)
    # Before the revocation: stopping a channel needs the grant. Best effort, never raises.
    stop_channels(session, settings, connection)
    if token:
        spec.revoke(settings, token)
    _forget_provider_copies(session, connection)
    session.delete(connection)  # its links go with it (cascade)
    session.flush()
    log.info("disconnected user=%s provider=%s", user_id, provider.value)
    return True


def _forget_provider_copies(session: Session, connection: CalendarConnection) -> None:
    """Drop the copies of the provider's own events; the CRM's own events stay.

    A later reconnect lists them again; keeping unlinked copies would duplicate them then.
    """
    copies = session.execute(
        select(CalendarEvent).where(
            CalendarEvent.user_id == connection.user_id,
            CalendarEvent.origin == connection.provider,
        )
    ).scalars()
    for event in copies:
        session.delete(event)


@dataclass(frozen=True)
class ConnectionStatus:
    """A provider's connection as the user sees it, connected or not."""

    provider: str
    connected: bool
    calendar_id: str | None = None
    account_email: str | None = None
    last_sync_at: datetime | None = None
    last_sync_status: str | None = None
    last_sync_error: str | None = None
    push_active: bool = False
    push_expires_at: datetime | None = None


def push_active(push_expires_at: datetime | None, now: datetime) -> bool:
    """Whether a channel of the connection is open now (notifications arrive), from its
    ``push_expires_at``."""
    return push_expires_at is not None and push_expires_at > now


# The columns a status shows, labelled as ConnectionStatus's fields (a Core select of these,
# not ORM objects: a status is read and shown, never changed). A field added to the status is
# a column added here.
STATUS_COLUMNS = (
    CalendarConnection.provider,
    CalendarConnection.connected,
    CalendarConnection.calendar_id,
    CalendarConnection.account_email,
    CalendarConnection.last_sync_at,
    CalendarConnection.last_sync_status,
    CalendarConnection.last_sync_error,
    CalendarConnection.push_expires_at,
)
_STATUSES = select(*STATUS_COLUMNS).where(CalendarConnection.user_id == bindparam("user_id"))


def connection_statuses(session: Session, user_id: str) -> list[ConnectionStatus]:
    """One status per provider, GOOGLE then OUTLOOK, for providers never connected too; one
    statement whatever the number of connections. Reads what the session has flushed."""
    with reading(session) as connection:
        rows = connection.execute(_STATUSES, {"user_id": user_id}).mappings().all()
    by_provider = {row["provider"]: row for row in rows}
    now = utcnow()
    statuses = []
    for provider in Provider:
        row = by_provider.get(provider.value)
        if row is None:
            statuses.append(ConnectionStatus(provider.value, connected=False))
        else:
            statuses.append(
                ConnectionStatus(
                    **{
                        **row,
                        "connected": bool(row["connected"]),
                        "push_active": push_active(row["push_expires_at"], now),
                    }
                )
            )
    return statuses


def connection_status(session: Session, user_id: str, provider: Provider) -> ConnectionStatus:
    """The status of the user's connection to ``provider``."""
    return next(
        status
        for status in connection_statuses(session, user_id)
        if status.provider == provider.value
    )
