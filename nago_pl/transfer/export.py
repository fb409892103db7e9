"""A self-contained model folder, and the one call that loads it back.

Folder contents: ``architecture.json``, ``model.safetensors`` (the network's weights),
``model.json`` (network spec and preprocessing: mean, std, input size, class names) and, when
``torch.export`` handles the network, ``model.pt2`` (an ExportedProgram taking images).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from nago_pl.errors import NagoError
from nago_pl.jsonfile import write_json
from nago_pl.network.configured import load_architecture, network_of
from nago_pl.network.model import Network
from nago_pl.network.nb201 import Nb201Network

FORMAT_VERSION = 1


class ImageClassifier(nn.Module):
    """A network with its preprocessing: takes uint8 images (or floats in [0, 1]) of shape
    ``[B, C, image_size, image_size]`` and returns logits over :attr:`class_names`."""

    def __init__(self, net: Network | Nb201Network, mean: list[float], std: list[float],
                 class_names: list[str]) -> None:
        super().__init__()
        self.net = net
        self.class_names = list(class_names)
        self.image_size = net.spec.image_size
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if images.dtype == torch.uint8:
            x = x / 255.0
        return self.net((x - self.mean) / self.std)


def export_model(net: Network | Nb201Network, folder: str | Path, *, mean: list[float], std: list[float],
                 class_names: list[str]) -> Path:
    """Write ``net`` (weights as they are now) and its preprocessing into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net.arch.save(folder / "architecture.json")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION, "spec": asdict(net.spec), "mean": list(mean),
        "std": list(std), "class_names": list(class_names),
    }
    classifier = ImageClassifier(load_model(folder, meta=meta).net, mean, std, class_names)
    example = torch.zeros(2, net.spec.in_channels, net.spec.image_size, net.spec.image_size,
                          dtype=torch.uint8)
    batch = {0: torch.export.Dim("batch", min=1, max=65536)}
    try:
        program = torch.export.export(classifier.eval(), (example,),
                                      dynamic_shapes={"images": batch})
        torch.export.save(program, str(folder / "model.pt2"))
        meta["torch_export"] = "model.pt2"
    except Exception as err:  # noqa: BLE001 - optional artefact; the reason is recorded
        meta["torch_export"] = f"not written: {type(err).__name__}: {err}"[:300]
    write_json(folder / "model.json", meta)
    return folder


def load_model(folder: str | Path, *, meta: dict[str, Any] | None = None) -> ImageClassifier:
    """The exported model in ``folder``, ready in eval mode (weights read with safetensors)."""
    folder = Path(folder)
    if meta is None:
        meta_file = folder / "model.json"
        if not meta_file.is_file():
            raise NagoError(f"{folder}: no exported model (model.json missing); export one with "
                            "`python train.py ... export=true`")
        meta = json.loads(meta_file.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise NagoError(f"{folder}: model.json format_version must be {FORMAT_VERSION}")
    arch = load_architecture(folder / "architecture.json")
    net = network_of(arch, meta["spec"], initialize=False)
    try:
        state = load_file(str(folder / "model.safetensors"))
    except (SafetensorError, OSError) as err:
        raise NagoError(f"{folder / 'model.safetensors'}: unreadable weights (corrupted or "
                        f"truncated?): {err}") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise NagoError(f"{folder}: weights do not match architecture.json: "
                        f"{str(err).splitlines()[0]}") from None
    return ImageClassifier(net, meta["mean"], meta["std"], meta["class_names"]).eval()
