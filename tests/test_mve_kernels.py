"""The Helium (mve) kernel set's own kernels: which ops take them, and that the suites
that check them reach every path.

The mve lowering (tinyedge/ops/conv.py, fully_connected.py) sends FULLY_CONNECTED,
CONV_2D and DEPTHWISE_CONV_2D with channel multiplier 1 to kernels with their own
constant layouts (runtime te_blocked.h); int8 ADD / SUB take te_add_fast_s8, as for
the dsp set, which arm_mve/te_add_fast.c implements with Helium. Exactness against
TFLM is checked
- on the host, for the portable reference of those kernels reading the same
  layouts (conftest.HOST_KERNEL_VARIANTS "mve-portable-impl": tests/test_kernels_conv_fc.py,
  tests/test_models_host.py);
- in QEMU on the Cortex-M55 (mps3-an547), for the Helium code itself:
  tests/test_qemu_conv_fc.py (the single-op suite, with crafted requantization
  ties), tests/test_kernels_misc.py test_add_sub_requantize_on_device,
  tests/test_qemu_board_models.py (the shared models).
"""

from __future__ import annotations

import pytest

from conftest import shared_model
from test_kernels_conv_fc import model_cache, single_op_models, single_op_suite  # noqa: F401 (fixtures)
from tinyedge.boards import load_board
from tinyedge.compiler import CompiledNetwork, compile
from tinyedge.model import load_model
from tinyedge.ops.conv import geometry

M55 = load_board("mps3-an547")
BLOCKED = {"FULLY_CONNECTED": "te_fully_connected_blocked_s8(", "CONV_2D": "te_conv2d_blocked_s8(",
           "DEPTHWISE_CONV_2D": "te_depthwise_blocked_s8("}


def _calls(net: CompiledNetwork) -> list[tuple[str, str]]:
    return [(lo.op.opcode, lo.lowered.call) for lo in net.ops]


@pytest.mark.parametrize("model_name", ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"])
def test_mve_lowering_takes_the_helium_kernels(model_name: str) -> None:
    """On the M55 (auto = mve) every conv / FC / depthwise / int8 ADD of the shared models calls
    a kernel with an arm_mve implementation; forced portable or dsp, no blocked kernel."""
    graph = load_model(shared_model(model_name))
    net = compile(graph, M55)
    assert net.kernels == "mve"
    seen = 0
    for opcode, call in _calls(net):
        if opcode in BLOCKED:
            assert call.startswith(BLOCKED[opcode]), call
            seen += 1
        if opcode == "ADD":
            assert call.startswith("te_add_fast_s8("), call
            seen += 1
    assert seen >= 4
    for kernels in ("portable", "dsp"):
        calls = [call for _, call in _calls(compile(graph, M55, kernels=kernels))]
        assert not any("_blocked_s8(" in c for c in calls), kernels


def test_single_op_suite_reaches_every_blocked_path(single_op_models: dict[str, bytes]) -> None:  # noqa: F811
    """The single-op suite that tests/test_qemu_conv_fc.py runs on the M55 (and the host on the
    portable reference) lowers, for mve, to every shape of the blocked kernels: depthwise with
    the lanes along the row (a partial last block) and by channel blocks (a partial one), with
    and without tap pairs (a weight of -128), dilation, a stride above the kernel; 1x1 convolutions
    read in place and patches gathered, depths and output channel counts off the 16 / 4 blocks,
    one pixel or two per pass (and a last odd pixel)."""
    net = compile(single_op_suite(single_op_models).merged(), M55)
    seen: set[str] = set()
    for lo in net.ops:
        opcode, call, p = lo.op.opcode, lo.lowered.call, lo.lowered.params
        if opcode == "DEPTHWISE_CONV_2D" and call.startswith(BLOCKED[opcode]):
            g = geometry(lo.op, net.graph, depthwise=True)
            seen.add("dw flat" if p["flat"] else "dw blocks")
            if p["flat"] and g.out_w * g.in_c % 16:
                seen.add("dw flat partial")
            if not p["flat"] and g.in_c % 16:
                seen.add("dw blocks partial")
            if not p["pair_taps"]:
                seen.add("dw single taps")
            if g.dil_h > 1:
                seen.add("dw dilation")
            if g.stride_h > g.k_h:
                seen.add("dw rows skipped")
        if opcode == "CONV_2D":
            g = geometry(lo.op, net.graph, depthwise=False)
            seen.add("conv direct" if p["direct"] else "conv patch")
            depth, pixels = g.k_h * g.k_w * g.in_c, g.out_h * g.out_w
            pairs = depth > 64 and pixels > 1  # arm_mve: two pixels per pass from 65 bytes on
            if depth % 16:
                seen.add("conv pairs depth tail" if pairs else "conv depth tail")
            if g.out_c % 4:
                seen.add("conv pairs rows tail" if pairs else "conv rows tail")
            if pairs and pixels % 2:
                seen.add("conv pairs odd pixel")
        if opcode == "FULLY_CONNECTED" and int(str(p["out_depth"])) % 4:
            seen.add("fc rows tail")
    assert seen >= {"dw flat", "dw blocks", "dw flat partial", "dw blocks partial", "dw single taps",
                    "dw dilation", "dw rows skipped", "conv direct", "conv patch", "conv depth tail",
                    "conv rows tail", "conv pairs depth tail", "conv pairs rows tail", "conv pairs odd pixel",
                    "fc rows tail"}, seen
