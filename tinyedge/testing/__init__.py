"""Tools for testing a link without a board: a fault-injecting proxy and a QEMU
QMP client to reset the emulated board mid-run."""
