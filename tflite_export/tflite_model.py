"""Reading `.tflite` files: op lists, MACs, and one-op sub-models.

A `.tflite` file is a flatbuffer whose schema ships with `ai-edge-litert`
(`ai_edge_litert.schema_py_generated`). Reading it directly, rather than
through an interpreter, gives what the interpreter hides once XNNPACK has
taken the graph over: the op of every node, the shapes it works on, and the
constant buffers it reads. From those come the MACs of a converted model
(so `tfprune bench` can put a latency ratio next to a MACs ratio for any two
files) and the one-op sub-models that `profile` times to show where the time
goes.
"""

import collections
import dataclasses
import math
import os

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

_TFLITE_IDENTIFIER = b"TFL3"

# BuiltinOperator code -> name, e.g. 3 -> "CONV_2D".
_OP_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items()
    if not name.startswith("_") and isinstance(value, int)
}
_TYPE_NAMES = {
    value: name.lower() for name, value in vars(schema.TensorType).items()
    if not name.startswith("_") and isinstance(value, int)
}
_CONV = ("CONV_2D", "CONV_3D")
_MATMUL = ("FULLY_CONNECTED",)


@dataclasses.dataclass
class TensorInfo:
    """Name, shape, dtype and (for quantized tensors) scale/zero point."""

    name: str
    shape: tuple
    dtype: str
    scale: float = None
    zero_point: int = None

    def as_dict(self):
        quant = None
        if self.scale is not None:
            quant = {"scale": self.scale, "zero_point": self.zero_point}
        return {"name": self.name, "shape": list(self.shape),
                "dtype": self.dtype, "quantization": quant}


@dataclasses.dataclass
class OpInfo:
    """One node of the main subgraph, in execution order."""

    index: int
    op: str
    output_shape: tuple
    macs: int


@dataclasses.dataclass
class ModelInfo:
    """What a `.tflite` file contains, read without running it.

    Attributes:
        ops: `OpInfo` per node of the main subgraph, in execution order.
        inputs: `TensorInfo` per model input.
        outputs: `TensorInfo` per model output.
        macs: multiply-accumulates of convolutions and fully connected
            layers for one call (the same convention as `tfprune.cost`).
        quantization: "none", "float16", "dynamic" or "int8", read from
            the tensor types.
        float_ops: in an "int8" file, the nodes (other than the QUANTIZE and
            DEQUANTIZE that convert between float and int8) that still
            compute in float because the op has no int8 kernel.
    """

    ops: list
    inputs: list
    outputs: list
    macs: int
    quantization: str
    float_ops: list = dataclasses.field(default_factory=list)

    @property
    def op_counts(self):
        """Dict op name -> number of nodes, most frequent first."""
        return dict(collections.Counter(o.op for o in self.ops).most_common())


def _op_name(model, opcode_index):
    code = model.operatorCodes[opcode_index]
    # Codes above 127 live in `builtinCode`; older files only fill the
    # deprecated 8-bit field. The larger of the two is the real one.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        custom = code.customCode
        custom = custom.decode() if isinstance(custom, bytes) else custom
        return f"CUSTOM:{custom}"
    return _OP_NAMES.get(builtin, f"OP_{builtin}")


def _ids(values):
    """Tensor ids of a node or subgraph field (None, list or numpy array)."""
    return [] if values is None else [int(v) for v in values]


def _decode(text):
    return text.decode() if isinstance(text, bytes) else (text or "")


def _tensor_info(tensor):
    scale = zero_point = None
    q = tensor.quantization
    if q is not None and q.scale is not None and len(q.scale) == 1:
        scale = float(q.scale[0])
        zero_point = int(q.zeroPoint[0]) if q.zeroPoint is not None else 0
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    return TensorInfo(_decode(tensor.name), shape,
                      _TYPE_NAMES.get(tensor.type, str(tensor.type)), scale, zero_point)


def _shape(tensor):
    return tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))


