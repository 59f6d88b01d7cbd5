"""How fast an input crosses a serial line: counted wire bytes and round trips -> time.

Stop-and-wait sends a request, then waits for its answer; nothing overlaps. So
moving a tensor costs

    time = (wire bytes out + wire bytes in) x 10 / baud  +  round trips x RTT

(8N1: 10 bits on the line per byte; RTT: the USB/driver round trip, which a
USB full-speed virtual COM port adds to every exchange -- 1 ms is typical) plus
the device's handling of each frame, which is a memcpy here (frames are decoded
and CRC-checked while they arrive). The efficiency is the payload's share of
the line: payload x 10 / baud / time. :func:`planned_write` computes the exact
wire bytes of a WRITE transfer from the frames tinyedge builds;
tests/test_qemu_bench.py checks them against what the client counts against
the real firmware.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyedge import protocol as p

BITS_PER_BYTE = 10      # 8N1: start + 8 data + stop


@dataclass(frozen=True)
class Transfer:
    payload: int        # data bytes moved
    bytes_out: int      # wire bytes host -> device: frames, delimiters, retransmissions
    bytes_in: int       # wire bytes device -> host: the answers
    round_trips: int    # requests sent, each waited for

    @property
    def wire_per_payload(self) -> float:
        return (self.bytes_out + self.bytes_in) / self.payload

    def seconds(self, baud: int, rtt: float) -> float:
        return (self.bytes_out + self.bytes_in) * BITS_PER_BYTE / baud + self.round_trips * rtt

    def efficiency(self, baud: int, rtt: float) -> float:
        """The payload's share of the line's rate (1.0: the line never idles, no overhead)."""
        return self.payload * BITS_PER_BYTE / baud / self.seconds(baud, rtt)

    def rate(self, baud: int, rtt: float) -> float:
        """Payload bytes per second."""
        return self.payload / self.seconds(baud, rtt)


def planned_write(data: bytes, max_payload: int, index: int = 0, seq: int = 1) -> Transfer:
    """The stop-and-wait WRITE of ``data`` into input ``index`` with frames of
    ``max_payload`` bytes at most, on a clean line: every frame and answer built
    as tinyedge builds them (0x00 before and after each frame)."""
    chunk = p.write_chunk_size(max_payload)
    out = inn = trips = 0
    for offset in range(0, len(data), chunk):
        s = (seq + trips - 1) % 0xFFFF + 1
        out += 1 + len(p.encode_frame(p.Cmd.WRITE, s, p.write_request(index, offset, data[offset:offset + chunk])))
        inn += 1 + len(p.encode_frame(p.Cmd.WRITE | p.RSP_FLAG, s, bytes([p.Status.OK])))
        trips += 1
    return Transfer(len(data), out, inn, trips)
