"""The pictures of content/images/, published at /images/<sha256 prefix>-<name> for the emails to link to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..images import DIGEST, PUBLIC_NAME, BadImage
from .pages import page

FOREVER = "public, max-age=31536000, immutable"  # the address names the content: it never changes
BRIEFLY = "public, max-age=300"


def picture(request: Request) -> Response:
    """A picture of the folder by its public name; an older digest of the same file gets the current picture,
    so an email sent before the picture changed still shows one (but is not told to keep it)."""
    match = PUBLIC_NAME.fullmatch(request.path_params["file"])
    try:
        if match is None:
            raise BadImage("not a picture address")
        found = request.app.state.content.folder().image(match.group(2))
    except BadImage:
        return page(request, "error.html", 404, title="No such picture", message="This picture is not published here.")
    current = match.group(1) == found.digest[:DIGEST]
    return Response(
        found.path.read_bytes(),
        media_type=found.media_type,
        headers={"Cache-Control": FOREVER if current else BRIEFLY},
    )