def _macs(op, inputs, outputs):
    """MACs of one node, from its tensor shapes (0 for non-MAC ops)."""
    if not outputs or not inputs:
        return 0
    out = _shape(outputs[0])
    if op in _CONV and len(inputs) > 1:
        # Filter [out_channels, (d,) h, w, in_channels / groups].
        return math.prod(out) * math.prod(_shape(inputs[1])[1:])
    if op == "DEPTHWISE_CONV_2D" and len(inputs) > 1:
        kernel = _shape(inputs[1])  # [1, h, w, channels]
        return math.prod(out) * math.prod(kernel[1:3])
    if op in _MATMUL and len(inputs) > 1:
        return math.prod(out) * _shape(inputs[1])[-1]
    if op == "TRANSPOSE_CONV" and len(inputs) > 2:
        kernel = _shape(inputs[1])  # [out_channels, h, w, in_channels]
        return math.prod(_shape(inputs[2])) * math.prod(kernel[:3])
    return 0


def read(content):
    """Parses a `.tflite` flatbuffer into schema objects.

    Args:
        content: the file's bytes.

    Returns:
        An `ai_edge_litert.schema_py_generated.ModelT`.

    Raises:
        ValueError: if `content` is not a TFLite flatbuffer.
    """
    if len(content) < 8 or bytes(content[4:8]) != _TFLITE_IDENTIFIER:
        raise ValueError("not a TFLite model (the file has no 'TFL3' "
                         "identifier)")
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))


def model_info(content):
    """Ops, inputs, outputs, MACs and quantization of a `.tflite` model.

    Args:
        content: the file's bytes, or its path.

    Returns:
        A `ModelInfo`.

    Example:

    ```python
    from tflite_export import convert, model_info
    convert(model, "model.tflite")
    info = model_info("model.tflite")  # a path, or the file's bytes
    print(info.macs, info.op_counts)
    ```
    """
    if isinstance(content, (str, os.PathLike)):
        with open(content, "rb") as f:
            content = f.read()
    model = read(content)
    graph = model.subgraphs[0]
    tensors = graph.tensors or []
    ops = []
    for i, node in enumerate(graph.operators or []):
        name = _op_name(model, node.opcodeIndex)
        ins = [tensors[t] for t in _ids(node.inputs) if t >= 0]
        outs = [tensors[t] for t in _ids(node.outputs) if t >= 0]
        ops.append(OpInfo(i, name, _shape(outs[0]) if outs else (),
                          int(_macs(name, ins, outs))))
    inputs = [_tensor_info(tensors[t]) for t in _ids(graph.inputs)]
    outputs = [_tensor_info(tensors[t]) for t in _ids(graph.outputs)]
    kind = _quantization_kind(model, graph)
    float_ops = []
    if kind == "int8":
        float_types = (schema.TensorType.FLOAT32, schema.TensorType.FLOAT16)
        for op, node in zip(ops, graph.operators or []):
            if op.op in ("QUANTIZE", "DEQUANTIZE"):
                continue
            if any(tensors[t].type in float_types and not _is_constant(model, t)
                   for t in _ids(node.inputs) if t >= 0):
                float_ops.append(op)
    return ModelInfo(ops, inputs, outputs, sum(o.macs for o in ops), kind, float_ops)


def _is_constant(model, t):
    """Whether tensor `t` of the main subgraph holds data in the file."""
    b = model.subgraphs[0].tensors[t].buffer
    buffers = model.buffers or []
    return 0 < b < len(buffers) and buffers[b].data is not None and len(buffers[b].data) > 0


def _quantization_kind(model, graph):
    """"int8" if convolutions read int8 activations, else the weights' type."""
    tensors = graph.tensors or []
    act_types, weight_types = set(), set()
    for node in graph.operators or []:
        name = _op_name(model, node.opcodeIndex)
        if name not in _CONV + _MATMUL + ("DEPTHWISE_CONV_2D", "DEQUANTIZE"):
            continue
        for k, t in enumerate(_ids(node.inputs)):
            if t < 0:
                continue
            if name == "DEQUANTIZE":
                if _is_constant(model, t):
                    weight_types.add(tensors[t].type)
            elif k == 0:
                act_types.add(tensors[t].type)
            elif k == 1 and _is_constant(model, t):
                weight_types.add(tensors[t].type)
    T = schema.TensorType
    if act_types & {T.INT8, T.UINT8, T.INT16}:
        return "int8"
    if T.FLOAT16 in weight_types:
        return "float16"
    if weight_types & {T.INT8, T.UINT8}:
        return "dynamic"
    return "none"


