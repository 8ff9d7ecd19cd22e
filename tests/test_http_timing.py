"""``Date`` headers as ``ClockOffset`` reads them (the rest of http_timing is tested through
``AccountHttp`` in test_http.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from syncwatch.http_timing import _http_date

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def read(parse: object, value: str) -> datetime | str:
    try:
        return parse(value)  # type: ignore[operator,no-any-return]
    except (TypeError, ValueError) as refused:
        return type(refused).__name__


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)))  # noqa: DTZ001 (bounds are naive)
def test_a_date_in_the_preferred_form_reads_as_the_email_parser_reads_it(moment: datetime) -> None:
    """Every IMF-fixdate a server sends, read by position, is the instant the email parser
    reads (two-digit-looking years included: the email parser's reading wins there)."""
    value = format_datetime(moment.replace(microsecond=0), usegmt=True)
    _http_date.cache_clear()
    assert read(_http_date, value) == read(parsedate_to_datetime, value)


@settings(max_examples=500, deadline=None)
@given(
    st.tuples(
        st.sampled_from(["Sun", "Xyz", "Mon"]),
        st.sampled_from([", ", ",,", " ,"]),
        st.text(alphabet="0123456789 ٣x", min_size=2, max_size=2),
        st.sampled_from([*MONTHS, "jan", "Foo"]),
        st.text(alphabet="0123456789 -", min_size=4, max_size=4),
        st.text(alphabet="0123456789:", min_size=8, max_size=8),
        st.sampled_from([" GMT", " UTC", " +0000"]),
    ).map(
        lambda parts: f"{parts[0]}{parts[1]}{parts[2]} {parts[3]} {parts[4]} {parts[5]}{parts[6]}"
    )
)
def test_any_other_text_reads_as_the_email_parser_reads_it(value: str) -> None:
    """Wrong digits, separators, months or zones: the same instant, or the same refusal."""
    _http_date.cache_clear()
    assert read(_http_date, value) == read(parsedate_to_datetime, value)
