"""RSP framing, byte by byte, against the GDB manual's own definitions and examples
(appendix "GDB Remote Serial Protocol": Overview, Packets, Memory Map Format,
Target Description Format)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyedge.errors import TinyEdgeError
from tinyedge.gdb_rsp import (MemoryRegion, PacketReader, RspError, checksum, encode_packet, escape,
                              parse_features, parse_gdb_url, parse_memory_map, register_numbers,
                              rle_expand, unescape)


def test_checksum_is_the_modulo_256_sum() -> None:
    # 'O' = 0x4f, 'K' = 0x4b: 0x9a
    assert encode_packet(b"OK") == b"$OK#9a"
    assert encode_packet(b"") == b"$#00"
    assert checksum(b"\xff\x02") == 0x01                  # wraps at 256
    assert encode_packet(b"m0,4") == b"$m0,4#" + b"%02x" % ((0x6D + 0x30 + 0x2C + 0x34) % 256)


def test_escape_each_special_byte() -> None:
    # '}' (0x7d) followed by the byte XOR 0x20; the manual's example: 0x7d -> 0x7d 0x5d
    assert escape(b"}") == b"}]"
    assert escape(b"#") == b"}\x03"
    assert escape(b"$") == b"}\x04"
    assert escape(b"*") == b"}\x0a"
    assert escape(b"a#b") == b"a}\x03b"
    assert escape(bytes(range(0x20))) == bytes(range(0x20))     # nothing else is escaped


@given(st.binary(max_size=300))
def test_escape_round_trip_and_no_special_bytes_left(data: bytes) -> None:
    enc = escape(data)
    assert unescape(enc) == data
    assert b"#" not in enc and b"$" not in enc and b"*" not in enc
    # every '}' in the output starts an escape pair
    i = 0
    while i < len(enc):
        if enc[i] == 0x7D:
            assert enc[i + 1] ^ 0x20 in b"#$}*"
            i += 2
        else:
            i += 1


def test_unescape_rejects_a_dangling_escape() -> None:
    with pytest.raises(RspError):
        unescape(b"ab}")


def test_run_length_decoding_examples() -> None:
    # The manual: "0* " means 0000 (' ' = 32 = 3 + 29: three more '0')
    assert rle_expand(b"0* ") == b"0000"
    assert rle_expand(b'0*"') == b"000000"            # '"' = 34: five more
    assert rle_expand(b"0*\"0") == b"0000000"
    assert rle_expand(b"ab*!c") == b"a" + b"b" * 5 + b"c"   # '!' = 33: four more
    assert rle_expand(b"no runs") == b"no runs"
    assert rle_expand(b"f*~") == b"f" * 98             # '~' = 126: 97 more


def test_run_length_decoding_refuses_garbage() -> None:
    for bad in (b"*#", b"0*", b"0*\x10"):
        with pytest.raises(RspError):
            rle_expand(bad)


def test_packet_reader_splits_acks_packets_and_notifications() -> None:
    r = PacketReader()
    evs = r.feed(b"+$OK#9a-%Stop:T05#")
    assert [(e.kind, e.data, e.ok) for e in evs] == [("ack", b"", True), ("packet", b"OK", True),
                                                    ("nak", b"", True)]
    evs = r.feed(b"ee")   # the notification's checksum arrives later
    assert [e.kind for e in evs] == ["notification"]


def test_packet_reader_flags_a_bad_checksum_and_survives_split_input() -> None:
    r = PacketReader()
    assert r.feed(b"$E0") == [] and r.feed(b"1#") == []
    (ev,) = r.feed(b"a7")          # 'E' + '0' + '1' = 0x45 + 0x30 + 0x31 = 0xa6, not 0xa7
    assert ev.kind == "packet" and ev.data == b"E01" and not ev.ok
    (ev,) = r.feed(b"$E01#a6")
    assert ev.ok
    # a packet cut short by a new '$' is dropped, the new one read
    (ev,) = r.feed(b"$garbage$OK#9a")
    assert ev.data == b"OK" and ev.ok


def test_qsupported_features() -> None:
    f = parse_features(b"PacketSize=4000;QStartNoAckMode+;qXfer:memory-map:read+;multiprocess-;foo?")
    assert f == {"PacketSize": "4000", "QStartNoAckMode": True, "qXfer:memory-map:read": True,
                 "multiprocess": False, "foo": False}


def test_gdb_urls() -> None:
    assert parse_gdb_url("gdb://127.0.0.1:3333") == ("127.0.0.1", 3333)
    assert parse_gdb_url("gdb://localhost:2331") == ("localhost", 2331)
    assert parse_gdb_url("gdb:///dev/ttyACM0") == "/dev/ttyACM0"
    for bad in ("gdb://127.0.0.1", "tcp://x:1", "gdb://", "gdb://host:port", "gdb:///"):
        with pytest.raises(TinyEdgeError):
            parse_gdb_url(bad)


def test_memory_map_document() -> None:
    xml = b"""<?xml version="1.0"?>
<!DOCTYPE memory-map PUBLIC "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN"
    "http://sourceware.org/gdb/gdb-memory-map.dtd">
<memory-map>
  <memory type="flash" start="0x8000000" length="0x10000">
    <property name="blocksize">0x4000</property>
  </memory>
  <memory type="flash" start="0x8010000" length="0x10000"><property name="blocksize">0x10000</property></memory>
  <memory type="ram" start="0x20000000" length="0x20000"/>
  <memory type="rom" start="0x1fff0000" length="0x7800"/>
</memory-map>"""
    assert parse_memory_map(xml) == [
        MemoryRegion("flash", 0x08000000, 0x10000, 0x4000),
        MemoryRegion("flash", 0x08010000, 0x10000, 0x10000),
        MemoryRegion("rom", 0x1FFF0000, 0x7800),
        MemoryRegion("ram", 0x20000000, 0x20000),
    ]
    with pytest.raises(RspError):
        parse_memory_map(b'<memory-map><memory type="flash" start="0" length="0x100"/></memory-map>')


def test_register_numbers_follow_includes_and_regnum() -> None:
    docs = {
        "target.xml": b'<?xml version="1.0"?><target><architecture>arm</architecture>'
                      b'<xi:include href="m.xml"/><xi:include href="fp.xml"/></target>',
        "m.xml": b'<feature name="org.gnu.gdb.arm.m-profile"><reg name="r0" bitsize="32"/>'
                 b'<reg name="r1" bitsize="32"/><reg name="sp" bitsize="32" regnum="13"/>'
                 b'<reg name="lr" bitsize="32"/><reg name="pc" bitsize="32"/>'
                 b'<reg name="xPSR" bitsize="32" regnum="25"/></feature>',
        "fp.xml": b'<feature name="x"><reg name="d0" bitsize="64"/></feature>',
    }
    nums = register_numbers(lambda annex: docs[annex])
    assert nums == {"r0": 0, "r1": 1, "sp": 13, "lr": 14, "pc": 15, "xpsr": 25, "d0": 26}
