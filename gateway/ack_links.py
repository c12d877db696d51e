"""Acknowledgement links: one tap from the notification to "I'm dealing with it".

A link is `{public_url}/ack/{token}`; the token is signed with the accounts'
key and names one alert and one contact, with a random id (`jti`) that the
store marks used, so a link acknowledges once, even across restarts. It
expires after `auth.ack_link_minutes`: a link found in a phone's history the
next day must not close tonight's alert.

The link is the credential (a carer woken at 3 a.m. is not asked to sign in),
so it is treated like a notification URL: never logged, and the pages it opens
are not cached and send no referrer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from gateway.accounts import Accounts

KIND = "ack"
"""The `typ` claim: a bearer token or session cookie is never taken for a link, nor a link for them."""


@dataclass(frozen=True, slots=True)
class AckClaims:
    """What a genuine, unexpired link says: this alert, this contact, this use."""

    alert: str
    contact: str
    jti: str

    @property
    def resolve_id(self) -> str:
        """The second (and last) use of a link: resolving, once, after it acknowledged."""
        return f"{self.jti}.resolve"


class LinkRefused(Exception):
    """A link that cannot be used; `status` is the HTTP answer, `title` and `detail` the page's words."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class AckLinks:
    """Makes links when messages are sent, and reads them when they are opened."""

    def __init__(self, accounts: Accounts, public_url: str | None, minutes: int) -> None:
        self.accounts = accounts
        self.public_url = public_url.rstrip("/") if public_url else None
        self.lifetime = timedelta(minutes=minutes)

    def link(self, alert_id: str, contact: str) -> str | None:
        """The URL for this contact and alert, signed now; None without a public address (or key yet),
        and then the message keeps its plain hint."""
        if self.public_url is None or not self.accounts.ready:
            return None
        claims = {"typ": KIND, "alert": alert_id, "contact": contact, "jti": secrets.token_urlsafe(12)}
        return f"{self.public_url}/ack/{self.accounts.sign(claims, self.lifetime)}"

    def read(self, token: str) -> AckClaims:
        """The claims of a link we made and that is still in time; otherwise why not (400 or 410)."""
        claims = self.accounts.verify(token, (KIND,))
        if claims is None:
            if self.accounts.expired(token, (KIND,)):
                raise LinkRefused(410, "This link has expired",
                                  f"Links in notifications work for {_hours(self.lifetime)}. "
                                  "If the alert is still open, use the newest notification or the "
                                  "tecmon app.")
            raise LinkRefused(400, "This link is not valid",
                              "It may have been cut short when it was copied. Open it again from the "
                              "notification, or use the tecmon app.")
        alert, contact, jti = (claims.get(key) for key in ("alert", "contact", "jti"))
        if not (isinstance(alert, str) and isinstance(contact, str) and isinstance(jti, str)):
            raise LinkRefused(400, "This link is not valid", "It does not name an alert and a contact.")
        return AckClaims(alert, contact, jti)


def _hours(lifetime: timedelta) -> str:
    minutes = int(lifetime.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes} minutes"
    return "1 hour" if minutes == 60 else f"{minutes // 60} hours"
