"""What ``AccountHttp`` puts on the wire: no vendor cookie sent back, and every request exactly
the one httpx builds from the same arguments, however often its URL is reused."""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncwatch.clock import VirtualClock
from syncwatch.errors import MalformedResponse
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.http import AccountHttp, classify_status
from syncwatch.http_wire import FixedUrls, NoCookieJar, _with_query, refuse_cookies, send_capped

BASE = "https://acme.my.salesforce.example"


def accept(response: httpx.Response) -> None:
    return None


def status(response: httpx.Response) -> int:
    return response.status_code


def no_sink(call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None:
    return None


Recorder = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def seen() -> list[httpx.Request]:
    """The requests the fake vendor received, in order."""
    return []


def account(
    clock: VirtualClock, handler: Recorder, base_url: str = BASE, **client: Any
) -> AccountHttp:
    """An account's HTTP layer over a fake vendor, its client built as a caller would."""
    return AccountHttp(
        vendor="salesforce",
        account="sf-prod",
        client=httpx.AsyncClient(
            base_url=base_url, transport=httpx.MockTransport(handler), **client
        ),
        clock=clock,
        sink=no_sink,
        classify=lambda response: classify_status(response, "refused"),
    )


def recording(requests: list[httpx.Request], **headers: str) -> Recorder:
    """A vendor that keeps every request and answers 200 with ``headers``."""

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, headers=headers, json={"ok": True})

    return handler


# -- cookies -----------------------------------------------------------------------------------


async def test_a_cookie_a_vendor_sets_is_never_sent_back(
    clock: VirtualClock, seen: list[httpx.Request]
) -> None:
    """Salesforce and CDN fronts set cookies (BrowserId, __cf_bm); the next call carries none."""
    cookies = "BrowserId=abc123; Path=/; Domain=.salesforce.example; Secure"
    http = account(clock, recording(seen, **{"Set-Cookie": cookies}))
    for _ in range(2):
        await http.request("query", "GET", "/services/data/v62.0/limits", parse=accept,
                           idempotent=True)  # fmt: skip
    assert "cookie" not in seen[1].headers
    assert len(http.client.cookies) == 0
    await http.aclose()


async def test_a_cookie_set_on_the_client_by_hand_is_not_sent_either(
    clock: VirtualClock, seen: list[httpx.Request]
) -> None:
    """The client holds no session whoever gives it one: a cookie set on it is dropped."""
    http = account(clock, recording(seen), cookies={"sid": "from-config"})
    http.client.cookies.set("sid", "set-later", domain="acme.my.salesforce.example")
    await http.request("limits", "GET", "/services/data/v62.0/limits", parse=accept,
                       idempotent=True)  # fmt: skip
    assert "cookie" not in seen[0].headers
    await http.aclose()


