"""URL rules of SigV4 for non-S3 services, each written once with the reason beside it.

Two forms of every URL part matter: the *wire* form (the bytes on the request line) and the
*canonical* form (what goes into the canonical request). This module owns the mapping between
them. A query is sent as the caller wrote it only when it is *plain*, its reading unambiguous
(:func:`sorted_plain_query` says what that takes); any other query is sent in its canonical
form, so that what API Gateway reads is exactly what was signed.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

import idna

from apigw_iam_auth.errors import InvalidConfigError

__all__ = [
    "DEFAULT_PORTS",
    "canonical_path",
    "canonical_query",
    "encode_query_component",
    "encoded_query",
    "host_header",
    "is_utf8",
    "join_query",
    "normalize_path",
    "parse_origin",
    "parse_query",
    "sorted_plain_query",
    "split_url",
    "wire_parts",
    "wire_path",
]

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}  # WebSocket: as HTTP

# RFC 3986 pchar minus "%" (handled apart): what may stand literally in a path on the wire.
# Anything else (space, raw UTF-8, '"', '<', ...) is percent-encoded, as requests does (httpx
# leaves brackets, "|", "^" and backslashes as they are; a server reads either spelling alike).
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_WIRE_SAFE_PATH = re.compile(r"[A-Za-z0-9/!$&'()*+,;=:@\-._~]*")  # _PATH_SAFE and alphanumerics
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


_CONTROL = re.compile(r"[\r\n\t\x00]")
# Every absolute URL: ``scheme://netloc``, then path, query and fragment. One regex step finds
# the three parts SigV4 reads, exactly where urlsplit finds them (a property test checks it).
_ABSOLUTE_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)([^?#]*)(?:\?([^#]*))?", re.DOTALL)
# The netloc of nearly every URL a client sends: a plain host name or IPv4 address, maybe a
# port. Anything else (userinfo, IPv6, Unicode hosts, odd ports) is split by urlsplit.
_PLAIN_NETLOC = re.compile(r"([a-z0-9][a-z0-9.-]*)(?::([0-9]{1,5}))?", re.ASCII | re.IGNORECASE)
_MAX_PORT = 65535


def split_url(url: str) -> tuple[str, str, str]:
    """``(scheme://netloc, raw path, raw query)`` of an absolute URL; the fragment is dropped.

    The URL is checked here once: no control characters (they would split the request line),
    and text UTF-8 can encode.
    """
    if not isinstance(url, str):
        raise InvalidConfigError(f"url must be a str, got {type(url).__name__}")
    if not url.isprintable() and _CONTROL.search(url):
        raise InvalidConfigError("url contains a control character (CR, LF, TAB or NUL)")
    if not is_utf8(url):
        raise InvalidConfigError("url contains characters UTF-8 cannot encode")
    parts = _ABSOLUTE_URL.match(url)
    if parts is not None:
        origin, path, query = parts.groups()
        return origin, path, query or ""
    try:  # not scheme://...: urlsplit's reading (leading spaces, "https:/x"), for its errors
        split = urlsplit(url)
    except ValueError as exc:
        raise InvalidConfigError(f"url is not a valid URL: {exc}") from None
    return f"{split.scheme}://{split.netloc}", split.path, split.query


# The URL most clients send: http(s), a netloc of printable ASCII, a path of unreserved
# characters and "/", then a query and fragment of printable ASCII. If its path has no "//"
# and no "/." either (no empty, "." or ".." segment: nothing to normalise), it is its own wire
# form and canonical form, and nothing in it needs checking further.
_PLAIN_URL = re.compile(
    r'(https?://[!"$-.0->@-~]*)'
    r"(/[A-Za-z0-9\-._~/]*)?"
    r'(?:\?([!"$-~]*))?'
    r"(?:#[!-~]*)?"
)


def wire_parts(url: str) -> tuple[str, str, str, str]:
    """``(scheme://netloc, wire path, canonical path, raw query)`` of an absolute URL.

    ``_PLAIN_URL`` in one regex step (a property test proves it equal to the general route),
    any other URL through :func:`split_url`, :func:`wire_path` and :func:`canonical_path`.
    """
    plain = _PLAIN_URL.fullmatch(url) if type(url) is str else None
    if plain is not None:
        origin, path, query = plain.groups()
        if path is None:
            return origin, "/", "/", query or ""
        if "//" not in path and "/." not in path:
            return origin, path, path, query or ""
    origin, raw_path, query = split_url(url)
    path = wire_path(raw_path)
    return origin, path, canonical_path(path), query


def parse_origin(origin: str) -> tuple[str, str]:
    """The Host header and the normalised ``scheme://netloc`` of ``scheme://netloc``.

    The netloc is the Host header signed: lowercase, a Unicode name as its A-label, no
    default port, no userinfo. Clients that write the Host from the URL as it stands (urllib,
    curl, aiohttp given ``encoded=True``, a proxy's absolute-form target) then send the Host
    that was signed: a presigned link to ``API.Example.com`` was signed for ``api.example.com``.

    Refuses what cannot be signed: a scheme other than http(s) or ws(s), no host, a bad port.
    """
    scheme, _, netloc = origin.partition("://")
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidConfigError(
            f"url must start with https://, http://, wss:// or ws://, got "
            f"{scheme + ':' if scheme else 'no scheme'} (for example"
            " https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets)"
        )
    plain = _PLAIN_NETLOC.fullmatch(netloc)
    if plain is not None and (plain[2] is None or int(plain[2]) <= _MAX_PORT):
        hostname: str | None = plain[1].lower()
        port = None if plain[2] is None else int(plain[2])
    else:
        try:
            parts = urlsplit(origin)
            port = parts.port
            hostname = parts.hostname
        except ValueError as exc:
            raise InvalidConfigError(f"url is not a valid URL: {exc}") from None
    if not hostname:
        raise InvalidConfigError("url has no host; pass an absolute URL such as https://host/path")
    host = host_header(scheme, hostname, port)
    return host, f"{scheme}://{host}"


def host_header(scheme: str, hostname: str, port: int | None) -> str:
    """The Host header a client sends: lowercase, IPv6 bracketed, default port dropped.

    Same rule as botocore's ``_host_from_url``, urllib3 and httpx; signing a different Host than
    the one sent is the classic cause of "signature does not match" behind custom ports.
    """
    host = _ascii_host(hostname)
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return host


def _ascii_host(hostname: str) -> str:
    """Lowercase, and a Unicode name as its IDNA 2008 A-label, after UTS 46 mapping.

    Python's own "idna" codec is IDNA 2003 (``straße`` -> ``strasse``); the HTTP clients send
    IDNA 2008 (``xn--strae-oqa``), and the Host that is sent is the Host that must be signed.
    The mapping is yarl's (so aiohttp's): a name only the mapping makes valid (full-width
    letters) is signed as aiohttp sends it; requests and httpx refuse such a name themselves.
    """
    host = hostname.lower()
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise InvalidConfigError(f"host {hostname!r} is not a valid domain name") from None


def wire_path(path: str) -> str:
    """The path as HTTP clients put it on the request line, so sending our URL changes nothing.

    Characters that cannot stand in a URL path are percent-encoded (UTF-8), a ``%`` that starts
    no escape becomes ``%25``, escapes of unreserved characters are decoded (``%41`` -> ``A``)
    and the others written in uppercase hex (``%c3`` -> ``%C3``), and dot segments are removed
    as RFC 3986 says (``/a/./b/..`` -> ``/a/``): what requests (``requote_uri``, then urllib3)
    and httpx do to a URL before sending it (httpx leaves brackets, ``|``, ``^`` and
    backslashes as they are). Existing escapes such as ``%2F`` are kept: API Gateway does not
    decode them.

    An escaped dot is an unreserved character like any other (RFC 3986, section 2.3), so
    ``%2E%2E`` is a dot segment and goes too, as browsers and yarl read it; httpx would send
    it as written, requests as a literal ``..``. The path returned is the one signed and the
    one to send.
    """
    if not path:
        return "/"
    if not _WIRE_SAFE_PATH.fullmatch(path):
        if "%" in path:
            path = _ESCAPE.sub(_wire_escape, _STRAY_PERCENT.sub("%25", path))
        path = quote(path, safe=_PATH_SAFE + "%")
    return _without_dot_segments(path) if "/." in path else path


def _wire_escape(escape: re.Match[str]) -> str:
    character = chr(int(escape.group()[1:], 16))
    return character if _UNRESERVED.fullmatch(character) else escape.group().upper()


def _without_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 on a path that starts with "/": what clients send for it.

    Not AWS's normalisation (:func:`normalize_path`), which also collapses empty segments and
    drops a trailing slash the RFC keeps (``/a/b/.`` is ``/a/b/`` here).
    """
    kept: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if path.endswith(("/.", "/..")):
        kept.append("")
    return "/" + "/".join(kept)


def normalize_path(path: str) -> str:
    """RFC 3986 dot-segment removal plus AWS's collapsing of empty segments.

    Same as botocore's ``remove_dot_segments`` (``//`` collapse: "AWS services require consecutive
    slashes to be removed"); a trailing slash survives only if some segment remains.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in {"", "."}:
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    if not segments:
        return "/"
    trailing = "/" if path.endswith("/") else ""
    return "/" + "/".join(segments) + trailing


def canonical_path(path: str) -> str:
    """The canonical URI of a non-S3 request: normalised, then encoded once more.

    ``path`` is the wire path (already percent-encoded once), so encoding it again is SigV4's
    "double encoding": wire ``%20`` becomes ``%2520``, which is what API Gateway computes.
    """
    if _CANONICAL_AS_IS.fullmatch(path) and "//" not in path and "/." not in path:
        return path  # nothing to normalise (no empty or dot segments), nothing to encode
    return quote(normalize_path(path), safe="/~", errors="surrogateescape")


_CANONICAL_AS_IS = re.compile(r"/[A-Za-z0-9/\-._~]*")


def parse_query(query: str) -> tuple[tuple[str, str], ...]:
    """Decode a raw query into ``(name, value)`` pairs, order and repeats kept.

    ``+`` is read as a space because API Gateway reads it so; literal
    plus signs must be sent as ``%2B``. Empty ``&&`` pieces carry nothing and are dropped; a key
    without ``=`` has an empty value. Bytes that are not UTF-8 survive via surrogateescape.
    """
    if not query:
        return ()
    pairs = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((_decode_component(name), _decode_component(value)))
    return tuple(pairs)


def _decode_component(raw: str) -> str:
    if "+" in raw:
        raw = raw.replace("+", " ")
    if "%" not in raw:
        return raw
    return unquote(raw, errors="surrogateescape")


def encode_query_component(text: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters, ``%20`` for space."""
    if _UNRESERVED.fullmatch(text):
        return text  # most names and values: nothing to encode, and quote() costs ten times more
    return quote(text, safe="", errors="surrogateescape")


_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]*")


def encoded_query(
    pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]],
) -> list[tuple[str, str]]:
    """Names and values encoded separately (each, not ``name=value``, is the unit of encoding)."""
    encode = encode_query_component
    return [(encode(name), encode(value)) for name, value in pairs]


