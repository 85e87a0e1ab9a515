"""Case tables and helpers shared by the requests and httpx integration tests.

Each case pairs what a caller writes with what the verifying server (``aws_server.py``, which
recomputes every signature with botocore) must receive. The tests judge our signing only by
that server's verdict and echo, never by recomputing anything with our own code.
"""

from __future__ import annotations

import hashlib
import io
import sys
from importlib.util import find_spec
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode

import pytest
from aws_server import (
    ACCESS_KEY,
    SECRET_KEY,
    SESSION_ACCESS_KEY,
    SESSION_SECRET_KEY,
    SESSION_TOKEN,
)

from apigw_iam_auth import ApiGwIamAuth

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from aws_server import AwsServer, RequestRecord


# The test extra installs httpx2 on Python 3.11+; on 3.10 it comes with the httpx2 extra, and
# CI's py3.10 cell installs it. Only CI's lowest cell runs 3.10 without it: it pins idna 3.4, our
# floor, and httpx2 needs idna 3.18. On 3.11+ a missing httpx2 fails these tests.
NEEDS_HTTPX2 = pytest.mark.skipif(
    sys.version_info < (3, 11) and find_spec("httpx2") is None,
    reason="httpx2 not installed on Python 3.10 (CI's lowest cell: its idna 3.4 is below httpx2's)",
)

REGION = "us-east-1"  # the verifying server's default scope; loopback hosts imply no region
LONG_TERM = (ACCESS_KEY, SECRET_KEY)
SESSION = (SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)
# Someone else's presigned link (an S3 download a redirect may point to): not ours to touch.
FOREIGN_LINK = (
    "/bucket/report.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAOTHER%2F20260101"
    "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300"
    f"&X-Amz-SignedHeaders=host&X-Amz-Signature={'0' * 64}"
)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MODES = (pytest.param(False, id="header"), pytest.param(True, id="presigned"))
REDIRECT_STATUSES = (301, 302, 303, 307, 308)

# (path as the caller writes it, path the server must receive on the request line).
# Both clients agree on these once the adapter has rewritten the URL into its signed form.
PATHS = (
    pytest.param("/", "/", id="root"),
    pytest.param("/prod/pets/", "/prod/pets/", id="trailing-slash"),
    pytest.param("/prod/café", "/prod/caf%C3%A9", id="unicode"),
    pytest.param("/prod/a b", "/prod/a%20b", id="space"),
    pytest.param("/prod/a%20b", "/prod/a%20b", id="encoded-space"),
    pytest.param("/prod/%40connections/abc%3D", "/prod/%40connections/abc%3D", id="websocket"),
    pytest.param("/prod/a%2Fb", "/prod/a%2Fb", id="encoded-slash"),
    pytest.param("/prod/a+b", "/prod/a+b", id="plus"),
    pytest.param("/prod/a*b(c)!", "/prod/a*b(c)!", id="sub-delims"),
    pytest.param("/prod/100%25", "/prod/100%25", id="encoded-percent"),
    pytest.param("/prod/%7Euser/a-b_c.d", "/prod/~user/a-b_c.d", id="unreserved"),
    pytest.param("/€ü%41", "/%E2%82%AC%C3%BCA", id="mhart-unicode"),
)

# (path and query as the caller writes them, the pairs the server must read, in that order):
# each pair goes in canonical encoding, so API Gateway reads exactly what was signed, and in
# the caller's order (SigV4 sorts them only to sign), which a repeated name's values keep.
QUERIES = (
    pytest.param("/prod/x?a=1&a=2&flag&empty=", "a=1&a=2&flag=&empty=", id="repeated-and-empty"),
    pytest.param("/prod/x?b=2&a=1", "b=2&a=1", id="unsorted"),
    pytest.param("/prod/x?id-type=x&id=1", "id-type=x&id=1", id="name-then-value-order"),
    pytest.param("/prod/x?q=a+b", "q=a%20b", id="plus-is-space"),
    pytest.param("/prod/x?q=%2B", "q=%2B", id="encoded-plus"),
    pytest.param("/prod/x?k=%7E&q=caf%C3%A9", "k=~&q=caf%C3%A9", id="escapes"),
    pytest.param("/prod/x?€ü=%41€ü", "%E2%82%AC%C3%BC=A%E2%82%AC%C3%BC", id="mhart-unicode"),
    pytest.param("/?&a=&&=&%41&", "a=&=&A=", id="mhart-empty-pieces"),
    pytest.param(
        "/prod/x?sort=price&sort=name&q=red+shoes",
        "sort=price&sort=name&q=red%20shoes",
        id="repeated-values-keep-their-order",
    ),
    pytest.param("/prod/x?z=1&a=b/c&z=0", "z=1&a=b%2Fc&z=0", id="reencoded-in-order"),
)