async def test_no_cookie_adapters_are_built_for_a_response(
    clock: VirtualClock, seen: list[httpx.Request], monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx's jar would build a urllib request per response only to ignore it: that cost is
    gone (an httpx upgrade that moves the client's cookie mapping fails here, not silently)."""

    def built(*args: object) -> None:
        raise AssertionError("a urllib cookie adapter was built")

    monkeypatch.setattr(httpx.Cookies, "_CookieCompatRequest", built)
    http = account(clock, recording(seen, **{"Set-Cookie": "a=b"}))
    assert await http.request("x", "GET", "/x", parse=status, idempotent=True) == 200
    await http.aclose()


def test_refusing_cookies_keeps_a_jar_that_refuses_them_whatever_httpx_keeps() -> None:
    """The policy goes in through httpx's public setter; the saving is on top of it."""
    client = httpx.AsyncClient()
    refuse_cookies(client)
    assert isinstance(client.cookies.jar, NoCookieJar)
    client.cookies.set("a", "b")
    assert len(client.cookies) == 0


# -- URLs --------------------------------------------------------------------------------------

CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    (BASE, "GET", "/services/data/v62.0/limits", {}),
    (BASE, "GET", "services/data/v62.0/limits", {}),
    (f"{BASE}/prefix", "POST", "/rest/v1/leads.json", {"json": {"input": [{"email": "a@b"}]}}),
    (f"{BASE}/prefix/", "POST", "rest/v1/leads.json", {"data": {"a": "b c"}}),
    (BASE, "GET", f"{BASE}/services/data/v62.0/query?q=SELECT+Id+FROM+Lead", {}),
    (BASE, "GET", "/services/data/v62.0/query", {"params": {"q": "SELECT Id FROM Lead"}}),
    (BASE, "POST", "https://api.hsforms.example/submit/1/5c1e8f2a", {"json": {"fields": []}}),
    (BASE, "DELETE", "/crm/v3/objects/contacts/1%202", {"headers": {"X-A": "b"}}),
    (BASE, "GET", "/a/./b/../c path", {}),
    ("https://münchen.example:443/x", "GET", "/ä?", {}),
    (BASE, "GET", "/services/data/v62.0/query?", {}),
    (
        f"{BASE}/sf",
        "GET",
        "/services/data/v62.0/query?q=SELECT+Id+FROM+Lead+WHERE+Email+IN+"
        "(%27a%2Bb%40probe.example%27)",
        {},
    ),
    (f"{BASE}/sf/", "GET", "services/data/v62.0/query?q=Name = 'ä b'&x=1:2", {}),
    (BASE, "GET", "/a/./b?q=1", {}),
    (BASE, "GET", "/a:b?q=1", {}),
    (BASE, "GET", "//other.example/a?q=1", {}),
    (BASE, "GET", "/a?q=1#frag", {}),
    ("https://münchen.example:443/x", "GET", "/ä?q=ü", {}),
]


@pytest.mark.parametrize(("base_url", "method", "url", "kwargs"), CASES)
async def test_every_request_is_the_one_httpx_builds_each_time_its_url_is_used(
    clock: VirtualClock, base_url: str, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """Reusing a URL's parse changes nothing on the wire: method, URL, headers and body of the
    first, second and third call all equal a plain client's request from the same arguments."""
    seen: list[httpx.Request] = []
    http = account(clock, recording(seen), base_url)
    for _ in range(3):
        await http.request("op", method, url, parse=accept, idempotent=True, **kwargs)
    async with httpx.AsyncClient(base_url=base_url) as plain:
        expected = plain.build_request(method, url, **kwargs)
    for request in seen:
        assert request.method == expected.method
        assert str(request.url) == str(expected.url)
        assert request.url.raw_path == expected.url.raw_path
        assert request.headers.raw == expected.headers.raw
        assert request.content == expected.content
    await http.aclose()


def test_only_query_less_urls_are_kept_and_the_oldest_goes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A query carries per-call data (a SOQL literal); a path is the account's fixed endpoint,
    parsed on its first call only (a query's path too: the query is put in its parse). Ids
    make some paths one-off, so only the newest few stay."""
    client = httpx.AsyncClient(base_url=BASE)
    given: list[str | httpx.URL] = []
    build_request = client.build_request

    def spy(method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Request:
        given.append(url)
        return build_request(method, url, **kwargs)

    monkeypatch.setattr(client, "build_request", spy)
    urls = FixedUrls(kept=2)
    request = urls._request

    def spy_lean(
        client: httpx.AsyncClient, method: str, url: httpx.URL, kwargs: dict[str, Any]
    ) -> httpx.Request:
        given.append(url)
        return request(client, method, url, kwargs)

    monkeypatch.setattr(urls, "_request", spy_lean)
    urls.build(client, "GET", "/services/data/v62.0/query?q=x", {})
    urls.build(client, "GET", "/services/data/v62.0/query?q=y", {})
    assert len(urls) == 1  # the path, not the queries
    query = httpx.URL(f"{BASE}/services/data/v62.0/query")
    assert given == [
        "/services/data/v62.0/query",
        query.copy_with(query=b"q=x"),
        query.copy_with(query=b"q=y"),
    ]
    assert str(given[2]) == f"{BASE}/services/data/v62.0/query?q=y"
    urls.build(client, "GET", "/services/data/v62.0/query", {"params": {"q": "x"}})
    assert given[3:] == [query, query]  # kept, and with parameters built by httpx itself
    for path in ("/a", "/a", "/b", "/c", "/a"):
        urls.build(client, "GET", path, {})
    assert len(urls) == 2
    assert given[5:] == ["/a", httpx.URL(f"{BASE}/a"), "/b", "/c", "/a"]
    assert isinstance(given[6], httpx.URL)


def test_this_httpx_lets_a_query_into_its_parse_of_the_path() -> None:
    """The saving rests on how httpx keeps a parsed URL; were that to change, queries would
    be parsed again (still right, per the test below), and this test says the saving is gone."""
    client = client_for(BASE)
    path = "/services/data/v62.0/query"
    query = "q=SELECT+Id+FROM+Lead+WHERE+Email+IN+%28%27a%2Bb%40probe.example%27%29"
    joined = _with_query(client.build_request("GET", path).url, query)
    assert joined is not None
    assert str(joined) == f"{BASE}{path}?{query}"
    assert joined.params["q"] == "SELECT Id FROM Lead WHERE Email IN ('a+b@probe.example')"
    assert _with_query(joined, "x=1") is None  # it has a query already
    assert _with_query(client.build_request("GET", path).url, "q=a b") is None  # httpx quotes it


@functools.cache
def client_for(base_url: str) -> httpx.AsyncClient:
    """One client per base URL: building one (its TLS context) costs more than the test."""
    return httpx.AsyncClient(base_url=base_url)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([BASE, f"{BASE}/sf", f"{BASE}/sf/", "http://127.0.0.1:8900/salesforce"]),
    path=st.lists(st.text(alphabet="abcAZ09-_.~%:@!$&'()*+,;= ä", max_size=6), max_size=4),
    query=st.one_of(
        st.text(max_size=40),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
    ).filter(lambda text: "#" not in text),
    lead=st.sampled_from(["", "/"]),
)
def test_a_url_with_a_query_is_the_url_httpx_builds(
    base: str, path: list[str], query: str, lead: str
) -> None:
    """Joined as text and parsed once, or as httpx joins it: the same URL, byte for byte (or
    the same refusal)."""
    client = client_for(base)
    url = f"{lead}{'/'.join(path)}?{query}"
    try:
        expected = client.build_request("GET", url).url
    except httpx.InvalidURL:
        with pytest.raises(httpx.InvalidURL):
            FixedUrls().build(client, "GET", url, {})
        return
    built = FixedUrls().build(client, "GET", url, {}).url
    assert built.raw_path == expected.raw_path
    assert str(built) == str(expected)


_HEADER_NAMES = st.sampled_from(["Authorization", "accept", "Accept", "X-Trace", "user-agent"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
    header_sets=st.lists(
        st.none() | st.dictionaries(_HEADER_NAMES, st.text("abc xyz/*", max_size=6), max_size=3),
        min_size=1,
        max_size=4,
    ),
    body=st.none()
    | st.builds(lambda value: {"json": value}, _JSON)
    | st.builds(lambda data: {"content": data}, st.binary(max_size=12)),
)
def test_a_request_built_from_kept_headers_is_the_one_build_request_makes(
    method: str, header_sets: list[dict[str, str] | None], body: dict[str, Any] | None
) -> None:
    """The client's headers merged with each call's once, the timeout read once: method, URL,
    headers (order and case included), body and extensions are what ``build_request`` makes,
    call after call, whichever header sets come and go."""
    client = httpx.AsyncClient(
        base_url=BASE, headers={"User-Agent": "syncwatch-test"}, timeout=httpx.Timeout(7.0)
    )
    urls = FixedUrls()
    for headers in [*header_sets, *header_sets]:
        kwargs = {**(body or {}), **({} if headers is None else {"headers": headers})}
        built = urls.build(client, method, "/rest/v1/leads.json", kwargs)
        expected = client.build_request(method, "/rest/v1/leads.json", **kwargs)
        assert (built.method, str(built.url)) == (expected.method, str(expected.url))
        assert built.headers.raw == expected.headers.raw
        assert built.content == expected.content
        assert built.extensions == expected.extensions
        built.headers["X-Mutated"] = "1"  # a request's own copy: nothing kept changes


def test_a_client_whose_headers_or_timeout_change_is_read_again() -> None:
    """Kept merges belong to the client's headers and timeout as they were: set new ones (as
    httpx's setters do) and the next request carries them. A client with cookies or query
    parameters of its own is built by httpx as a whole."""
    client = httpx.AsyncClient(base_url=BASE, headers={"X-Old": "1"})
    urls = FixedUrls()
    for _ in range(2):  # the second is built from what is kept
        urls.build(client, "GET", "/a", {"headers": {"Authorization": "t"}})
    client.headers = {"X-New": "2"}
    client.timeout = httpx.Timeout(3.0)
    built = urls.build(client, "GET", "/a", {"headers": {"Authorization": "t"}})
    assert "X-Old" not in built.headers and built.headers["X-New"] == "2"
    assert built.extensions["timeout"] == httpx.Timeout(3.0).as_dict()
    client.params = {"api": "1"}
    assert str(urls.build(client, "GET", "/a", {}).url) == f"{BASE}/a?api=1"


# -- reading the answer up to a bound ----------------------------------------------------------


def _answering(body: bytes, **headers: str) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("coding", [None, "gzip"])
async def test_a_body_is_read_up_to_the_bound_and_refused_past_it(coding: str | None) -> None:
    """Raw or gzip-coded, a body is capped at its decoded size: a gzip of a few hundred bytes
    that unpacks to 200 KB is refused at a 100 KB bound; at the bound exactly it is read whole,
    decoded."""
    for size, refused in ((100_000, False), (200_000, True)):
        plain = b"x" * size
        body = gzip.compress(plain) if coding else plain
        client = _answering(body, **({"content-encoding": coding} if coding else {}))
        request = client.build_request("GET", "https://vendor.test/x")
        if refused:
            with pytest.raises(MalformedResponse, match="longer than 100000 bytes"):
                await send_capped(client, request, 100_000, "vendor acct")
        else:
            response = await send_capped(client, request, 100_000, "vendor acct")
            assert response.content == plain and len(response.content) == size
        await client.aclose()


async def test_an_answer_already_read_is_handed_over_as_it_is() -> None:
    """A transport that answers with ``content=`` (respx, a test's MockTransport) has read the
    body already: it is taken as read, not read again."""
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    )
    response = await send_capped(client, client.build_request("GET", "https://v.test/"), 100, "v")
    assert response.json() == {"ok": True}
    await client.aclose()