def join_query(encoded: list[tuple[str, str]]) -> str:
    """Sort encoded pairs by (name, value) -- not by "name=value" -- and join them.

    Sorting the joined strings would put ``id-type=`` before ``id=`` ('-' < '='), which AWS does
    not (tedder/requests-aws4auth#21). Encoded strings are ASCII, so str order is byte order.
    """
    encoded.sort()
    return "&".join([f"{name}={value}" for name, value in encoded])


def sorted_plain_query(raw: str) -> str | None:
    """The canonical query string of a plain query, one that may go as written; else None.

    Plain: ``name=value`` pieces (or a bare ``name``, signed as ``name=``) of unreserved
    characters and uppercase ``%XX`` escapes of other bytes, no empty piece or name, at most one
    ``=`` each, and no ``X-Amz-`` parameter (an earlier signature's, which must not be sent).
    Every reader then sees the very pairs that were signed, whether it decodes and re-encodes
    them (API Gateway) or takes them literally (botocore, awscrt), and only their order is left
    to set: the pieces are sorted as strings with each ``=`` stood in for by U+0001, which sorts
    below every character a piece can hold, so a name sorts before any longer name it starts,
    and the order is exactly :func:`join_query`'s (name, value) order (a property test checks
    it). A few string operations, and no pairs built; a query already in that order is
    returned as it is.
    """
    if _NAME_VALUE_PIECES.fullmatch(raw):  # nearly every query: each piece is name=value
        if not _canonical_and_unsigned(raw):
            return None
        if "&" not in raw:
            return raw
        pieces = raw.replace("=", "\x01").split("&")
        ordered = sorted(pieces)
        return raw if ordered == pieces else "&".join(ordered).replace("\x01", "=")
    bare_names = raw.count("=") <= raw.count("&")  # fewer "=" than pieces: a cheap first test
    if not bare_names or not _PLAIN_PIECES.fullmatch(raw) or not _canonical_and_unsigned(raw):
        return None
    pieces = [
        piece.replace("=", "\x01") if "=" in piece else f"{piece}\x01" for piece in raw.split("&")
    ]
    return "&".join(sorted(pieces)).replace("\x01", "=")


