"""Read a TFLite detector into plain numpy: the op graph and its float32 weights, with no TFLite runtime.

The `tflite` package (PyPI) is only a flatbuffer schema reader; it runs nothing. This module walks the model's
first subgraph and returns :class:`TfliteOp` records for the ops the SSD-MobileNetV2 detector uses (CONV_2D,
DEPTHWISE_CONV_2D, ADD, RESHAPE, CONCATENATION; DEQUANTIZE is folded into the constants it produces), so that
:mod:`agra_ros.detectors.ssd.network` can build an equivalent torch network. An op kind this reader does not know is a
clear :class:`TfliteImportError`, never a silently wrong network.

Why our own reader: the reference interpreter (``ai-edge-litert``) runs a model but does not expose a graph that a
torch module can be built from, and no maintained TFLite-to-torch converter exists on PyPI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "RESHAPE", "CONCATENATION")


class TfliteImportError(ValueError):
    """A TFLite file that cannot be read or uses an op or option this reader does not support."""


@dataclass
class TfliteOp:
    """One op of the graph, tensors named by their TFLite tensor names."""

    kind: str
    inputs: list[str]
    """Names of the activation inputs (constants are in ``weight``/``bias``)."""
    output: str
    output_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    """Conv weights in torch layout: (out, in/groups, kh, kw), float32."""
    bias: np.ndarray | None = None
    stride: int = 1
    padding: str = "SAME"
    activation: str = "NONE"
    """Fused activation: NONE, RELU, RELU6."""
    axis: int = 0
    """CONCATENATION axis (as TFLite gives it, NHWC order)."""
    extra: dict = field(default_factory=dict)


@dataclass
class TfliteGraph:
    ops: list[TfliteOp]
    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[tuple[str, tuple[int, ...]]]


def _tensor_array(model, graph, index: int, consts: dict[int, np.ndarray]) -> np.ndarray | None:
    import tflite

    if index in consts:
        return consts[index]
    t = graph.Tensors(index)
    buf = model.Buffers(t.Buffer())
    if buf is None or buf.DataLength() == 0:
        return None
    dtypes = {
        tflite.TensorType.FLOAT32: np.float32,
        tflite.TensorType.FLOAT16: np.float16,
        tflite.TensorType.INT32: np.int32,
        tflite.TensorType.INT64: np.int64,
    }
    if t.Type() not in dtypes:
        raise TfliteImportError(f"tensor {t.Name().decode()!r} has unsupported type {t.Type()}")
    arr = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtypes[t.Type()])
    return arr.reshape(tuple(int(s) for s in t.ShapeAsNumpy()))


def read_tflite(data: bytes) -> TfliteGraph:
    """Parse a TFLite flatbuffer (the bytes of a .tflite file) into a :class:`TfliteGraph`."""
    try:
        import tflite
    except ImportError:  # pragma: no cover - a declared dependency
        raise TfliteImportError(
            "the `tflite` package (flatbuffer reader) is not installed: pip install tflite"
        ) from None
    try:
        model = tflite.Model.GetRootAsModel(bytearray(data), 0)
        graph = model.Subgraphs(0)
        n_ops = graph.OperatorsLength()
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise TfliteImportError(f"not a readable TFLite model ({type(exc).__name__}: {exc})") from None
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    act_names = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
    pad_names = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}

    def name(i: int) -> str:
        return graph.Tensors(i).Name().decode()

    def shape(i: int) -> tuple[int, ...]:
        return tuple(int(s) for s in graph.Tensors(i).ShapeAsNumpy())

    consts: dict[int, np.ndarray] = {}
    ops: list[TfliteOp] = []
    for k in range(n_ops):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        ins = [int(i) for i in op.InputsAsNumpy()]
        out = int(op.OutputsAsNumpy()[0])
        if kind == "DEQUANTIZE":
            arr = _tensor_array(model, graph, ins[0], consts)
            if arr is None:
                raise TfliteImportError(f"DEQUANTIZE of a non-constant tensor {name(ins[0])!r} is not supported")
            consts[out] = arr.astype(np.float32)
            continue
        if kind not in SUPPORTED_OPS:
            raise TfliteImportError(f"op {kind} (op {k}) is not supported; supported: {', '.join(SUPPORTED_OPS)}")
        rec = TfliteOp(kind=kind, inputs=[], output=name(out), output_shape=shape(out))
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = _tensor_array(model, graph, ins[1], consts)
            b = _tensor_array(model, graph, ins[2], consts) if len(ins) > 2 and ins[2] >= 0 else None
            if w is None:
                raise TfliteImportError(f"{kind} {rec.output!r}: weights are not constant")
            opts_cls = tflite.Conv2DOptions if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions
            opts = opts_cls()
            table = op.BuiltinOptions()
            opts.Init(table.Bytes, table.Pos)
            if opts.StrideH() != opts.StrideW() or opts.DilationHFactor() != 1 or opts.DilationWFactor() != 1:
                raise TfliteImportError(f"{rec.output!r}: non-square stride or dilation is not supported")
            if kind == "CONV_2D":
                weight = np.transpose(w, (0, 3, 1, 2))  # OHWI -> OIHW
            else:
                if opts.DepthMultiplier() != 1:
                    raise TfliteImportError(f"{rec.output!r}: depth multiplier {opts.DepthMultiplier()} unsupported")
                weight = np.transpose(w, (3, 0, 1, 2))  # 1HWC -> C1HW
            rec.inputs = [name(ins[0])]
            rec.weight = np.ascontiguousarray(weight, dtype=np.float32)
            rec.bias = None if b is None else np.asarray(b, dtype=np.float32)
            rec.stride = int(opts.StrideH())
            rec.padding = pad_names[opts.Padding()]
            rec.activation = act_names[opts.FusedActivationFunction()]
            if rec.activation not in ("NONE", "RELU", "RELU6"):
                raise TfliteImportError(f"{rec.output!r}: fused activation {rec.activation} unsupported")
        elif kind == "ADD":
            opts = tflite.AddOptions()
            table = op.BuiltinOptions()
            if table is not None:
                opts.Init(table.Bytes, table.Pos)
                rec.activation = act_names[opts.FusedActivationFunction()]
            rec.inputs = [name(i) for i in ins]
        elif kind == "RESHAPE":
            rec.inputs = [name(ins[0])]
        elif kind == "CONCATENATION":
            opts = tflite.ConcatenationOptions()
            table = op.BuiltinOptions()
            opts.Init(table.Bytes, table.Pos)
            rec.axis = int(opts.Axis())
            rec.inputs = [name(i) for i in ins]
        ops.append(rec)
    inputs = [(name(int(i)), shape(int(i))) for i in graph.InputsAsNumpy()]
    outputs = [(name(int(i)), shape(int(i))) for i in graph.OutputsAsNumpy()]
    return TfliteGraph(ops=ops, inputs=inputs, outputs=outputs)


__all__ = ["SUPPORTED_OPS", "TfliteGraph", "TfliteImportError", "TfliteOp", "read_tflite"]
