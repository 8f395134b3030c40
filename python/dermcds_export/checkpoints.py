"""Loading a user's checkpoint into one of our architectures, with errors that name the problem.

A checkpoint is a state_dict saved with torch.save(model.state_dict(), path). The common wrappers
are accepted too: {"state_dict": ...} or {"model_state_dict": ...} (training loops, Lightning),
and keys prefixed "module." (DataParallel). Files are opened with torch.load(weights_only=True),
so a checkpoint cannot run code while it is read; a pickled whole model is refused with a hint.
"""

from pathlib import Path
from typing import Dict

import torch

from .errors import CheckpointError, NotFound

_WRAPPER_KEYS = ("state_dict", "model_state_dict")
_LISTED = 5  # keys named in an error before "and N more"


def _name_some(keys) -> str:
    keys = sorted(keys)
    text = ", ".join(keys[:_LISTED])
    return text + (f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def read_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """The tensors in a checkpoint file; raises NotFound or CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise NotFound(f"checkpoint {path} is not a file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch 1.13's restricted unpickler fails in many ways on foreign data
        text = str(e).strip()
        message = text.splitlines()[0] if text else type(e).__name__
        hint = ""
        if "Unsupported" in text or "weights_only" in text:
            hint = (" (besides tensors it holds Python objects, such as a whole nn.Module or training state; "
                    "save model.state_dict() on its own)")
        raise CheckpointError(f"checkpoint {path} cannot be read as a PyTorch state_dict{hint}: {message}") from None
    for key in _WRAPPER_KEYS:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(loaded).__name__}, not a state_dict "
                              f"(a dict of parameter name -> tensor)")
    if not loaded:
        raise CheckpointError(f"checkpoint {path} is an empty dict, not a state_dict")
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise CheckpointError(f"checkpoint {path} has a key {key!r} that is not a parameter name")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint {path}: entry {key!r} is not a tensor but {type(value).__name__}; "
                                  f"is this a training checkpoint without its state_dict?")
    if all(key.startswith("module.") for key in loaded):
        loaded = {key[len("module."):]: value for key, value in loaded.items()}
    return loaded


def load_into(model: torch.nn.Module, state: Dict[str, torch.Tensor], origin: str, arch_name: str) -> None:
    """Copies `state` into `model`; every key must be present with the model's shape."""
    expected = model.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_name_some(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_name_some(unexpected)}")
        raise CheckpointError(f"checkpoint {origin} does not match {arch_name} with an 8-class head: "
                              + "; ".join(parts))
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(f"checkpoint {origin}: {key} has shape {list(state[key].shape)}, {arch_name} "
                                  f"with an 8-class head expects {list(value.shape)}")
        if state[key].is_floating_point() != value.is_floating_point():
            raise CheckpointError(f"checkpoint {origin}: {key} has dtype {state[key].dtype}, expected {value.dtype}")
    converted = {key: state[key].to(expected[key].dtype) for key in expected}
    model.load_state_dict(converted, strict=True)


def load_checkpoint(arch, path: Path) -> torch.nn.Module:
    """A network of `arch` (architectures.Architecture) with the weights from `path`, in eval mode."""
    model = arch.build()
    load_into(model, read_state_dict(path), str(path), arch.name)
    return model.eval()
