"""Test fixture: the converter's zoo, torchvision classifiers of every family a dermatology team
trains, exported to ONNX at opsets 17 and 13 (converter_zoo_tests, docs/converter.md).

Small variants and small inputs keep the fixture and the test within seconds per network: each
is built from torchvision's own code (the same modules, blocks and export path as the full-size
network), with fewer stages or channels where torchvision's constructors allow it. Weights are
seeded; batch-norm statistics are estimated on noise images drawn as the test draws its inputs
(with default statistics random networks let activations explode or vanish), and the
classifier head is rescaled so its logits spread over a few units across noise images (a random
head answers ~1/8 for every class and input, and a conversion error would not show).

Files are cached by content: a network is exported again only when this file, torch or
torchvision change (the stamp beside each file holds the key).
"""

import argparse
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CLASSES = 8
LOGIT_SPREAD = 2.0  # robust standard deviation of the logits across noise images


# name -> input side (64: the smallest every family's strides and windows allow at full depth).
NETWORKS = {
    "resnet18": 64, "resnext_32x4d_small": 64, "regnet_x_400mf": 64, "regnet_y_400mf": 64, "densenet121": 64,
    "mobilenet_v3_small": 64, "efficientnet_v2_s": 64, "squeezenet1_1": 64,
    "shufflenet_v2_x0_5": 64, "mnasnet0_5": 64, "googlenet": 64, "convnext_small_blocks": 64, "vit_small_blocks": 64,
}
# EfficientNet-B0 is tested at 224 by converter_classifier_tests; at 64x64 with random weights its
# answer does not depend on the input (one class at probability 1 for every noise image).
# Swin (swin_transformer.SwinTransformer) is not in the zoo yet: torch.onnx writes its window
# masks and relative-position tables with Cast/ScatterND/Range chains the converter does not fold.


def networks():
    """name -> (constructor, input side)."""
    import torch  # noqa: F401  (imported by the constructors' modules)
    import torchvision.models as tv
    from torchvision.models import convnext, resnet, vision_transformer

    def small_resnext():
        # resnext50_32x4d's block (Bottleneck, 32 groups of width 4) in a 1-1-1-1 stage layout.
        return resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], groups=32, width_per_group=4, num_classes=CLASSES)

    def small_convnext():
        settings = [convnext.CNBlockConfig(32, 64, 1), convnext.CNBlockConfig(64, None, 1)]
        return convnext.ConvNeXt(settings, stochastic_depth_prob=0.0, num_classes=CLASSES)

    def small_vit():
        return vision_transformer.VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=4,
                                                    hidden_dim=64, mlp_dim=128, num_classes=CLASSES)

    def plain(name, **kwargs):
        return lambda: getattr(tv, name)(num_classes=CLASSES, **kwargs)

    table = {
        "resnet18": (plain("resnet18"), 64),
        "resnext_32x4d_small": (small_resnext, 64),
        "regnet_x_400mf": (plain("regnet_x_400mf"), 64),
        "regnet_y_400mf": (plain("regnet_y_400mf"), 64),
        "densenet121": (plain("densenet121"), 64),
        "mobilenet_v3_small": (plain("mobilenet_v3_small"), 64),
        "efficientnet_v2_s": (plain("efficientnet_v2_s"), 64),
        "squeezenet1_1": (plain("squeezenet1_1"), 64),
        "shufflenet_v2_x0_5": (plain("shufflenet_v2_x0_5"), 64),
        "mnasnet0_5": (plain("mnasnet0_5"), 64),
        "googlenet": (plain("googlenet", aux_logits=False, init_weights=True), 64),
        "convnext_small_blocks": (small_convnext, 64),
        "vit_small_blocks": (small_vit, 64),
    }
    assert [(name, side) for name, (_, side) in table.items()] == list(NETWORKS.items())
    return table


OPSETS = (17, 13)


