"""Plaintext parsing, pickle frames and metric names."""

from __future__ import annotations

import pickle

import pytest

from citymesh.carbon.names import InvalidName, parse_name
from citymesh.carbon.parse import parse_plaintext
from citymesh.carbon.pickle_format import decode_frame

NOW = 1_700_000_000.0


def test_parse_plaintext_tolerates_real_senders() -> None:
    data = (
        b"a.int 42 1700000000\r\n"
        b"a.float 1.5 1700000060   \n"
        b"a.sci -2.5e3 1700000120.9\n"
        b"\n"
        b"a.now 7 -1\n"
    )
    parsed = parse_plaintext(data, NOW)
    assert parsed.paths == [b"a.int", b"a.float", b"a.sci", b"a.now"]
    assert parsed.values.tolist() == [42.0, 1.5, -2500.0, 7.0]
    assert parsed.timestamps_ms.tolist() == [
        1_700_000_000_000,
        1_700_000_060_000,
        1_700_000_120_000,
        1_700_000_000_000,
    ]
    assert not parsed.rejected


def test_parse_plaintext_rejects_and_keeps_neighbours() -> None:
    data = (
        b"ok.one 1 1700000000\n"
        b"bad.nan nan 1700000000\n"
        b" 5 1700000000\n"
        b"bad.inf -inf 1700000000\n"
        b"bad.text abc 1700000000\n"
        b"bad.time 1 yesterday\n"
        b"bad.fields 1\n"
        b"ok.two 2 1700000000\n"
    )
    parsed = parse_plaintext(data, NOW)
    assert parsed.paths == [b"ok.one", b"ok.two"]
    assert parsed.values.tolist() == [1.0, 2.0]
    assert dict(parsed.rejected) == {
        "non_finite_value": 2,
        "empty_path": 1,
        "invalid_value": 1,
        "invalid_timestamp": 1,
        "invalid_line": 1,
    }
    assert parsed.samples["non_finite_value"] == b"nan"
    assert parsed.samples["empty_path"] == b" 5 1700000000"


def test_parse_plaintext_huge_timestamp_rejected() -> None:
    # 21 digits overflow int64, which must reject the line, not the buffer.
    data = b"big.time 1 100000000000000000000\nok.one 1 1700000000\n"
    parsed = parse_plaintext(data, NOW)
    assert parsed.paths == [b"ok.one"]
    assert parsed.timestamps_ms.tolist() == [1_700_000_000_000]
    assert dict(parsed.rejected) == {"invalid_timestamp": 1}


def test_decode_frame_reads_carbon_pickle() -> None:
    items = [
        ("p.one", (1_700_000_000, 1.0)),
        ("p.nan", (1_700_000_000, float("nan"))),
        ("", (1_700_000_000, 3.0)),
        ("p.two", (-1, "2.5")),
    ]
    parsed = decode_frame(pickle.dumps(items, protocol=2), NOW)
    assert parsed.paths == [b"p.one", b"p.two"]
    assert parsed.values.tolist() == [1.0, 2.5]
    assert parsed.timestamps_ms.tolist() == [1_700_000_000_000] * 2
    assert dict(parsed.rejected) == {"non_finite_value": 1, "empty_path": 1}


def test_decode_frame_refuses_globals() -> None:
    frame = pickle.dumps([("p.x", (1_700_000_000, 1.0))], protocol=2)
    evil = pickle.dumps(print)
    assert not decode_frame(evil, NOW).paths
    assert decode_frame(evil, NOW).rejected["invalid_line"] == 1
    assert decode_frame(frame, NOW).paths == [b"p.x"]


def test_parse_name_sorts_tags() -> None:
    name = parse_name(b"disk.used;host=web1;dc=ams;name=ignored")
    assert name.path == "disk.used"
    assert name.tags == {"host": "web1", "dc": "ams"}
    assert name.series_name == "disk.used;dc=ams;host=web1"


@pytest.mark.parametrize(
    "raw",
    [
        b"a..b",
        b".a",
        b"a.",
        b"a b",
        b"a.*",
        b"a.{b}",
        b"a,b",
        b"caf\xc3\xa9",
        b";tag=1",
        b"a;tag",
        b"a;=1",
        b"a;t!g=1",
        b"a;tag=",
        b"a;tag=~x",
    ],
)
def test_parse_name_rejects(raw: bytes) -> None:
    with pytest.raises(InvalidName):
        parse_name(raw)
