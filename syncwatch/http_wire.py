"""How ``AccountHttp`` puts a request on the wire and reads the answer, without per-call waste.

Three things live here, each because it runs on every vendor call (thousands a simulated day,
one every few seconds per account in production):

- Cookies are refused. Vendor REST APIs authenticate every call with a token or a signature;
  none of the calls syncwatch makes depends on a cookie, and a cookie a vendor or a proxy in
  front of it sets (load-balancer affinity, bot management, a visitor id from a form handler) is
  session state the monitor must not keep: it would tie every later probe to the session of an
  earlier one, so a probe would no longer see what a fresh integration sees, and it would hold a
  vendor-issued identifier in memory for the life of the process. httpx's default jar also costs
  a urllib ``Request`` and an ``email.message.Message`` per response, to find nothing.
- An account's fixed URLs are merged with its base URL once. httpx parses and validates the URL
  text of every request (twice for a relative one: the path, then the path joined to the base
  URL); a path without a query (a token endpoint, a form's submit URL, ``leads.json``) is the
  same string on every call, so the ``httpx.URL`` the first call built is handed back as is.
  A URL with a query carries per-call data (a SOQL literal, a list of ids): its path is kept
  like any fixed URL, and the query is put into that parse as written when it is one httpx
  keeps as written anyway (what ``urlencode`` and ``quote`` make), rather than read again
  character by character; any other is joined to the base URL as text and parsed once.
- The client's headers are merged with a call's once per distinct set (a session's token
  header changes a few times a day), and its timeout read once: ``build_request`` merges
  headers, cookies, parameters and the timeout anew for every request, about a sixth of
  building one.
- A body is read only up to a bound, so a proxy streaming forever cannot hold all of it.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.request
from typing import Any

import httpx

from syncwatch.errors import MalformedResponse

FIXED_URLS_KEPT = 128
"""Distinct query-less URLs remembered per account: the documented endpoints an adapter calls
are a handful; paths that carry a record id (a delete by id) come and go, oldest out first."""


class NoCookieJar(http.cookiejar.CookieJar):
    """A jar that neither keeps a cookie a response sets nor adds one to a request.

    See the module's docstring for why syncwatch sends no vendor cookie back. A cookie set on
    the client by hand is dropped too: the client carries no session, whoever tries to give it
    one. (A ``cookies=`` argument to one request still goes with that request: it is the
    caller's explicit choice, and no adapter makes it.)
    """

    def extract_cookies(self, response: Any, request: urllib.request.Request) -> None:
        return None

    def add_cookie_header(self, request: urllib.request.Request) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """httpx's cookie mapping over a ``NoCookieJar`` that does not build, for every response,
    the urllib adapters (a ``Request`` from the URL and headers, a ``Message`` from the response
    headers) the jar would only ignore: about a quarter of a call's client-side time."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


def refuse_cookies(client: httpx.AsyncClient) -> None:
    """Make ``client`` stateless: no cookie kept from a response, so none is sent back.

    The jar goes in through httpx's public ``cookies`` setter, so the policy holds whatever
    httpx does internally. If the client keeps that mapping in the attribute httpx 0.28 uses,
    it is then swapped for one that skips the jar's per-response adapters; were that attribute
    to move, only the saving is lost (a test says so), never the policy.
    """
    client.cookies = NoCookieJar()
    if vars(client).get("_cookies") is client.cookies:
        client._cookies = _NoCookies(client.cookies.jar)  # httpx's own attribute: see above


class FixedUrls:
    """One account's query-less URLs, each merged with the client's base URL once.

    The first request to a URL is built from its text as always; its ``httpx.URL`` is kept and
    passed to ``build_request`` on later calls, which merges an absolute ``httpx.URL`` as is,
    so the request is the same, byte for byte, only without parsing the text again. (An
    account's client keeps its base URL for life: nothing sets ``base_url`` after building it.)
    """

    def __init__(self, kept: int = FIXED_URLS_KEPT) -> None:
        self._kept = kept
        self._urls: dict[str, httpx.URL] = {}
        self._base_headers: httpx.Headers | None = None
        self._merged: dict[tuple[tuple[str, str], ...] | None, httpx.Headers] = {}
        self._timeout_of: httpx.Timeout | None = None
        self._timeout_dict: dict[str, float | None] = {}

    def __len__(self) -> int:
        return len(self._urls)

    def build(
        self, client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
    ) -> httpx.Request:
        """``client.build_request(method, url, **kwargs)``, with ``url`` parsed once."""
        known = self._urls.get(url)
        if known is not None:
            return self._request(client, method, known, kwargs)
        path, mark, query = url.partition("?")
        if mark and "params" not in kwargs and len(url) <= MAX_KEPT_QUERY_URL:
            at = self._urls.get(path) or self.build(client, "GET", path, {}).url
            joined = _with_query(at, query)
            if joined is not None:
                return self._request(client, method, joined, kwargs)
        if "?" in url and "params" not in kwargs and _plainly_relative(url):
            # Per-call data, so built anew; but joined as text and parsed once, not parsed as
            # a relative URL and parsed again joined (httpx reads a SOQL URL twice otherwise).
            base = str(client.base_url)  # its path ends in "/", but a bare host prints none
            absolute = httpx.URL(f"{base}{'' if base.endswith('/') else '/'}{url.lstrip('/')}")
            return self._request(client, method, absolute, kwargs)
        request = client.build_request(method, url, **kwargs)
        if isinstance(url, str) and "?" not in url and "params" not in kwargs:
            if len(self._urls) >= self._kept:
                del self._urls[next(iter(self._urls))]
            self._urls[url] = request.url
        return request

    def _request(
        self, client: httpx.AsyncClient, method: str, url: httpx.URL, kwargs: dict[str, Any]
    ) -> httpx.Request:
        """``client.build_request(method, url, **kwargs)`` for an absolute ``url``: the request
        is built from the client's headers merged with the call's once per distinct set, and
        the client's timeout read once, rather than merging headers, cookies, parameters and
        the timeout anew on every call. What an adapter sends (``headers``, ``json``,
        ``content``) goes this way; anything else, or a client with cookies or parameters of
        its own, goes through ``build_request``."""
        if not kwargs.keys() <= _LEAN_KWARGS or client.params or client.cookies:
            return client.build_request(method, url, **kwargs)
        return httpx.Request(
            method,
            url,
            headers=self._headers(client, kwargs.get("headers")),
            content=kwargs.get("content"),
            json=kwargs.get("json"),
            extensions={"timeout": self._timeout(client)},
        )

    def _headers(self, client: httpx.AsyncClient, extra: Any) -> httpx.Headers:
        """The client's headers with ``extra`` merged in as ``build_request`` merges them;
        kept per distinct ``extra`` (a session's few headers), and only while the client's
        own headers are the same object (its ``headers`` setter builds a new one)."""
        key = tuple(extra.items()) if isinstance(extra, dict) else None
        if extra is not None and key is None:  # a list of pairs, a Headers: merged each time
            return _merged(client.headers, extra)
        if self._base_headers is not client.headers:
            self._base_headers, self._merged = client.headers, {}
        kept = self._merged.get(key)
        if kept is None:
            if len(self._merged) >= HEADER_SETS_KEPT:
                del self._merged[next(iter(self._merged))]
            kept = self._merged[key] = _merged(client.headers, extra)
        return kept

    def _timeout(self, client: httpx.AsyncClient) -> dict[str, float | None]:
        timeout = client.timeout
        if self._timeout_of is not timeout:
            self._timeout_of, self._timeout_dict = timeout, timeout.as_dict()
        return dict(self._timeout_dict)


def _merged(base: httpx.Headers, extra: Any) -> httpx.Headers:
    """``base`` with ``extra`` merged in, as ``build_request`` merges a call's headers."""
    merged = httpx.Headers(base)
    merged.update(extra)
    return merged


def _with_query(url: httpx.URL, query: str) -> httpx.URL | None:
    """``url`` (which has no query) with ``query``, without reading the query character by
    character as httpx's parser does: only for a query httpx keeps exactly as written (its
    own percent-encoding leaves printable ASCII but ``"#<>`` and space untouched), which is
    what ``urlencode`` and ``quote`` write. The URL's parse is httpx's own, with the query put
    in place; None where it is not kept as this httpx keeps it (the text is parsed then)."""
    reference = vars(url).get("_uri_reference")
    if not isinstance(reference, tuple) or reference._fields[5:6] != ("query",):  # type: ignore[attr-defined]
        return None
    if reference[5] is not None or not _KEPT_AS_WRITTEN.fullmatch(query):
        return None
    joined = object.__new__(httpx.URL)
    vars(joined).update(vars(url), _uri_reference=reference._replace(query=query))  # type: ignore[attr-defined]
    return joined


_LEAN_KWARGS = frozenset({"headers", "json", "content"})
HEADER_SETS_KEPT = 16
"""Distinct per-call header sets merged with the client's and kept: a token or two at a time."""

MAX_KEPT_QUERY_URL = 16_384
"""Longer URLs go through httpx's parser, which refuses those past its own limit."""

_KEPT_AS_WRITTEN = re.compile(r"[\x21\x24-\x3b\x3d\x3f-\x7e]*")
"""Printable ASCII but ``"``, ``#``, ``<``, ``>`` and space: what httpx's query quoting keeps."""


def _plainly_relative(url: str) -> bool:
    """A path (and query) to put after the base URL as it stands: no scheme or host of its own,
    no fragment, no dot segment for httpx to resolve."""
    path = url.partition("?")[0]
    segments = path.split("/")
    return (
        not url.startswith("//")
        and ":" not in path
        and "#" not in url
        and "." not in segments
        and ".." not in segments
    )


async def send_capped(
    client: httpx.AsyncClient, request: httpx.Request, limit: int, who: str
) -> httpx.Response:
    """Send, and read the body up to ``limit`` bytes; past that, stop reading and refuse it as
    ``malformed`` (``who`` names the account in the message)."""
    response = await client.send(request, stream=True)
    chunks: list[bytes] = []
    size = 0
    # Without a content coding the raw bytes are the body: read as they come, without the
    # decoder's layer (a generator and a chunker a call). A coded body is decoded, and capped
    # as decoded (a small gzip can unpack to gigabytes); one already read (a transport that
    # answers with ``content=``) is handed over as it is.
    raw = "content-encoding" not in response.headers and not response.is_stream_consumed
    try:
        async for chunk in response.aiter_raw() if raw else response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise MalformedResponse(
                    f"{who}: the answer is longer than {limit} bytes; not read further",
                    status=response.status_code,
                )
            chunks.append(chunk)
    finally:
        await response.aclose()
    response._content = b"".join(chunks)  # what ``aread`` would have set
    return response
