"""Per-subscriber tokens: fixed length, bound to the address, tamper-evident, expiring."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from newsletter.errors import BadToken
from newsletter.tokens import PLACEHOLDER, TOKEN_LENGTH, Signer

signer = Signer("s3cret")


def test_round_trip_and_fixed_length():
    for subscriber_id in (1, 2**40):
        token = signer.sign(subscriber_id, "Jo@Example.org")
        assert len(token) == TOKEN_LENGTH == len(PLACEHOLDER)
        assert token.replace("-", "").replace("_", "").isalnum()
        assert signer.verify(token, "jo@example.org").subscriber_id == subscriber_id


def test_bound_to_address_and_secret():
    token = signer.sign(7, "jo@example.org")
    with pytest.raises(BadToken, match="does not match"):
        signer.verify(token, "sam@example.org")
    with pytest.raises(BadToken, match="does not match"):
        Signer("other").verify(token, "jo@example.org")


def test_tampered_token_is_refused():
    token = signer.sign(7, "jo@example.org")
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    with pytest.raises(BadToken):
        signer.verify(flipped, "jo@example.org")
    for bad in ("", "short", token + "x", "!" * TOKEN_LENGTH):
        with pytest.raises(BadToken, match="malformed"):
            signer.verify(bad, "jo@example.org")


def test_valid_for_at_least_60_days_then_expires():
    issued = time.time() - dt.timedelta(days=61).total_seconds()
    assert signer.verify(signer.sign(7, "jo@example.org", issued=issued), "jo@example.org")
    old = time.time() - dt.timedelta(days=181).total_seconds()
    with pytest.raises(BadToken, match="expired"):
        signer.verify(signer.sign(7, "jo@example.org", issued=old), "jo@example.org")


def test_peek_reads_claims_without_verifying():
    claims = Signer.peek(signer.sign(42, "jo@example.org", issued=1_800_000_000))
    assert claims.subscriber_id == 42 and claims.issued.year == 2027


def test_authentic_whatever_its_age_with_an_injected_clock():
    """An unsubscribe link must keep working as long as the reader has the email: authentic() ignores the age."""
    then = time.time() - dt.timedelta(days=400).total_seconds()
    token = Signer("s3cret", clock=lambda: then).sign(7, "jo@example.org")
    assert Signer.peek(token).issued.timestamp() == int(then)
    assert signer.expired(Signer.peek(token))
    with pytest.raises(BadToken, match="expired"):
        signer.verify(token, "jo@example.org")
    assert signer.authentic(token, "jo@example.org").subscriber_id == 7
    with pytest.raises(BadToken, match="does not match"):
        signer.authentic(token, "sam@example.org")
    with pytest.raises(BadToken, match="does not match"):
        Signer("other").authentic(token, "jo@example.org")
