"""Content negotiation and entity tags of the precompressed responses (``segmently.http.precompressed``)."""

from __future__ import annotations

import pytest

from segmently.http.precompressed import not_modified, preferred_encoding, tagged


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),  # Chromium over HTTPS
        ("gzip, deflate", "gzip"),  # Chromium over plain HTTP
        ("GZIP", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("br; q=0.0, gzip;q=0.5", "gzip"),
        ("br;q=0.1, gzip;q=1", "br"),  # both taken: the smaller coding wins
        ("gzip;q=0", None),
        ("gzip;q=nan", None),
        ("gzip;q=x", None),
        ("identity", None),
        ("", None),
        ("*", "br"),
        ("br;q=0, *", "gzip"),
        ("*;q=0, gzip", "gzip"),
        ("*;q=0", None),
    ],
)
def test_the_preferred_encoding_is_one_the_client_takes(accept_encoding: str, expected: str | None) -> None:
    assert preferred_encoding(accept_encoding) == expected


def test_each_encoding_has_its_own_tag_and_any_of_them_revalidates() -> None:
    etag = '"abc"'
    assert (tagged(etag, None), tagged(etag, "br"), tagged(etag, "gzip")) == ('"abc"', '"abc-br"', '"abc-gz"')
    for sent in ('"abc"', '"abc-br"', 'W/"abc-gz"', '"x", "abc"', " * "):
        assert not_modified(sent, etag), sent
    for sent in (None, "", '"abd"', '"abc-zstd"', '"abc', "abc"):
        assert not not_modified(sent, etag), sent
