"""Flash through pyOCD's Python API: CMSIS-DAP, ST-LINK and J-Link probes.

The target is the board file's ``[flash] target`` (a pyOCD target name:
built in, or from a CMSIS pack installed with ``pyocd pack install NAME``).
A probe that knows which board it sits on (pyOCD's board IDs: Nucleo and
Discovery ST-LINKs, DAPLink boards) must sit on one with that target; the
chip's CPUID must name the board's core. pyOCD erases the sectors the image
touches and programs them (``MemoryLoader``); we read every byte back, then
reset (``Target.reset()``: the chip runs) and close the session.
"""

from __future__ import annotations

from typing import Any

from tinyedge.boards import Board
from tinyedge.errors import TinyEdgeError
from tinyedge.flash import CPUID_ADDRESS, FlashReport, LogFn, check_core, verify_image
from tinyedge.flash_image import FlashImage
from tinyedge.probes import one_line, check_probe_target, discover_pyocd_probes, select_probe


def flash_with_pyocd(image: FlashImage, board: Board, probe_id: str | None, log: LogFn) -> FlashReport:
    if board.flash_method == "openocd" and board.flash_target:
        raise TinyEdgeError(f"board {board.name} is flashed through OpenOCD ([flash] method)",
                            f"start `openocd -f {board.flash_target}` and pass --probe gdb://127.0.0.1:3333")
    if board.flash_method != "pyocd" or not board.flash_target:
        raise TinyEdgeError(f"board {board.name} names no pyOCD target ([flash] target in its board file)",
                            "flash it through a GDB server instead: --probe gdb://HOST:PORT "
                            "(docs/flashing.md)")
    found = discover_pyocd_probes()
    info = select_probe([i for i, _p in found], probe_id)
    probe = next(p for i, p in found if i is info)
    check_probe_target(info, board)
    name = f"pyocd:{info.unique_id} ({info.vendor} {info.description})"
    log(f"probe {info.line()}, target {board.flash_target}")

    from pyocd.core import exceptions
    from pyocd.core.session import Session
    from pyocd.flash.loader import MemoryLoader

    session = Session(probe, auto_open=False, options={
        "target_override": board.flash_target,
        "hide_programming_progress": True,
        "smart_flash": False,            # program every sector the image touches
        "resume_on_disconnect": True,
    })
    try:
        session.open()
    except exceptions.TargetSupportError as exc:
        raise TinyEdgeError(f"pyOCD does not know target {board.flash_target!r}: {one_line(exc)}",
                            f"install its CMSIS pack: pyocd pack install {board.flash_target}") from exc
    except Exception as exc:  # noqa: BLE001 - USB and debug-port errors come in many types
        raise TinyEdgeError(f"cannot connect to {board.flash_target} through probe {info.unique_id}: "
                            f"{one_line(exc)}",
                            "is the board powered and the probe's cable on its debug connector?") from exc
    try:
        target: Any = session.board.target
        core = check_core(target.read32(CPUID_ADDRESS), board, f"probe {info.unique_id}")
        report = FlashReport(image.path, board.name, name, core)
        loader = MemoryLoader(session, chip_erase="sector")
        for seg in image.segments:
            loader.add_data(seg.address, seg.data)
        log(f"programming {image.size:,} bytes")
        loader.commit()
        report.written = [(s.address, len(s.data), "pyocd") for s in image.segments]
        log("verifying (reading every byte back)")
        report.verified_bytes = verify_image(
            image, lambda addr, n: bytes(target.read_memory_block8(addr, n)))
        target.reset()
        report.reset = "pyOCD reset (the chip runs)"
        return report
    except TinyEdgeError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise TinyEdgeError(f"flashing through probe {info.unique_id} failed: {one_line(exc)}",
                            "check the connection and run `tinyedge flash` again") from exc
    finally:
        try:
            session.close()
        except Exception:  # noqa: BLE001 - closing a lost session is not an error
            pass

