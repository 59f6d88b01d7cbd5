"""What is plugged in: serial ports and debug probes (`tinyedge devices`, `--port auto`).

Serial ports come from pyserial's ``serial.tools.list_ports.comports()``
(device, USB VID:PID, USB serial number, description). Debug probes come
from pyOCD's probe discovery (CMSIS-DAP, ST-LINK; J-Link where SEGGER's
J-Link software is installed), when pyOCD is installed.

A board file names the USB VID:PID of its virtual COM port (``[vcp]
usb_ids``), so ``--port auto`` picks the one port with such an ID and
refuses, listing what it saw, when there is none or more than one. The VCP
and the on-board probe are one USB device, so a ``--probe ID`` narrows
several candidate ports to the one whose USB serial number is that probe's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tinyedge.boards import Board
from tinyedge.errors import TinyEdgeError

PYOCD_MISSING = "pyOCD is not installed: pip install 'tinyedge[flash]'"


@dataclass(frozen=True)
class SerialPort:
    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str

    @property
    def usb_id(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    def line(self) -> str:
        usb = self.usb_id or "no USB ID"
        sn = f" serial {self.serial_number}" if self.serial_number else ""
        return f"{self.device} ({usb}{sn}, {self.description})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usb_id": self.usb_id}


@dataclass(frozen=True)
class ProbeInfo:
    unique_id: str
    description: str      # product, e.g. "STM32 STLink" / "DAPLink CMSIS-DAP"
    vendor: str
    board: str | None     # the board pyOCD says the probe is mounted on, if it knows
    target: str | None    # that board's target (pyOCD name)

    def line(self) -> str:
        on = f", on {self.board} ({self.target})" if self.board else ""
        return f"{self.unique_id} ({self.vendor} {self.description}{on})"


# ---------------------------------------------------------------- serial ports
def list_serial_ports() -> list[SerialPort]:
    from serial.tools import list_ports

    ports = [SerialPort(p.device, p.vid, p.pid, p.serial_number, p.description or "")
             for p in list_ports.comports()]
    return sorted(ports, key=lambda p: p.device)


def boards_for_usb_id(usb_id: str | None) -> list[str]:
    """Names of the boards whose VCP has this USB VID:PID."""
    if usb_id is None:
        return []
    from tinyedge.boards import list_boards, load_board

    return [name for name in list_boards() if usb_id in load_board(name).vcp_usb_ids]


def find_board_port(board: Board, ports: list[SerialPort] | None = None, probe: str | None = None) -> str:
    """The serial port of ``board``'s virtual COM port (``--port auto``)."""
    if not board.vcp_usb_ids:
        raise TinyEdgeError(f"board {board.name} names no USB ID for its serial port, so --port auto "
                            "cannot find it", "give the port: --port /dev/ttyACM0 (`tinyedge devices` lists them)")
    ports = list_serial_ports() if ports is None else ports
    matches = [p for p in ports if p.usb_id in board.vcp_usb_ids]
    if probe and len(matches) > 1 and not probe.startswith("gdb:"):
        mine = [p for p in matches if p.serial_number and _same_serial(p.serial_number, probe)]
        matches = mine or matches
    ids = ", ".join(board.vcp_usb_ids)
    seen = "; ".join(p.line() for p in ports) or "none"
    if not matches:
        raise TinyEdgeError(f"no serial port with {board.name}'s USB ID ({ids}); serial ports: {seen}",
                            "is the board plugged in (the debugger's USB connector)? "
                            "Otherwise give the port with --port")
    if len(matches) > 1:
        listing = "; ".join(p.line() for p in matches)
        raise TinyEdgeError(f"{len(matches)} serial ports could be {board.name}'s: {listing}",
                            "give one with --port, or the board's probe with --probe ID")
    return matches[0].device


def _same_serial(usb_serial: str, probe_id: str) -> bool:
    a, b = usb_serial.lower().lstrip("0"), probe_id.lower().lstrip("0")
    return bool(a) and bool(b) and (a in b or b in a)


# ---------------------------------------------------------------- debug probes
def pyocd_available() -> bool:
    try:
        import pyocd  # noqa: F401
    except ImportError:
        return False
    return True


def discover_pyocd_probes() -> list[tuple[ProbeInfo, Any]]:
    """(info, pyOCD DebugProbe) for every probe pyOCD finds; TinyEdgeError if pyOCD is missing."""
    if not pyocd_available():
        raise TinyEdgeError(PYOCD_MISSING, "or flash through a GDB server: --probe gdb://HOST:PORT")
    from pyocd.core.helpers import ConnectHelper

    try:
        probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    except Exception as exc:  # noqa: BLE001 - USB back-ends raise many types
        raise TinyEdgeError(f"pyOCD could not list the debug probes: {one_line(exc)}",
                            "check USB permissions (udev rules) for the probe") from exc
    out = []
    for p in probes:
        info = p.associated_board_info
        out.append((ProbeInfo(str(p.unique_id), str(p.product_name), str(p.vendor_name),
                              info.name if info else None, info.target if info else None), p))
    return out


def select_probe(probes: list[ProbeInfo], wanted: str | None) -> ProbeInfo:
    """The one probe to use: the only one attached, or the one whose ID contains ``wanted``."""
    if not probes:
        raise TinyEdgeError("no debug probe found",
                            "plug in the board's USB debug connector (check `tinyedge devices`), "
                            "or flash through a GDB server: --probe gdb://HOST:PORT")
    listing = "; ".join(p.line() for p in probes)
    if wanted is None:
        if len(probes) > 1:
            raise TinyEdgeError(f"{len(probes)} debug probes attached: {listing}",
                                "choose one with --probe ID (its unique ID, or a part of it)")
        return probes[0]
    matches = [p for p in probes if wanted.lower() in p.unique_id.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise TinyEdgeError(f"no debug probe matches {wanted!r}; attached: {listing}",
                            "give the unique ID of one of them (or a part of it)")
    raise TinyEdgeError(f"{len(matches)} debug probes match {wanted!r}: "
                        f"{'; '.join(p.line() for p in matches)}", "give more of the unique ID")


def check_probe_target(probe: ProbeInfo, board: Board) -> None:
    """A probe mounted on a known board must be on a board with ``board``'s chip."""
    # Names differ in how much of the part number they spell: "stm32f405rg" and
    # "stm32f405rgtx" (pack name with package), "stm32h743xx" (x = any) and "stm32h743zitx".
    want = (board.flash_target or "").lower().rstrip("x")
    have = (probe.target or "").lower().rstrip("x")
    if not want or not have:
        return
    if not (have.startswith(want) or want.startswith(have)):
        raise TinyEdgeError(f"probe {probe.unique_id} is on a {probe.board} (target {probe.target}), "
                            f"but board {board.name} needs target {board.flash_target}",
                            "connect the right board, or pick the board that is connected "
                            "(`tinyedge boards`), or choose another probe with --probe ID")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
