"""Content negotiation and entity tags of the precompressed responses (``segmently.http.precompressed``)."""

from __future__ import annotations

import asyncio
import gzip

import brotli
import pytest

from segmently.http import precompressed
from segmently.http.precompressed import Precompressed, accepted_encodings, not_modified, tagged


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        ("gzip, deflate, br, zstd", ["br", "gzip"]),  # Chromium over HTTPS
        ("gzip, deflate", ["gzip"]),  # Chromium over plain HTTP
        ("GZIP", ["gzip"]),
        ("br", ["br"]),
        ("br;q=0, gzip", ["gzip"]),
        ("br; q=0.0, gzip;q=0.5", ["gzip"]),
        ("gzip;q=1, br;q=0.1", ["br", "gzip"]),  # both taken: the smaller coding first
        ("gzip;q=0", []),
        ("gzip;q=nan", []),
        ("gzip;q=x", []),
        ("identity", []),
        ("", []),
        ("*", ["br", "gzip"]),
        ("br;q=0, *", ["gzip"]),
        ("*;q=0, gzip", ["gzip"]),
        ("*;q=0", []),
    ],
)
def test_the_encodings_are_those_the_client_takes(accept_encoding: str, expected: list[str]) -> None:
    assert accepted_encodings(accept_encoding) == expected


def test_each_encoding_has_its_own_tag_and_any_of_them_revalidates() -> None:
    etag = '"abc"'
    assert (tagged(etag, None), tagged(etag, "br"), tagged(etag, "gzip")) == ('"abc"', '"abc-br"', '"abc-gz"')
    for sent in ('"abc"', '"abc-br"', 'W/"abc-gz"', '"x", "abc"', " * "):
        assert not_modified(sent, etag), sent
    for sent in (None, "", '"abd"', '"abc-zstd"', '"abc', "abc"):
        assert not not_modified(sent, etag), sent


async def test_brotli_is_made_once_in_a_thread_and_nothing_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    make = precompressed._brotli
    monkeypatch.setattr(precompressed, "_brotli", lambda body: made.append(len(body)) or make(body))
    body = b"segmently " * 2000
    content = Precompressed(body)
    assert gzip.decompress(content.ready("gzip") or b"") == body  # made at once
    assert content.ready("br") is None and content.ready("br") is None  # being made: not yet
    for _ in range(500):
        if content.ready("br") is not None:
            break
        await asyncio.sleep(0.01)
    assert brotli.decompress(content.ready("br")) == body
    assert made == [len(body)]  # once, however often it was asked for
