"""Emulators that run generated firmware with its UART on a local socket."""

from tinyedge.emulator.qemu import QemuHaltedInstance, QemuInstance, free_port, qemu_command

__all__ = ["QemuHaltedInstance", "QemuInstance", "free_port", "qemu_command"]
