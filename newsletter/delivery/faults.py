"""Whose fault a delivery error is: one reader's, or the relay's, so that a broken relay pauses a send and fails nobody.

The relay's: a refusal of the send itself (RelayRefused: our sender, relaying, login, 5.7.x policy);
the same permanent reply, by status code, to `limit` different readers in a row (relays put the
reader's address in the text, so the text is not compared); or `limit` failures to reach it in a row.
"""

from __future__ import annotations

from ..errors import DeliveryError, PermanentDeliveryError, RelayRefused
from ..ledger import Claim


def describe(error: DeliveryError) -> str:
    """The server's reply as the ledger keeps it: "550 5.1.1 no such user", or what went wrong."""
    return f"{error.code} {error.reply}".strip() if error.code else str(error)


class RelayWatch:
    """Watches one run's errors in order; says when they are the relay's fault, and which refusals were the readers'."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status = ""  # the status code of the refusals in a row
        self.alike: list[tuple[Claim, PermanentDeliveryError]] = []  # the readers refused with it, not yet settled
        self.unreachable = 0

    def delivered(self) -> list[tuple[Claim, PermanentDeliveryError]]:
        """A message went through: the refusals before it were the readers' own (to be bounced where they say so)."""
        self.unreachable = 0
        return self.settle()

    def settle(self) -> list[tuple[Claim, PermanentDeliveryError]]:
        """The refusals held so far, now taken as the readers' own."""
        settled, self.alike, self.status = self.alike, [], ""
        return settled

    def refused(
        self, claim: Claim, error: PermanentDeliveryError
    ) -> tuple[str | None, list[tuple[Claim, PermanentDeliveryError]]]:
        """Count a permanent refusal: (why the relay is at fault, or None; the refusals of another status, settled)."""
        settled = self.settle() if error.status != self.status else []
        self.status = error.status
        self.alike.append((claim, error))
        readers = {c.subscriber_id for c, _ in self.alike}
        if len(readers) < self.limit:
            return None, settled
        code = error.status if error.status == str(error.code) else f"{error.code} {error.status}"
        return (
            f"the relay refused {len(readers)} different recipients in a row with {code}"
            f" (the last: {describe(error)}): it is refusing the send, not the readers, who are left queued"
        ), settled

    def unanswered(self, error: DeliveryError) -> str | None:
        """Count a failure to reach the relay: why the relay is at fault, or None."""
        self.unreachable += 1
        if self.unreachable < self.limit:
            return None
        return (
            f"the relay could not be reached or stopped answering {self.unreachable} times in a row (the last: {error})"
        )


def refusal(error: RelayRefused) -> str:
    """Why a refusal of the send itself pauses it."""
    return (
        f"the relay refused the send itself: {error}; a 5.7.x or sender refusal is about the relay's settings"
        " (sender, relaying, login, policy), not the reader, who is left queued"
    )