def as_read(query: str) -> str:
    """A query as a server reads it: pairs decoded ('+' is a space), re-encoded, in order.

    Plain queries go out as written, others with each pair in canonical form; either way the
    server must read exactly the pairs that were signed, in the order the caller gave them.
    """
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    encoded = [
        (quote(k, safe="~", errors="surrogateescape"), quote(v, safe="~", errors="surrogateescape"))
        for k, v in pairs
    ]
    return "&".join(f"{name}={value}" for name, value in encoded)


# params= as a mapping, and the query the server must receive: requests writes the space as
# '+' and the literal '+' as %2B; API Gateway reads '+' as a space, so both must survive.
PARAMS = {"q": "a b+c", "r": "%2B", "s": "é"}
PARAMS_WIRE = "q=a%20b%2Bc&r=%252B&s=%C3%A9"

# Binary content a little over one hashing chunk (1 MiB), so a file body is hashed in pieces.
BLOB = bytes(range(256)) * 4100
TEXT = "héllo wörld € ✓"

_SIGNING_NAMES = frozenset(
    {"authorization", "x-amz-security-token", "x-amz-signature", "x-amz-credential", "x-amz-date"}
)


def make_auth(
    *, presign: bool = False, credentials: tuple[str, ...] = LONG_TERM, **kwargs: object
) -> ApiGwIamAuth:
    """An auth object scoped like the verifying server, with static test credentials."""
    return ApiGwIamAuth(region=REGION, credentials=credentials, presign=presign, **kwargs)


def sha256(data: bytes) -> str:
    """Hex SHA-256, as the server echoes ``body_sha256``."""
    return hashlib.sha256(data).hexdigest()


def user_query(query: str) -> str:
    """A received query as the server reads it, without the X-Amz-* pieces of a presigned URL."""
    return as_read("&".join(piece for piece in query.split("&") if not piece.startswith("X-Amz-")))


def views_of_one_buffer(data: bytes, size: int = 4) -> Iterator[memoryview]:
    """Chunks as zero-copy readers yield them: views of one buffer, refilled between chunks.

    Each view is right only until the next is drawn: a client must copy them as they come.
    """
    source, buffer = io.BytesIO(data), bytearray(size)
    view = memoryview(buffer)
    while filled := source.readinto(buffer):
        yield view[:filled]


async def async_views_of_one_buffer(data: bytes, size: int = 4) -> AsyncIterator[memoryview]:
    """:func:`views_of_one_buffer` as an async iterator."""
    for view in views_of_one_buffer(data, size):
        yield view


def redirect_url(server: AwsServer, target: str, status: int, route: str = "redirect") -> str:
    """A redirect route of ``server`` sending the client on to ``target``.

    ``/redirect`` answers only a verified request; ``/redirect-unsigned`` answers anyone.
    """
    return server.url(f"/{route}?" + urlencode({"to": target, "status": status}))


def leaked(record: RequestRecord) -> list[str]:
    """Signing material that reached a server: header or query names, the token, a signature."""
    query = record.target.partition("?")[2]
    query_names = {unquote(piece.partition("=")[0]).lower() for piece in query.split("&")}
    header_names = {name.lower() for name, _ in record.headers}
    found = sorted((query_names | header_names) & _SIGNING_NAMES)
    text = record.target + "".join(value for _, value in record.headers)
    found += [
        marker
        for marker in (SESSION_TOKEN, quote(SESSION_TOKEN, safe=""), "AWS4-HMAC-SHA256")
        if marker in text
    ]
    return found
