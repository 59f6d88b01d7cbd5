"""The fault-injecting proxy, and DeviceClient through it, against the Python
stand-in for the firmware (tests/fixtures/fake_net/fake_device.py) on a real
TCP socket: corrupted, dropped and delayed bytes and device resets end in exact
outputs or a clear error, never a hang or a lost sample. The same proxy runs
against QEMU in test_qemu_bench.py."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tinyedge.device import DeviceClient
from tinyedge.errors import TinyEdgeError
from tinyedge.protocol import RSP_FLAG, Cmd
from tinyedge.testing.faultproxy import TO_DEVICE, TO_HOST, FaultProxy, Faults

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "fake_net"))
from fake_device import FakeDevice, FakeDeviceServer  # noqa: E402
from make_project import expected_outputs  # noqa: E402


@pytest.fixture()
def server() -> Iterator[FakeDeviceServer]:
    with FakeDeviceServer(FakeDevice(max_payload=1024)) as srv:
        yield srv


def samples(n: int, seed: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    return [[rng.randbytes(400), rng.randbytes(3)] for _ in range(n)]


def run_all(url: str, cases: list[list[bytes]], **kw: float) -> DeviceClient:
    with DeviceClient(url, timeout=kw.get("timeout", 5.0), run_time=0.2) as c:
        for k, (image, bias) in enumerate(cases):
            assert c.infer([image, bias], f"sample {k}").outputs == expected_outputs(image, bias)
    return c


def test_clean_proxy_is_transparent(server: FakeDeviceServer) -> None:
    with FaultProxy(server.url, Faults()) as proxy:
        c = run_all(proxy.url, samples(3, 1))
    assert c.stats["retries"] == 0 and c.stats["corrupted"] == 0
    assert proxy.stats.forwarded[TO_DEVICE] == c.stats["bytes_out"]
    # pyserial discards what arrived before the port was open (the BOOT banner, at most)
    assert 0 <= proxy.stats.forwarded[TO_HOST] - c.stats["bytes_in"] <= 100


def test_noise_drops_and_delays_end_exact(server: FakeDeviceServer) -> None:
    faults = Faults(seed=7, corrupt=2e-3, drop=2e-3, delay=0.05, max_delay=0.02)
    start = time.monotonic()
    with FaultProxy(server.url, faults) as proxy:
        c = run_all(proxy.url, samples(20, 2))
    st = proxy.stats
    assert min(st.corrupted[TO_DEVICE], st.corrupted[TO_HOST], st.dropped[TO_DEVICE], st.dropped[TO_HOST]) > 0
    assert sum(st.delayed.values()) > 0
    assert c.stats["retries"] > 0 and c.stats["corrupted"] + c.stats["nacks"] > 0
    assert server.device.runs >= 20
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("reset_after,detected", [
    (((Cmd.WRITE, 2),), "banner"),            # mid-input: its banner comes back
    (((Cmd.RUN, 2),), "banner"),              # while the second sample runs
    (((Cmd.RUN | RSP_FLAG, 1),), "banner"),   # after RUN answered, before READ
])
def test_resets_mid_sample_lose_nothing(server: FakeDeviceServer, reset_after: tuple[tuple[int, int], ...],
                                        detected: str) -> None:
    with FaultProxy(server.url, Faults(reset_after=reset_after), reset=server.reset) as proxy:
        c = run_all(proxy.url, samples(4, 3))
    assert proxy.stats.resets == 1 and c.stats["resets"] == 1
    assert c.resets[0].detected_by == detected


def test_resets_with_lost_banners_lose_nothing(server: FakeDeviceServer) -> None:
    """The device resets without a banner reaching the host: the CRCs that RUN
    carries and answers with catch the lost state. Frames per sample: WRITE
    image, WRITE bias, RUN, READ x2 -- reset after sample 1's second WRITE (its
    image is lost whether or not that WRITE landed first) and after sample 2's RUN."""
    faults = Faults(reset_after=((Cmd.WRITE, 4), (Cmd.RUN | RSP_FLAG, 3)))
    with FaultProxy(server.url, faults, reset=lambda: server.device.reset()) as proxy:
        c = run_all(proxy.url, samples(5, 4))
    assert proxy.stats.resets == 2
    assert sorted((r.during, r.detected_by) for r in c.resets) == [("READ", "state check"),
                                                                  ("RUN", "state check")]


def test_random_resets_and_noise_together(server: FakeDeviceServer) -> None:
    faults = Faults(seed=11, corrupt=1e-3, drop=1e-3, reset_every=(1500, 4000))
    with FaultProxy(server.url, faults, reset=server.reset) as proxy:
        c = run_all(proxy.url, samples(12, 5))
    assert proxy.stats.resets >= 2
    assert c.stats["resets"] >= 1


def test_line_that_destroys_everything_fails_clearly(server: FakeDeviceServer) -> None:
    start = time.monotonic()
    with FaultProxy(server.url, Faults(seed=3, corrupt=0.2, directions=(TO_HOST,))) as proxy, \
            pytest.raises(TinyEdgeError) as err:
        run_all(proxy.url, samples(1, 6), timeout=2.0)
    assert "does not speak the tinyedge protocol" in err.value.message
    assert "corrupt everything" in err.value.hint
    assert time.monotonic() - start < 3.0
