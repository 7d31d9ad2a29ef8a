"""Connecting a Google calendar."""

from __future__ import annotations

from ..models import Provider
from .oauth import oauth_blueprint

blp = oauth_blueprint(Provider.GOOGLE, "Connect a Google calendar (OAuth 2.0 with PKCE)")