def single_op_models(content):
    """One small model per node, for timing nodes one at a time.

    Node `i`'s model holds that node, plus the nodes that only turn
    constants into its inputs (the DEQUANTIZE of float16 weights), so that
    XNNPACK sees the same static weights it sees in the whole model. Every
    other input becomes a model input; the node's outputs are the outputs.

    Args:
        content: bytes of a `.tflite` model.

    Yields:
        (`OpInfo`, bytes of the one-node model), in execution order. Nodes
        that only compute constants are folded into their consumer and not
        yielded on their own.
    """
    model = read(content)
    graph = model.subgraphs[0]
    producer = {}
    for i, node in enumerate(graph.operators or []):
        for t in _ids(node.outputs):
            producer[t] = i
    # Nodes whose inputs are all constants (or outputs of such nodes).
    const_nodes = set()
    for i, node in enumerate(graph.operators or []):
        ins = [t for t in _ids(node.inputs) if t >= 0]
        if ins and all(_is_constant(model, t) or producer.get(t) in const_nodes
                       for t in ins):
            const_nodes.add(i)

    info = model_info(content)
    for i, node in enumerate(graph.operators or []):
        if i in const_nodes:
            continue
        # The node and the constant-only nodes feeding it, in graph order.
        keep, stack = {i}, [i]
        while stack:
            for t in _ids(graph.operators[stack.pop()].inputs):
                p = producer.get(t)
                if t >= 0 and p in const_nodes and p not in keep:
                    keep.add(p)
                    stack.append(p)
        yield info.ops[i], _submodel(model, sorted(keep))


def _submodel(model, node_ids):
    """Bytes of a model made of the nodes `node_ids` of `model`."""
    graph = model.subgraphs[0]
    nodes = [graph.operators[i] for i in node_ids]
    produced = {t for n in nodes for t in _ids(n.outputs)}
    used = []
    for n in nodes:
        for t in _ids(n.inputs) + _ids(n.outputs):
            if t >= 0 and t not in used:
                used.append(t)
    tensor_map, buffer_map = {}, {0: 0}
    new_tensors, new_buffers = [], [schema.BufferT()]  # buffer 0 is the empty sentinel
    for t in used:
        tensor = _copy_tensor(graph.tensors[t])
        if tensor.buffer:
            if tensor.buffer not in buffer_map:
                buffer_map[tensor.buffer] = len(new_buffers)
                new_buffers.append(model.buffers[tensor.buffer])
            tensor.buffer = buffer_map[tensor.buffer]
        tensor_map[t] = len(new_tensors)
        new_tensors.append(tensor)
    # Whatever the kept nodes read but neither compute nor hold becomes an
    # input of the small model.
    inputs = [tensor_map[t] for t in used
              if t not in produced and not _is_constant(model, t)]
    last = nodes[-1]
    outputs = [tensor_map[t] for t in _ids(last.outputs) if t >= 0]
    new_nodes = []
    for n in nodes:
        copy = schema.OperatorT()
        copy.__dict__.update(n.__dict__)
        copy.inputs = [tensor_map[t] if t >= 0 else -1 for t in _ids(n.inputs)]
        copy.outputs = [tensor_map[t] for t in _ids(n.outputs)]
        copy.intermediates = None
        new_nodes.append(copy)
    sub = schema.SubGraphT(tensors=new_tensors, inputs=inputs, outputs=outputs,
                           operators=new_nodes, name="node")
    small = schema.ModelT(version=model.version, operatorCodes=model.operatorCodes,
                          subgraphs=[sub], description="one node", buffers=new_buffers)
    builder = flatbuffers.Builder(1024)
    builder.Finish(small.Pack(builder), file_identifier=_TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _copy_tensor(tensor):
    copy = schema.TensorT()
    copy.__dict__.update(tensor.__dict__)
    return copy
