"""The subscriber's own pages: unsubscribe (a confirm page, and the one-click POST of RFC 8058) and preferences."""

from __future__ import annotations

import hmac
import logging

import sqlalchemy as sa
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from .. import subscribers
from ..subscribers import Status, Subscriber
from .pages import PRIVATE, Refusal, page
from .security import Verified, form_key, posted, same_origin, verify

log = logging.getLogger(__name__)

ONE_CLICK_REASON = "one-click (List-Unsubscribe-Post)"
PAGE_REASON = "web page"
RESUBSCRIBE_REASON = "resubscribed on the preferences page"
# Addresses we stopped for the reader's mailbox's sake: only an `unsubscribed` reader may come back on the page.
SUPPRESSED = {
    Status.BOUNCED: "We stopped sending to this address because mail to it bounced. "
    "To get the update again, reply to any of our emails and we will check the address with you.",
    Status.COMPLAINED: "We stopped sending to this address because one of our emails was reported as spam from it. "
    "To get the update again, reply to any of our emails.",
}


def unsubscribe_page(request: Request) -> Response:
    """GET: never changes anything (link scanners fetch URLs); shows the confirm button."""
    verified = verify(request, any_age=True)
    return page(
        request, "unsubscribe.html", subscriber=verified.subscriber, token=verified.token, done=False, headers=PRIVATE
    )


@posted
def unsubscribe(request: Request, form: FormData) -> Response:
    """POST with List-Unsubscribe=One-Click (RFC 8058): unsubscribe and answer 200, whoever posts it."""
    verified = verify(request, any_age=True)
    if form.get("List-Unsubscribe") != "One-Click":
        raise Refusal(
            400, "Nothing changed", "This address only unsubscribes when asked with List-Unsubscribe=One-Click."
        )
    engine = request.app.state.engine
    subscriber = verified.subscriber
    if subscriber.status == Status.ACTIVE:  # a bounced or complained address stays as it is: already suppressed
        reason = PAGE_REASON if form.get("via") == "page" else ONE_CLICK_REASON
        subscribers.set_status(engine, subscriber.id, Status.UNSUBSCRIBED, reason=reason)
        log.info("subscriber %d unsubscribed (%s)", subscriber.id, reason)
        subscriber = subscribers.by_id(engine, subscriber.id) or subscriber
    return page(request, "unsubscribe.html", subscriber=subscriber, token=verified.token, done=True, headers=PRIVATE)


def preferences_page(request: Request) -> Response:
    """GET: the subscriber's networks as a form that posts back here."""
    return preferences(request, verify(request))


@posted
def save_preferences(request: Request, form: FormData) -> Response:
    """POST from our preferences page: the networks ticked; none ticked unsubscribes, any ticked resubscribes."""
    verified = verify(request)
    subscriber = verified.subscriber
    expected = form_key(request.app.state.signer, verified.token, subscriber.id)
    if not same_origin(request) or not hmac.compare_digest(str(form.get("form_key", "")), expected):
        raise Refusal(
            403,
            "Nothing changed",
            "This form was not sent from our preferences page. Open the link in your email again.",
        )
    if subscriber.status in SUPPRESSED:
        raise Refusal(409, "Nothing changed", SUPPRESSED[subscriber.status])
    known = request.app.state.content.folder().newsletter.network_ids
    chosen = {str(network) for network in form.getlist("network")}
    if not chosen <= known:
        raise Refusal(
            400, "Nothing changed", "The form named a network we do not have. Open the link in your email again."
        )
    engine = request.app.state.engine
    notice = choose_networks(engine, subscriber, chosen, known=known)
    fresh = subscribers.by_id(engine, subscriber.id) or subscriber
    return preferences(request, Verified(fresh, verified.token), notice=notice)


def choose_networks(engine: sa.Engine, subscriber: Subscriber, chosen: set[str], *, known: frozenset[str]) -> str:
    """Store the subscriber's choice of networks; the notice that tells them what changed."""
    if not chosen:
        if subscriber.status == Status.ACTIVE:
            subscribers.set_status(engine, subscriber.id, Status.UNSUBSCRIBED, reason=PAGE_REASON)
            log.info("subscriber %d unsubscribed (preferences page)", subscriber.id)
        return "You have left every network: you will not get the update any more."
    subscribers.set_networks(engine, subscriber.id, chosen, known_networks=known)
    if subscriber.status != Status.ACTIVE:
        subscribers.set_status(engine, subscriber.id, Status.ACTIVE, reason=RESUBSCRIBE_REASON)
        log.info("subscriber %d resubscribed (preferences page)", subscriber.id)
        return "Welcome back: you will get the update again."
    return "Saved: your networks are updated."


def preferences(request: Request, verified: Verified, *, notice: str | None = None) -> Response:
    subscriber = verified.subscriber
    return page(
        request,
        "preferences.html",
        subscriber=subscriber,
        token=verified.token,
        form_key=form_key(request.app.state.signer, verified.token, subscriber.id),
        notice=notice,
        suppressed=SUPPRESSED.get(subscriber.status),
        # the form posts back here, and the Origin check needs the browser to name our origin
        headers={**PRIVATE, "Referrer-Policy": "same-origin"},
    )
