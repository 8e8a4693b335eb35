"""The messages of an issue: one Composer per set of networks a reader belongs to, each rendered once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..assembly import AssembledIssue
from ..errors import SubscriberError
from ..message import Composer
from ..render import render
from .config import SendConfig


def composer(issue: AssembledIssue, networks: frozenset[str], config: SendConfig, *, test: bool = False) -> Composer:
    """The Composer of `issue` as a reader of `networks` sees it, signed as `config` says."""
    return Composer(
        issue.newsletter,
        render(issue.variant(networks)),
        issue_date=issue.date,
        signer=config.signer,
        dkim=config.dkim,
        bounce_address=None if test else config.bounce_address,  # a test copy is nobody's: its bounce marks no one
        unsubscribe_address=config.unsubscribe_address,
        test=test,
    )


@dataclass(frozen=True)
class Variants:
    """The issue's Composers, one per set of networks a reader belongs to, each rendered when first needed."""

    issue: AssembledIssue
    config: SendConfig
    _cache: dict[frozenset[str], Composer] = field(default_factory=dict, compare=False)

    def composer(self, networks: frozenset[str]) -> Composer:
        found = self._cache.get(networks)
        if found is None:
            found = self._cache[networks] = composer(self.issue, networks, self.config)
        return found


def issue_networks(issue: AssembledIssue, networks: Iterable[str] | None) -> frozenset[str]:
    """The networks a send goes to: the issue's, or the chosen ones among them."""
    chosen = frozenset(networks or issue.networks)
    unknown = chosen - set(issue.networks)
    if unknown:
        raise SubscriberError(
            f"the issue of {issue.date} does not go to {', '.join(sorted(unknown))}"
            f" (it goes to {', '.join(issue.networks)})"
        )
    return chosen
