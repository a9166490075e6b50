"""onnx2torch converters that onnx2torch 1.5.15 lacks or refuses, registered in its converter registry on import.

Imported by stage_torch.py (and check_extra_converters.py) before any conversion. Each follows the ONNX
operator definition (https://onnx.ai/onnx/operators/), NCHW, and is checked against onnxruntime by
tools/tfhub/check_extra_converters.py:

  SpaceToDepth   (opset 1, 13)       no converter in onnx2torch. tf2onnx emits it for tf.nn.space_to_depth
                                     (i-RevNet-style invertible downsampling). Its channel order is
                                     (block row, block column, channel), not torch's pixel_unshuffle order,
                                     so it is the spec's reshape/transpose.
  DepthToSpace   (opset 1, 11, 13)   onnx2torch converts mode CRD only; tf2onnx emits DCR for
                                     tf.nn.depth_to_space. Both modes here, as the spec's reshape/transpose.
  AveragePool    (opset 7-22)        onnx2torch refuses asymmetric pads and auto_pad SAME_*; tf2onnx emits
                                     asymmetric pads for TF's SAME pooling whenever the total padding is odd
                                     (e.g. kernel 2 stride 2 on an odd size, kernel 3 stride 2 on an even
                                     size). Here: explicit zero F.pad, then avg_pool with no padding, divided
                                     by the count of real (non-pad) elements when count_include_pad=0 (TF's
                                     SAME average and ONNX's default), or by the kernel size when 1.
                                     Symmetric pads keep onnx2torch's own nn.AvgPoolNd.

A converter raises NotImplementedError for attributes it does not cover (dilations, ceil_mode with asymmetric
pads); stage_torch.py turns that into a refusal that names the op and the node.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from onnx2torch.node_converters import registry
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

# ONNX schema versions (since_version) each converter is registered for; get_converter maps a model's opset
# to the newest of these at or below it (AveragePool at opset 17 -> 11).
VERSIONS = {"SpaceToDepth": (1, 13), "DepthToSpace": (1, 11, 13), "AveragePool": (1, 7, 10, 11, 19, 22)}


def _register(op: str, converter) -> None:
    """add_converter for every version in VERSIONS[op], replacing onnx2torch's own converter where it has one."""
    for v in VERSIONS[op]:
        registry._CONVERTER_REGISTRY.pop(registry.OperationDescription("", op, v), None)  # noqa: SLF001
        registry.add_converter(operation_type=op, version=v)(converter)


# ---------------------------------------------------------------- SpaceToDepth / DepthToSpace

