"""The subscriber-facing web service: one-click unsubscribe, preferences, the web archive, meeting invitations.

A thin shell: it checks tokens and calls the subscriber store, assembly and rendering. It reads
no settings; the CLI passes in the folder, the store and the token signer.
"""

from .app import create_app
from .pages import Content, Refusal
from .security import BadTokenLimiter, RedactTokens, SecurityHeaders, Verified, form_key
from .subscription import ONE_CLICK_REASON, PAGE_REASON, RESUBSCRIBE_REASON

__all__ = [
    "ONE_CLICK_REASON",
    "PAGE_REASON",
    "RESUBSCRIBE_REASON",
    "BadTokenLimiter",
    "Content",
    "RedactTokens",
    "Refusal",
    "SecurityHeaders",
    "Verified",
    "create_app",
    "form_key",
]