def _canonical_and_unsigned(raw: str) -> bool:
    """Every escape in ``raw`` canonical, and no ``X-Amz-`` parameter (an earlier signature's)."""
    return "X-Amz-" not in raw and not ("%" in raw and _NOT_CANONICAL_ESCAPE.search(raw))


_NAME_VALUE_PIECES = re.compile(
    r"[A-Za-z0-9\-._~%]+=[A-Za-z0-9\-._~%]*(?:&[A-Za-z0-9\-._~%]+=[A-Za-z0-9\-._~%]*)*"
)
# The same with bare names allowed ("debug&a=1").
_PLAIN_PIECES = re.compile(
    r"[A-Za-z0-9\-._~%]+(?:=[A-Za-z0-9\-._~%]*)?(?:&[A-Za-z0-9\-._~%]+(?:=[A-Za-z0-9\-._~%]*)?)*"
)
# A "%" that starts no uppercase escape (lowercase hex is not canonical), or escapes an
# unreserved character.
_NOT_CANONICAL_ESCAPE = re.compile(
    r"%(?:(?![0-9A-F]{2})|2[DE]|3[0-9]|4[1-9A-F]|5[0-9AF]|6[1-9A-F]|7[0-9AE])"
)


def canonical_query(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    """The canonical query string of decoded ``(name, value)`` pairs."""
    return join_query(encoded_query(pairs))


def fragment_of(url: str) -> str:
    """``#`` and the URL's fragment, each character a fragment cannot hold percent-encoded.

    RFC 3986 3.5: a fragment holds pchars, "/" and "?"; a space or non-ASCII text a user typed
    becomes its UTF-8 escapes, as a browser's address bar writes it. Empty without a ``#``.
    """
    hash_mark, fragment = url.partition("#")[1:]
    return hash_mark + quote(fragment, safe="!$&'()*+,;=:@/?%-._~")


def is_utf8(text: str, errors: str = "strict") -> bool:
    """True unless ``text`` holds a lone surrogate, which no UTF-8 byte sequence decodes to."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8", errors)
    except UnicodeEncodeError:
        return False
    return True
