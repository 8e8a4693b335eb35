"""How a send behaves: the delivery options (pace, retries, leases, quota) and the send configuration around them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..tokens import Signer

if TYPE_CHECKING:
    from ..dkim import DKIMKey


@dataclass(frozen=True)
class DeliveryOptions:
    concurrency: int = 4  # messages in flight: match the SMTP pool
    retry_base: float = 2.0  # seconds before the first retry of a 4xx; doubled each time, with jitter
    retry_max: float = 600.0
    max_attempts: int = 6  # a recipient still refused with 4xx after this many attempts fails
    pause_after_errors: int = 50  # consecutive delivery errors before the send pauses
    relay_fault_after: int = 5  # readers refused alike, or failures to reach the relay, in a row: the relay's fault
    lease: float = 60.0  # seconds a claim holds without renewal; then another process may take the row
    poll: float = 1.0  # seconds between looks at the ledger when there is nothing to claim
    per_hour: int | None = None  # messages in any hour, shared by every sender of the store (the relay's quota)

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts` + 1: exponential, with jitter so retries do not arrive together."""
        delay = min(self.retry_max, self.retry_base * 2 ** (attempts - 1))
        return delay * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class SendConfig:
    """Everything a send needs besides the issue, the store and the transport: the same for every send of a process."""

    signer: Signer  # signs each reader's unsubscribe and preferences links
    options: DeliveryOptions = field(default_factory=DeliveryOptions)
    dkim: DKIMKey | None = None  # signs each message, when set
    bounce_address: str | None = None  # the envelope sender becomes bounces+<subscriber id>@..., when set
    unsubscribe_address: str | None = None  # List-Unsubscribe's mailto, unsubscribe+<token>@..., read by the service
