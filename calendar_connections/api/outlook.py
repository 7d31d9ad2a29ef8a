"""Connecting an Outlook (Microsoft 365) calendar."""

from __future__ import annotations

from ..models import Provider
from .oauth import oauth_blueprint

blp = oauth_blueprint(Provider.OUTLOOK, "Connect an Outlook calendar (OAuth 2.0 with PKCE)")