class SpaceToDepth(nn.Module, OnnxToTorchModule):
    """ONNX SpaceToDepth: [N,C,H,W] -> [N,C*b*b,H/b,W/b], output channel (bh*b + bw)*C + c."""

    def __init__(self, blocksize: int):
        super().__init__()
        self.blocksize = blocksize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.blocksize
        _, c, h, w = x.shape
        y = x.reshape(-1, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
        return y.reshape(-1, c * b * b, h // b, w // b)


class DepthToSpace(nn.Module, OnnxToTorchModule):
    """ONNX DepthToSpace: [N,C,H,W] -> [N,C/(b*b),H*b,W*b] in mode DCR (TF's order) or CRD (pixel_shuffle's)."""

    def __init__(self, blocksize: int, mode: str):
        super().__init__()
        self.blocksize = blocksize
        self.dcr = mode == "DCR"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.blocksize
        _, c, h, w = x.shape
        if self.dcr:
            y = x.reshape(-1, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
        else:
            y = x.reshape(-1, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(-1, c // (b * b), h * b, w * b)


def _rank4(node: OnnxNode, graph: OnnxGraph) -> None:
    vi = graph.value_info.get(node.input_values[0])
    if vi is not None and vi.type.tensor_type.HasField("shape"):
        rank = len(vi.type.tensor_type.shape.dim)
        if rank != 4:
            raise NotImplementedError(f"{node.operation_type} on a rank-{rank} input (ONNX defines it for 4-D NCHW)")


def _space_to_depth(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    _rank4(node, graph)
    return OperationConverterResult(torch_module=SpaceToDepth(int(node.attributes["blocksize"])),
                                    onnx_mapping=onnx_mapping_from_node(node))


def _depth_to_space(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    _rank4(node, graph)
    mode = node.attributes.get("mode", "DCR")
    if isinstance(mode, bytes):
        mode = mode.decode()
    if mode not in ("DCR", "CRD"):
        raise NotImplementedError(f"DepthToSpace mode {mode!r} (ONNX defines DCR and CRD)")
    return OperationConverterResult(torch_module=DepthToSpace(int(node.attributes["blocksize"]), mode),
                                    onnx_mapping=onnx_mapping_from_node(node))


# ---------------------------------------------------------------- AveragePool

_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_AVG_POOL_MODULE = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


class PaddedAvgPool(nn.Module, OnnxToTorchModule):
    """AveragePool with explicit (possibly asymmetric) pads: zero-pad, pool unpadded, divide by the right count."""

    def __init__(self, kernel: Sequence[int], strides: Sequence[int], torch_pads: Sequence[int],
                 count_include_pad: bool):
        super().__init__()
        self.kernel = list(kernel)
        self.strides = list(strides)
        self.torch_pads = list(torch_pads)  # F.pad order: last dimension first, (begin, end) each
        self.count_include_pad = count_include_pad
        self.spatial = len(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = _AVG_POOL[self.spatial]
        # The sum over each window / kernel size (padding zeros add nothing to the sum).
        y = pool(F.pad(x, self.torch_pads), self.kernel, self.strides, 0, False, True)
        if self.count_include_pad:
            return y
        # The fraction of each window that lies on the input (not on padding): the same pool over a ones image.
        ones = torch.ones([1, 1] + list(x.shape[2:]), dtype=x.dtype, device=x.device)
        share = pool(F.pad(ones, self.torch_pads), self.kernel, self.strides, 0, False, True)
        return y / share


def _same_pads(in_sizes: List[int], kernel: List[int], strides: List[int], upper: bool) -> List[int]:
    """ONNX auto_pad SAME_UPPER/SAME_LOWER as explicit pads [begins..., ends...] (the odd one at the end/begin)."""
    begins, ends = [], []
    for n, k, s in zip(in_sizes, kernel, strides):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if upper else large)
        ends.append(large if upper else small)
    return begins + ends


def _average_pool(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    a = node.attributes
    kernel = list(a["kernel_shape"])
    spatial = len(kernel)
    if spatial not in _AVG_POOL:
        raise NotImplementedError(f"AveragePool with {spatial} spatial dimensions")
    strides = list(a.get("strides", [1] * spatial))
    if any(d != 1 for d in a.get("dilations", [1] * spatial)):
        raise NotImplementedError(f"AveragePool with dilations {list(a['dilations'])}")
    ceil_mode = int(a.get("ceil_mode", 0)) == 1
    count_include_pad = int(a.get("count_include_pad", 0)) == 1
    auto_pad = a.get("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        vi = graph.value_info.get(node.input_values[0])
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim] if vi is not None else []
        if len(dims) != spatial + 2 or any(d <= 0 for d in dims[2:]):
            raise NotImplementedError(f"AveragePool auto_pad {auto_pad} on an input of unknown spatial size")
        pads = _same_pads(dims[2:], kernel, strides, auto_pad == "SAME_UPPER")
    elif auto_pad in ("NOTSET", "VALID"):
        pads = [0] * (2 * spatial) if auto_pad == "VALID" else list(a.get("pads", [0] * (2 * spatial)))
    else:
        raise NotImplementedError(f"AveragePool auto_pad {auto_pad!r}")
    begins, ends = pads[:spatial], pads[spatial:]
    if begins == ends and all(p <= k // 2 for p, k in zip(begins, kernel)):
        # Symmetric: torch's own pooling, as onnx2torch converts it (torch allows pads up to half the kernel).
        module = _AVG_POOL_MODULE[spatial](kernel_size=kernel, stride=strides, padding=begins,
                                           count_include_pad=count_include_pad, ceil_mode=ceil_mode)
    else:
        if ceil_mode:
            raise NotImplementedError(f"AveragePool with ceil_mode=1 and asymmetric pads {pads}")
        torch_pads: List[int] = []
        for b, e in zip(reversed(begins), reversed(ends)):
            torch_pads += [b, e]
        module = PaddedAvgPool(kernel, strides, torch_pads, count_include_pad)
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


_register("SpaceToDepth", _space_to_depth)
_register("DepthToSpace", _depth_to_space)
_register("AveragePool", _average_pool)


def registered() -> List[Tuple[str, int]]:
    """(op, version) pairs this module registered, for the record."""
    return [(op, v) for op, versions in VERSIONS.items() for v in versions]
