"""Single-operator ONNX models for the converter tests, with the unusual attributes exporters
rarely emit but the ONNX specification allows (asymmetric and SAME_LOWER padding, dilations,
grouped convolutions, ceil_mode, count_include_pad, transposed Gemm operands, negative slice
steps, opset-specific Softmax semantics ...), plus broken models for the error tests.

    make_op_models.py --out DIR     writes DIR/<case>.onnx and DIR/cases.json
    make_op_models.py --list        prints the case names, one per line (for CMake)

Every case is built from onnx.helper with weights drawn from a generator seeded by the case
name, so the files are the same on every run. cases.json records each case's inputs (name and
shape) so the C++ test can feed ONNX Runtime and TFLite the same random tensors; "positive"
inputs must be fed values > 0 (the test draws them from [0.5, 2]).
"""

import argparse
import json
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CASES = {}


def case(name, opset=13):
    def register(build):
        CASES[name] = (build, opset)
        return build
    return register


class Builder:
    """Collects nodes, initializers and inputs for one single-graph model."""

    def __init__(self, name):
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.nodes, self.inits, self.inputs, self.input_specs = [], [], [], []
        self.counter = 0
        self.output_shape = None  # declared when shape inference cannot work it out

    def input(self, name, shape, positive=False):
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        self.input_specs.append({"name": name, "shape": shape, "positive": positive})
        return name

    def const(self, array, name=None):
        self.counter += 1
        name = name or f"c{self.counter}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, *shape, scale=0.5):
        return self.const(self.rng.uniform(-scale, scale, size=shape).astype(np.float32))

    def ints(self, values):
        return self.const(np.asarray(values, dtype=np.int64))

    def node(self, op, inputs, outputs=1, **attrs):
        self.counter += 1
        names = [f"t{self.counter}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=f"{op.lower()}_{self.counter}", **attrs))
        return names[0] if outputs == 1 else names

    def model(self, outputs, opset):
        outputs = outputs if isinstance(outputs, list) else [outputs]
        graph = helper.make_graph(self.nodes, "case", self.inputs,
                                  [helper.make_tensor_value_info(o, TensorProto.FLOAT, self.output_shape)
                                   for o in outputs],
                                  initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="dermcds-tests")
        model.ir_version = 8
        model = onnx.shape_inference.infer_shapes(model)
        onnx.checker.check_model(model)
        return model


def conv(b, x, cin, cout, k, group=1, bias=True, **attrs):
    kh, kw = (k, k) if isinstance(k, int) else k
    inputs = [x, b.weight(cout, cin // group, kh, kw)]
    if bias:
        inputs.append(b.weight(cout))
    return b.node("Conv", inputs, group=group, **attrs)


# ---- Conv ----

@case("conv_basic")
def _(b):
    return conv(b, b.input("x", [1, 3, 17, 19]), 3, 8, 3, pads=[1, 1, 1, 1])


@case("conv_stride_asymmetric_pads")
def _(b):
    return conv(b, b.input("x", [1, 3, 16, 15]), 3, 6, 3, strides=[2, 1], pads=[0, 1, 2, 0])


@case("conv_same_upper_even_kernel")
def _(b):
    return conv(b, b.input("x", [1, 4, 15, 16]), 4, 5, (4, 3), strides=[2, 2], auto_pad="SAME_UPPER")


@case("conv_same_lower")
def _(b):
    return conv(b, b.input("x", [1, 4, 15, 16]), 4, 5, 4, strides=[2, 2], auto_pad="SAME_LOWER")


@case("conv_valid_stride3")
def _(b):
    return conv(b, b.input("x", [1, 2, 20, 17]), 2, 4, 3, strides=[3, 3], auto_pad="VALID")


@case("conv_tf_same_equivalent_pads")
def _(b):
    # stride 2, kernel 3 on 16: the only padding is one row/column at the end, TFLite's SAME.
    return conv(b, b.input("x", [1, 3, 16, 16]), 3, 4, 3, strides=[2, 2], pads=[0, 0, 1, 1])


@case("conv_dilated")
def _(b):
    return conv(b, b.input("x", [1, 3, 18, 18]), 3, 4, 3, dilations=[2, 3], pads=[2, 3, 2, 3])


@case("conv_no_bias_1x1")
def _(b):
    return conv(b, b.input("x", [1, 16, 7, 7]), 16, 12, 1, bias=False)


@case("conv_depthwise")
def _(b):
    return conv(b, b.input("x", [1, 8, 14, 14]), 8, 8, 3, group=8, strides=[2, 2], pads=[1, 1, 1, 1])


@case("conv_depthwise_multiplier_dilated")
def _(b):
    return conv(b, b.input("x", [1, 4, 12, 12]), 4, 8, 3, group=4, dilations=[2, 2], pads=[2, 2, 2, 2])


@case("conv_grouped")
def _(b):
    return conv(b, b.input("x", [1, 8, 9, 9]), 8, 6, 3, group=2, pads=[1, 0, 1, 0])


@case("conv_batchnorm_folded")
def _(b):
    y = conv(b, b.input("x", [1, 3, 10, 10]), 3, 6, 3, pads=[1, 1, 1, 1])
    scale, shift = b.weight(6), b.weight(6)
    mean = b.weight(6)
    var = b.const(b.rng.uniform(0.5, 2.0, size=6).astype(np.float32))
    return b.node("BatchNormalization", [y, scale, shift, mean, var], epsilon=1e-3)


@case("batchnorm_standalone")
def _(b):
    x = b.input("x", [1, 5, 6, 7])
    var = b.const(b.rng.uniform(0.5, 2.0, size=5).astype(np.float32))
    return b.node("BatchNormalization", [x, b.weight(5), b.weight(5), b.weight(5), var])


# ---- Pooling ----

@case("maxpool_resnet_stem")
def _(b):
    return b.node("MaxPool", [b.input("x", [1, 4, 16, 16])], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


@case("maxpool_ceil_mode_drops_window_in_padding")
def _(b):
    # in 5, kernel 2, stride 2, pads 1: ceil gives 4 windows, the last would start in padding.
    return b.node("MaxPool", [b.input("x", [1, 3, 5, 7])], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                  ceil_mode=1)


@case("maxpool_ceil_mode")
def _(b):
    return b.node("MaxPool", [b.input("x", [1, 3, 10, 9])], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)


@case("maxpool_dilated")
def _(b):
    return b.node("MaxPool", [b.input("x", [1, 2, 11, 10])], kernel_shape=[2, 3], dilations=[2, 2], strides=[1, 2],
                  pads=[1, 1, 0, 1])


@case("maxpool_same_lower")
def _(b):
    return b.node("MaxPool", [b.input("x", [1, 3, 9, 8])], kernel_shape=[4, 4], strides=[2, 2], auto_pad="SAME_LOWER")


@case("avgpool_valid")
def _(b):
    return b.node("AveragePool", [b.input("x", [1, 3, 8, 8])], kernel_shape=[2, 2], strides=[2, 2])


@case("avgpool_same_pads_excluded")
def _(b):
    return b.node("AveragePool", [b.input("x", [1, 3, 7, 7])], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])


@case("avgpool_pads_included")
def _(b):
    return b.node("AveragePool", [b.input("x", [1, 3, 7, 7])], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                  count_include_pad=1)


@case("avgpool_asymmetric_pads_excluded")
def _(b):
    return b.node("AveragePool", [b.input("x", [1, 2, 8, 9])], kernel_shape=[3, 2], strides=[2, 2], pads=[0, 1, 2, 0])


@case("avgpool_ceil_mode")
def _(b):
    return b.node("AveragePool", [b.input("x", [1, 2, 8, 8])], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)


@case("avgpool_ceil_mode_pads_included")
def _(b):
    return b.node("AveragePool", [b.input("x", [1, 2, 8, 9])], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                  ceil_mode=1, count_include_pad=1)


@case("avgpool_ceil_mode_drops_window_in_padding")
def _(b):
    return b.node("AveragePool", [b.input("x", [1, 2, 5, 7])], kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                  ceil_mode=1, count_include_pad=1)


@case("global_average_pool")
def _(b):
    return b.node("GlobalAveragePool", [b.input("x", [1, 6, 5, 7])])


@case("global_max_pool")
def _(b):
    return b.node("GlobalMaxPool", [b.input("x", [1, 6, 5, 7])])


# ---- Gemm / MatMul ----

@case("gemm_transb_bias")
def _(b):
    return b.node("Gemm", [b.input("x", [2, 16]), b.weight(5, 16), b.weight(5)], transB=1)


@case("gemm_alpha_beta_row_bias")
def _(b):
    return b.node("Gemm", [b.input("x", [3, 8]), b.weight(8, 4), b.weight(1, 4)], alpha=0.5, beta=2.0)


@case("gemm_transa_full_c")
def _(b):
    return b.node("Gemm", [b.input("x", [8, 3]), b.weight(8, 4), b.weight(3, 4)], transA=1, beta=-1.5)


@case("gemm_two_inputs")
def _(b):
    return b.node("Gemm", [b.input("a", [3, 6]), b.input("b", [4, 6]), b.weight(4)], transB=1, alpha=2.0)


@case("matmul_constant_3d")
def _(b):
    return b.node("MatMul", [b.input("x", [2, 3, 16]), b.weight(16, 5)])


@case("matmul_batched_inputs")
def _(b):
    return b.node("MatMul", [b.input("a", [2, 3, 4]), b.input("b", [2, 4, 5])])


# ---- Element-wise ----

@case("add_channel_broadcast")
def _(b):
    return b.node("Add", [b.input("x", [1, 8, 5, 5]), b.weight(8, 1, 1)])


@case("sub_constant_minus_input")
def _(b):
    return b.node("Sub", [b.weight(1, 8, 1, 1), b.input("x", [1, 8, 5, 5])])


@case("mul_scalar")
def _(b):
    return b.node("Mul", [b.input("x", [1, 4, 3, 3]), b.const(np.float32(-1.75))])


@case("div_constant")
def _(b):
    return b.node("Div", [b.input("x", [1, 8, 4, 4]),
                          b.const(b.rng.uniform(0.5, 2, size=(8, 1, 1)).astype(np.float32))])


@case("div_two_inputs")
def _(b):
    return b.node("Div", [b.input("x", [1, 3, 4, 4]), b.input("y", [1, 3, 4, 4], positive=True)])


@case("add_rank_mismatch_activation")
def _(b):
    # y [5] broadcasts along W of x [1,8,5,5], which the converter keeps channels-last.
    x = conv(b, b.input("x", [1, 3, 5, 5]), 3, 8, 1)
    return b.node("Add", [x, b.input("y", [5])])


@case("max_min_binary")
def _(b):
    m = b.node("Max", [b.input("x", [1, 3, 4, 4]), b.weight(3, 1, 1)])
    return b.node("Min", [m, b.input("y", [1, 3, 4, 4])])


@case("relu")
def _(b):
    return b.node("Relu", [b.input("x", [1, 3, 4, 5])])


@case("sigmoid_tanh")
def _(b):
    return b.node("Tanh", [b.node("Sigmoid", [b.input("x", [1, 3, 4, 5])])])


@case("leaky_relu")
def _(b):
    return b.node("LeakyRelu", [b.input("x", [1, 3, 4, 5])], alpha=0.3)


@case("hard_swish", opset=14)
def _(b):
    return b.node("HardSwish", [b.input("x", [1, 3, 4, 5])])


@case("hard_swish_decomposed")
def _(b):
    x = b.input("x", [1, 3, 4, 5])
    return b.node("Mul", [x, b.node("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5)])


@case("hard_sigmoid_default")
def _(b):
    return b.node("HardSigmoid", [b.input("x", [1, 3, 4, 5])])


@case("hard_sigmoid_custom")
def _(b):
    return b.node("HardSigmoid", [b.input("x", [1, 3, 4, 5])], alpha=0.35, beta=0.45)


@case("silu")
def _(b):
    x = b.input("x", [1, 3, 4, 5])
    return b.node("Mul", [x, b.node("Sigmoid", [x])])


@case("exp_sqrt")
def _(b):
    return b.node("Sqrt", [b.node("Exp", [b.input("x", [1, 3, 4, 5])])])


@case("pow_square")
def _(b):
    return b.node("Pow", [b.input("x", [1, 3, 4, 5]), b.const(np.float32(2.0))])


@case("clip_relu6", opset=11)
def _(b):
    return b.node("Clip", [b.input("x", [1, 3, 4, 5]), b.const(np.float32(0)), b.const(np.float32(6))])


@case("clip_min_only")
def _(b):
    return b.node("Clip", [b.input("x", [1, 3, 4, 5]), b.const(np.float32(-0.25))])


@case("clip_max_only")
def _(b):
    return b.node("Clip", [b.input("x", [1, 3, 4, 5]), "", b.const(np.float32(0.4))])


@case("clip_arbitrary")
def _(b):
    return b.node("Clip", [b.input("x", [1, 3, 4, 5]), b.const(np.float32(-0.5)), b.const(np.float32(0.7))])


@case("dropout_identity", opset=12)
def _(b):
    return b.node("Relu", [b.node("Identity", [b.node("Dropout", [b.input("x", [1, 3, 4, 5]),
                                                                  b.const(np.float32(0.3))])])])


# ---- Layout and shape ----

@case("flatten_axis2")
def _(b):
    return b.node("Flatten", [b.input("x", [1, 4, 3, 5])], axis=2)


@case("conv_then_flatten")
def _(b):
    return b.node("Flatten", [conv(b, b.input("x", [1, 3, 6, 5]), 3, 4, 3)])


@case("reshape_zero_and_minus_one")
def _(b):
    return b.node("Reshape", [b.input("x", [1, 6, 4, 5]), b.ints([0, 3, -1, 5])])


@case("reshape_from_shape_arithmetic")
def _(b):
    # torch's x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    x = conv(b, b.input("x", [1, 3, 4, 4]), 3, 2, 1)
    size0 = b.node("Gather", [b.node("Shape", [x]), b.const(np.int64(0))], axis=0)
    shape = b.node("Concat", [b.node("Unsqueeze", [size0, b.ints([0])]), b.ints([-1])], axis=0)
    b.output_shape = [1, 32]
    return b.node("Reshape", [x, shape])


@case("squeeze_unsqueeze")
def _(b):
    x = b.node("GlobalAveragePool", [conv(b, b.input("x", [1, 3, 5, 5]), 3, 6, 3)])
    s = b.node("Squeeze", [x, b.ints([2, 3])])
    return b.node("Unsqueeze", [s, b.ints([1])])


@case("squeeze_unsqueeze_attributes", opset=11)
def _(b):
    x = b.node("GlobalAveragePool", [b.input("x", [1, 6, 3, 3])])
    return b.node("Unsqueeze", [b.node("Squeeze", [x], axes=[3, 2])], axes=[0])


@case("transpose_then_conv")
def _(b):
    t = b.node("Transpose", [b.input("x", [1, 3, 7, 5])], perm=[0, 1, 3, 2])
    return conv(b, t, 3, 4, 3, pads=[1, 0, 1, 0])


@case("transpose_to_output")
def _(b):
    return b.node("Transpose", [conv(b, b.input("x", [1, 3, 5, 6]), 3, 4, 1)], perm=[0, 3, 1, 2])


@case("concat_channels")
def _(b):
    x = b.input("x", [1, 3, 6, 6])
    return b.node("Concat", [conv(b, x, 3, 4, 3, pads=[1, 1, 1, 1]), conv(b, x, 3, 2, 1), x], axis=1)


@case("concat_with_constant_negative_axis")
def _(b):
    return b.node("Concat", [b.input("x", [1, 3, 4, 5]), b.weight(1, 3, 4, 2)], axis=-1)


@case("split_equal")
def _(b):
    parts = b.node("Split", [conv(b, b.input("x", [1, 3, 4, 4]), 3, 6, 1)], outputs=3, axis=1)
    return b.node("Add", [b.node("Mul", [parts[0], parts[1]]), parts[2]])


@case("split_uneven")
def _(b):
    parts = b.node("Split", [b.input("x", [1, 7, 4, 4]), b.ints([2, 5])], outputs=2, axis=1)
    return b.node("Concat", [parts[1], parts[0]], axis=1)


@case("slice_steps")
def _(b):
    x = b.input("x", [1, 6, 9, 8])
    return b.node("Slice", [x, b.ints([1, 8, -2]), b.ints([5, 0, -100]), b.ints([1, 2, -1]), b.ints([2, -2, -1])])


@case("pad_constant_value", opset=11)
def _(b):
    return b.node("Pad", [b.input("x", [1, 3, 4, 5]), b.ints([0, 1, 2, 0, 0, 0, 1, 3]), b.const(np.float32(0.75))])


@case("pad_reflect")
def _(b):
    return b.node("Pad", [b.input("x", [1, 3, 4, 5]), b.ints([0, 0, 1, 2, 0, 0, 2, 1])], mode="reflect")


# ---- Reductions and softmax ----

@case("reduce_mean_spatial")
def _(b):
    return b.node("ReduceMean", [conv(b, b.input("x", [1, 3, 6, 6]), 3, 5, 3)], axes=[2, 3], keepdims=1)


@case("reduce_mean_channel_no_keepdims")
def _(b):
    return b.node("ReduceMean", [conv(b, b.input("x", [1, 3, 6, 5]), 3, 5, 3)], axes=[1], keepdims=0)


@case("reduce_sum_axes_input")
def _(b):
    return b.node("ReduceSum", [b.input("x", [2, 3, 4]), b.ints([-1, 0])], keepdims=0)


@case("reduce_max")
def _(b):
    return b.node("ReduceMax", [b.input("x", [1, 4, 3, 5])], axes=[1, 3])


@case("softmax_channel_4d")
def _(b):
    return b.node("Softmax", [conv(b, b.input("x", [1, 3, 4, 4]), 3, 6, 1)], axis=1)


@case("softmax_2d")
def _(b):
    return b.node("Softmax", [b.input("x", [3, 10])])


@case("log_softmax")
def _(b):
    return b.node("LogSoftmax", [b.input("x", [2, 7])], axis=-1)


@case("softmax_opset11_flattens_from_axis", opset=11)
def _(b):
    return b.node("Softmax", [b.input("x", [2, 3, 4])], axis=1)


# ---- Grouped convolutions and the modern families (issue 15) ----

@case("max_pool_after_relu_pads_with_zeros")
def _(b):
    # ResNet's stem: the padding of a max pool over a ReLU output may be zeros (a PAD XNNPACK takes).
    y = b.node("Relu", [conv(b, b.input("x", [1, 3, 12, 12]), 3, 4, 3, pads=[1, 1, 1, 1])])
    return b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


@case("conv_grouped_relu")
def _(b):
    # ReLU after a grouped convolution: TFLite 2.9's CONCATENATION refuses a fused activation.
    return b.node("Relu", [conv(b, b.input("x", [1, 16, 9, 9]), 16, 8, 3, group=4, pads=[1, 1, 1, 1])])


@case("conv_grouped_32_then_add")
def _(b):
    x = b.input("x", [1, 64, 6, 6])
    return b.node("Add", [conv(b, x, 64, 64, 3, group=32, pads=[1, 1, 1, 1]), x])


def gelu(b, x):
    erf = b.node("Erf", [b.node("Div", [x, b.const(np.float32(np.sqrt(2.0)))])])
    return b.node("Mul", [b.node("Mul", [x, b.node("Add", [erf, b.const(np.float32(1.0))])]), b.const(np.float32(0.5))])


@case("gelu_erf_form")
def _(b):
    return gelu(b, b.input("x", [2, 5, 16]))


@case("layer_norm_opset17", opset=17)
def _(b):
    return b.node("LayerNormalization", [b.input("x", [1, 5, 16]), b.weight(16), b.weight(16)], epsilon=1e-6)


@case("layer_norm_channels_of_image", opset=17)
def _(b):
    # ConvNeXt: permute NCHW -> NHWC, normalize over channels, permute back.
    x = b.node("Transpose", [conv(b, b.input("x", [1, 3, 8, 8]), 3, 12, 3)], perm=[0, 2, 3, 1])
    y = b.node("LayerNormalization", [x, b.weight(12), b.weight(12)], axis=-1)
    return b.node("Transpose", [y], perm=[0, 3, 1, 2])


@case("layer_norm_decomposed")
def _(b):
    x = b.input("x", [1, 7, 16])
    mean = b.node("ReduceMean", [x], axes=[-1])
    centred = b.node("Sub", [x, mean])
    var = b.node("ReduceMean", [b.node("Pow", [centred, b.const(np.float32(2.0))])], axes=[-1])
    y = b.node("Div", [centred, b.node("Sqrt", [b.node("Add", [var, b.const(np.float32(1e-5))])])])
    return b.node("Add", [b.node("Mul", [y, b.weight(16)]), b.weight(16)])


# ---- A small network: every layout decision in sequence ----

@case("swish_se_block", opset=13)
def _(b):
    # EfficientNet's block: swish convolutions, a depthwise one, squeeze-and-excitation with a
    # Sigmoid gate, the projection and the residual Add (the ONNX int8 path quantizes the Sigmoids).
    x = b.input("image", [1, 8, 16, 16])

    def swish(t):
        return b.node("Mul", [t, b.node("Sigmoid", [t])])

    y = swish(conv(b, x, 8, 16, 1))
    y = swish(conv(b, y, 16, 16, 3, group=16, pads=[1, 1, 1, 1]))
    se = b.node("GlobalAveragePool", [y])
    se = b.node("Sigmoid", [conv(b, swish(conv(b, se, 16, 4, 1)), 4, 16, 1)])
    return b.node("Add", [conv(b, b.node("Mul", [y, se]), 16, 8, 1), x])


@case("small_network", opset=14)
def _(b):
    x = b.input("image", [1, 3, 32, 32])
    y = b.node("Relu", [conv(b, x, 3, 8, 3, strides=[2, 2], pads=[1, 1, 1, 1])])
    y = b.node("Clip", [conv(b, y, 8, 8, 3, group=8, pads=[1, 1, 1, 1]), b.const(np.float32(0)),
                        b.const(np.float32(6))])
    se = b.node("GlobalAveragePool", [y])
    se = b.node("HardSigmoid", [conv(b, b.node("Relu", [conv(b, se, 8, 4, 1)]), 4, 8, 1)], alpha=1.0 / 6, beta=0.5)
    y = b.node("Mul", [y, se])
    y = b.node("Add", [conv(b, y, 8, 8, 1), y])
    y = b.node("Flatten", [b.node("GlobalAveragePool", [b.node("HardSwish", [y])])])
    return b.node("Gemm", [y, b.weight(8, 8), b.weight(8)], transB=1)


# ---- Broken or unsupported models (not in cases.json; the error tests name them) ----

def write_error_models(out):
    b = Builder("unsupported_op")
    x = b.input("x", [1, 3, 4, 4])
    model = b.model(b.node("Erf", [conv(b, x, 3, 3, 1)]), 13)
    model.graph.node[1].name = "the_erf_node"
    onnx.save(model, os.path.join(out, "error_unsupported_op.onnx"))

    b = Builder("unsupported_attribute")
    model = b.model(b.node("Pad", [b.input("x", [1, 3, 4, 4]), b.ints([0, 0, 1, 1, 0, 0, 1, 1])], mode="edge"), 13)
    onnx.save(model, os.path.join(out, "error_unsupported_attribute.onnx"))

    b = Builder("maxpool_indices")
    values, indices = b.node("MaxPool", [b.input("x", [1, 3, 4, 4])], outputs=2, kernel_shape=[2, 2])
    model = b.model([values, b.node("Cast", [indices], to=TensorProto.FLOAT)], 13)
    onnx.save(model, os.path.join(out, "error_maxpool_indices.onnx"))

    b = Builder("conv1d")
    model = b.model(b.node("Conv", [b.input("x", [1, 3, 10]), b.weight(4, 3, 3)]), 13)
    onnx.save(model, os.path.join(out, "error_conv1d.onnx"))

    # Inputs that crash ONNX 1.12's own shape inference (SIGFPE) or that it would infer where
    # our checks cannot see; built without infer_shapes, which would crash this script too.
    b = Builder("zero_stride")
    conv_node = helper.make_node("Conv", [b.input("x", [1, 3, 8, 8]), b.weight(4, 3, 3, 3)], ["y"],
                                 name="the_conv", pads=[1, 1, 1, 1], strides=[0, 2])
    graph = helper.make_graph([conv_node], "g", b.inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=b.inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              os.path.join(out, "error_zero_stride.onnx"))

    def branch(name, op):
        return helper.make_graph([helper.make_node(op, ["x"], [name])], name, [],
                                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)])
    if_node = helper.make_node("If", ["flag"], ["y"], name="the_if",
                               then_branch=branch("then_y", "Relu"), else_branch=branch("else_y", "Sigmoid"))
    graph = helper.make_graph([if_node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
                               helper.make_tensor_value_info("flag", TensorProto.BOOL, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              os.path.join(out, "error_control_flow.onnx"))

    b = Builder("dynamic_height")
    x = b.input("x", [1, 3, "height", 8])
    graph = helper.make_graph([helper.make_node("Relu", [x], ["y"], name="relu")], "g", b.inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              os.path.join(out, "error_dynamic_height.onnx"))

    b = Builder("old_opset")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)]),
              os.path.join(out, "error_opset9.onnx"))

    b = Builder("external_data")
    model = b.model(conv(b, b.input("x", [1, 3, 8, 8]), 3, 16, 3), 13)
    onnx.save(model, os.path.join(out, "error_external_data.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="error_external_data.weights", size_threshold=0)

    # TFLite 2.9's TRANSPOSE takes at most 5 dimensions: the converter writes this model, and its
    # check after writing must refuse it, naming the operator.
    b = Builder("tflite_refuses")
    x = b.node("Transpose", [b.input("x", [1, 2, 3, 2, 2, 2])], perm=[0, 2, 1, 3, 5, 4])
    model = b.model(b.node("Reshape", [x, b.ints([1, 48])]), 13)
    onnx.save(model, os.path.join(out, "error_tflite_refuses.onnx"))

    # An attribute no lowering reads (Squeeze has only axes before opset 13).
    b = Builder("unknown_attribute")
    model = b.model(b.node("Squeeze", [b.input("x", [1, 3, 1, 4])], axes=[2]), 11)
    model.graph.node[0].attribute.append(helper.make_attribute("keep_names", 1))
    onnx.save(model, os.path.join(out, "error_unknown_attribute.onnx"))

    # A valid model, cut in half, and random bytes.
    b = Builder("truncated")
    complete = b.model(conv(b, b.input("x", [1, 3, 8, 8]), 3, 16, 3), 13).SerializeToString()
    with open(os.path.join(out, "error_truncated.onnx"), "wb") as f:
        f.write(complete[: len(complete) // 2])
    with open(os.path.join(out, "error_garbage.onnx"), "wb") as f:
        f.write(np.random.default_rng(7).integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    with open(os.path.join(out, "valid_conv.onnx"), "wb") as f:
        f.write(complete)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="directory to write the models into")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if not args.out:
        parser.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    index = {}
    for name, (build, opset) in CASES.items():
        b = Builder(name)
        model = b.model(build(b), opset)
        temporary = os.path.join(args.out, f".{name}.onnx.tmp")
        onnx.save(model, temporary)
        os.replace(temporary, os.path.join(args.out, f"{name}.onnx"))
        index[name] = {"file": f"{name}.onnx", "opset": opset, "inputs": b.input_specs}
    write_error_models(args.out)
    with open(os.path.join(args.out, "cases.json.tmp"), "w") as f:
        json.dump(index, f, indent=1)
    os.replace(os.path.join(args.out, "cases.json.tmp"), os.path.join(args.out, "cases.json"))
    print(f"wrote {len(index)} cases and the error models to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
