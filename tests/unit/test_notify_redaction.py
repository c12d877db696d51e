"""Notification URLs hold credentials and private topics: logs and stored attempts keep only scheme and host.

Whatever apprise says back is scrubbed of every secret fragment of the URL,
even the ones it quotes without the URL around them.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from alerts.notify import redact, scrub, secret_parts

# --- redaction --------------------------------------------------------------------------------

REDACT_CASES = [
    ("json://127.0.0.1:9000/", "json://127.0.0.1:9000/…", ()),
    ("json://127.0.0.1:9000", "json://127.0.0.1:9000/…", ()),
    ("json://user:hunter22@127.0.0.1:9000/hooks/abcd?token=s3cr3t&x=1#frag", "json://127.0.0.1:9000/…", ("user", "hunter22", "hooks", "abcd", "s3cr3t", "frag")),
    ("JSONS://Alice:P%40ssw0rd@Example.COM/notify", "jsons://example.com/…", ("Alice", "P%40ssw0rd", "P@ssw0rd", "notify")),
    ("json://[::1]:9000/secret-path", "json://[::1]:9000/…", ("secret-path",)),
    ("ntfy://tecmon-julie", "ntfy://…", ("tecmon-julie",)),
    ("ntfy://tecmon-julie/", "ntfy://…", ("tecmon-julie",)),
    ("ntfys://user:pass1234@ntfy.example.org:8443/julie-topic?priority=high", "ntfys://ntfy.example.org:8443/…", ("pass1234", "julie-topic")),
    ("tgram://123456789:AAHbotToken_xyz/-1001234567", "tgram://…", ("123456789", "AAHbotToken_xyz", "-1001234567")),
    ("discord://webhook_id_1/webhook_token_2", "discord://…", ("webhook_id_1", "webhook_token_2")),
    ("slack://TokenA/TokenB/TokenC/#night-shift", "slack://…", ("TokenA", "TokenB", "TokenC", "night-shift")),
    ("pover://userkey1@apptoken2", "pover://…", ("userkey1", "apptoken2")),
    ("mailto://carer:mailpass@gmail.com?to=sam.smith@example.com", "mailto://gmail.com/…", ("carer", "mailpass", "sam.smith@example.com")),
    ("twilio://ACsid123:authtok456@+15551234567/+15557654321", "twilio://…", ("ACsid123", "authtok456", "+15551234567")),
    ("https://hooks.example.com/services/T000/B000/XXXX", "https://hooks.example.com/…", ("services", "XXXX")),
    ("json://host.example:99999999/x", "json://…", ("99999999",)),
    ("json://bad host/x", "json://…", ("bad host",)),
    ("not a url at all", "…", ("not a url at all",)),
    ("", "…", ()),
]


@pytest.mark.parametrize(("url", "expected", "secrets"), REDACT_CASES, ids=[c[0] or "empty" for c in REDACT_CASES])
def test_redact_keeps_scheme_and_host_only(url: str, expected: str, secrets: tuple[str, ...]) -> None:
    redacted = redact(url)
    assert redacted == expected
    for secret in secrets:
        assert secret not in redacted


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=5, max_size=20)


@given(user=token, password=token, path=token, query=token)
def test_redact_never_returns_credentials_path_or_query(user: str, password: str, path: str, query: str) -> None:
    for secret in (user, password, path, query):
        assume(secret not in "jsons://notify.example.org:8080/…")
    url = f"jsons://{user}:{password}@notify.example.org:8080/{path}?token={query}"
    assert redact(url) == "jsons://notify.example.org:8080/…"
    assert {user, password, path, query} <= secret_parts(url)


@pytest.mark.parametrize("url", [c[0] for c in REDACT_CASES if c[2]])
def test_every_hidden_fragment_is_known_for_scrubbing(url: str) -> None:
    secrets = secret_parts(url)
    hidden = next(c[2] for c in REDACT_CASES if c[0] == url)
    for secret in hidden:
        assert scrub(f"apprise said: {secret}!", secrets) == "apprise said: …!"


def test_scrub_hides_urls_and_the_secret_fragments_apprise_quotes_without_a_url() -> None:
    url = "tgram://123456789:AAHbotToken_xyz/julie_family_chat"
    text = ("A connection error occurred sending Telegram:@julie_family_chat notification. "
            "POST https://api.telegram.org/bot123456789:AAHbotToken_xyz/sendMessage")
    clean = scrub(text, secret_parts(url))
    assert "julie_family_chat" not in clean
    assert "AAHbotToken_xyz" not in clean
    assert "https://api.telegram.org/…" in clean

