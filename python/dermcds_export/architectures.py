"""The torchvision networks derm-cds exports, each with the input it expects.

Weights are never downloaded (weights=None): a network's parameters come from a user's
checkpoint, the demo training (demo_training.py) or, for converter tests, random initialisation
with recalibrated batch-norm statistics.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import torch
import torchvision

from .lesions import LABELS, LABEL_NAMES
from .reference_transform import IMAGENET_MEAN, IMAGENET_STD

NUM_CLASSES = len(LABELS)


@dataclass(frozen=True)
class InputSpec:
    """The image pipeline a network was trained with (manifest "input", docs/model-package.md)."""

    size: int
    shorter_side: int
    interpolation: str = "bilinear"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD

    def manifest(self) -> dict:
        return {
            "name": "image",
            "layout": "NCHW",
            "color": "RGB",
            "size": self.size,
            "resize": {"policy": "shorter_side_then_center_crop", "shorter_side": self.shorter_side,
                       "interpolation": self.interpolation},
            "scale": 255,
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass(frozen=True)
class Architecture:
    name: str
    display_name: str
    builder: Callable[..., torch.nn.Module] = field(repr=False)
    input: InputSpec

    def build(self, **overrides) -> torch.nn.Module:
        """A freshly initialised network with an 8-class head, in eval mode.

        `overrides` go to the torchvision builder; only parameter-free options (such as
        EfficientNet's stochastic_depth_prob) may be changed, so the state_dict keeps its keys.
        """
        model = self.builder(weights=None, num_classes=NUM_CLASSES, **overrides)
        return model.eval()

    def classifier(self, model: torch.nn.Module) -> torch.nn.Linear:
        """The last linear layer, whose output are the logits."""
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        return linears[-1]


_SMALL_INPUT = InputSpec(size=224, shorter_side=256)

ARCHITECTURES: Dict[str, Architecture] = {a.name: a for a in (
    # The two production networks: server (ONNX Runtime) and mobile (TFLite).
    Architecture("efficientnet_b4", "EfficientNet-B4", torchvision.models.efficientnet_b4,
                 InputSpec(size=380, shorter_side=384)),
    Architecture("mobilenet_v3_large", "MobileNetV3-Large", torchvision.models.mobilenet_v3_large, _SMALL_INPUT),
    # Further networks the ONNX->TFLite converter is tested on.
    Architecture("mobilenet_v2", "MobileNetV2", torchvision.models.mobilenet_v2, _SMALL_INPUT),
    Architecture("resnet18", "ResNet-18", torchvision.models.resnet18, _SMALL_INPUT),
    Architecture("efficientnet_b0", "EfficientNet-B0", torchvision.models.efficientnet_b0, _SMALL_INPUT),
    Architecture("mobilenet_v3_small", "MobileNetV3-Small", torchvision.models.mobilenet_v3_small, _SMALL_INPUT),
)}

# Networks with a demo training recipe (demo_training.py).
DEMO_ARCHITECTURES = ("efficientnet_b4", "mobilenet_v3_large")


def get(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}") from None


def manifest_labels() -> list:
    return [{"code": code, "name": LABEL_NAMES[code]} for code in LABELS]