def build(constructor, side):
    import torch

    torch.manual_seed(0)
    model = constructor()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None  # a plain average over the batches below
    generator = torch.Generator().manual_seed(1)
    # Uniform on [-2, 2], the distribution the test draws its inputs from (classifier_inputs's
    # random_tensor): statistics estimated on other noise let some networks (EfficientNet-V2)
    # saturate on the test's inputs.
    noise = torch.rand(16, 3, side, side, generator=generator) * 4.0 - 2.0
    with torch.no_grad():
        if norms:
            model.train()
            for i in range(0, 16, 4):
                model(noise[i:i + 4])
        model.eval()
        head = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
        if not head.weight.any():  # torchvision's ViT starts its head at zero
            head.weight.normal_(0.0, 0.02, generator=generator)
        logits = model(noise).reshape(16, -1)
        median = logits.median(0).values
        spread = 1.4826 * float((logits - median).abs().median())
        if spread < 1e-3 * float(logits.std()):  # most inputs alike, a few far away: follow the plain spread
            spread = float(logits.std())
        scale = LOGIT_SPREAD / max(spread, 1e-12)
        head.weight.mul_(scale)
        if head.bias is not None:
            head.bias.copy_((head.bias - median) * scale)
    return model


def round_weights_to_float16(source, target, min_elements=1024):
    """The model with every float initializer the fp16 conversion stores as float16 rounded
    through float16: those of at least `min_elements` elements per TFLite tensor. A grouped
    convolution's weight becomes one TFLite filter per group, so its count is per group."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(source)
    groups = {}
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1:
            groups[node.input[1]] = next((a.i for a in node.attribute if a.name == "group"), 1)
    for i, init in enumerate(model.graph.initializer):
        array = numpy_helper.to_array(init)
        group = groups.get(init.name, 1)
        # Depthwise convolutions (one input channel per group) stay one filter.
        per_tensor = array.size if group == 1 or array.ndim != 4 or array.shape[1] == 1 else array.size // group
        if array.dtype == np.float32 and per_tensor >= min_elements and sum(d > 1 for d in array.shape) >= 2:
            rounded = array.astype(np.float16).astype(np.float32)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(rounded, init.name))
    onnx.save(model, target)


def key_of(name, opset):
    import torch
    import torchvision

    with open(__file__, "rb") as f:
        source = f.read()
    return hashlib.sha256(
        source + f"\0{name}\0{opset}\0{torch.__version__}\0{torchvision.__version__}".encode()).hexdigest()


def export(name, constructor, side, opset, out_dir):
    import torch

    target = os.path.join(out_dir, f"{name}.opset{opset}.onnx")
    stamp = target + ".stamp"
    key = key_of(name, opset)
    if os.path.exists(target) and os.path.exists(stamp) and open(stamp).read() == key:
        return False
    model = build(constructor, side)
    temporary = os.path.join(out_dir, f".{name}.opset{opset}.tmp")
    torch.onnx.export(model, torch.zeros(1, 3, side, side), temporary, opset_version=opset, input_names=["image"],
                      output_names=["logits"], do_constant_folding=True)
    os.replace(temporary, target)
    # The same model with its large weights rounded through float16: ONNX Runtime on it is the
    # exact reference for the fp16 conversion.
    rounded = os.path.join(out_dir, f".{name}.opset{opset}.fp16.tmp")
    round_weights_to_float16(target, rounded)
    os.replace(rounded, os.path.join(out_dir, f"{name}.opset{opset}.fp16-weights.onnx"))
    failed = os.path.join(out_dir, f"{name}.opset{opset}.failed")
    if os.path.exists(failed):
        os.remove(failed)
    with open(stamp, "w") as f:
        f.write(key)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="directory for <name>.opset<N>.onnx")
    parser.add_argument("--list", action="store_true", help="print the network names and input sides, one per line")
    parser.add_argument("--only", nargs="*", help="networks to export (default: all)")
    args = parser.parse_args()
    if args.list:  # read by CMake at configure time: no torch import
        for name, side in NETWORKS.items():
            print(name, side)
        return 0
    table = networks()
    if not args.out:
        parser.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    for name in args.only or table:
        constructor, side = table[name]
        for opset in OPSETS:
            try:
                if export(name, constructor, side, opset, args.out):
                    print(f"export_zoo: {name} opset {opset}", file=sys.stderr, flush=True)
            except Exception as error:  # an exporter that cannot write this network: the test reports it
                print(f"export_zoo: {name} opset {opset} failed: {error}", file=sys.stderr, flush=True)
                with open(os.path.join(args.out, f"{name}.opset{opset}.failed"), "w") as f:
                    f.write(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
