"""BodyLimit over real HTTP: a body is capped while it streams, chunked or declared."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import served
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsletter.asgi import BodyLimit

LIMIT = 1000


async def echo_length(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    app = Starlette(routes=[Route("/", echo_length, methods=["POST"])], middleware=[Middleware(BodyLimit, limit=LIMIT)])
    with served(app) as url:
        yield url


def pieces(total: int, size: int = 100) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"a" * size


@pytest.mark.parametrize("size", [0, LIMIT])
def test_a_body_up_to_the_limit_is_read(base, size):
    assert httpx.post(base, content=pieces(size)).text == str(size)
    assert httpx.post(base, content=b"a" * size).text == str(size)


def test_a_chunked_body_over_the_limit_is_refused(base):
    answer = httpx.post(base, content=pieces(100 * LIMIT))
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413 and answer.text == "The request body is over the limit of 1,000 bytes."


def test_a_declared_length_over_the_limit_is_refused_before_reading(base):
    answer = httpx.post(base, content=b"a" * (LIMIT + 1))
    assert answer.status_code == 413
