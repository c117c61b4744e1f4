"""model.pt: the weights plus the config that made them, loadable with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.unet import UNet, build_unet
from workflow_lib.errors import InputError
from workflow_lib.io import atomic_path

FORMAT = "cellsynth-ddpm-1"


def save_model(path: str | Path, net: UNet, meta: dict[str, Any]) -> None:
    """Write weights (on the CPU) and ``meta`` (plain types: the model config, ndim, ...)."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    payload = {"format": FORMAT, "unet": dict(net.config), "meta": meta, "state_dict": state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | Path, device: torch.device) -> tuple[UNet, dict[str, Any]]:
    """Load a model.pt onto ``device`` in eval mode; return ``(net, meta)``.

    Raises :class:`InputError` naming the file when it is missing or not a cellsynth model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found (run the train stage first)")
    payload = load_tensors(path, "cpu")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, f"not a cellsynth model (expected format '{FORMAT}')")
    net = build_unet(payload["unet"])
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the stored network config ({exc})") from exc
    return net.to(device).eval(), payload["meta"]


def load_tensors(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load`` restricted to tensors and plain types (``weights_only``).

    Raises :class:`InputError` naming ``path`` when it is corrupt, or holds other Python
    objects: torch would then advise ``weights_only=False``, which runs arbitrary code.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign pickles
        if "weights_only" in str(exc):
            raise InputError(
                path, "not a safe cellsynth model file (it holds Python objects other than "
                "tensors; cellsynth never loads those); retrain or use a model.pt written by "
                "cellsynth",
            ) from None
        raise InputError(path, f"not a loadable model file ({' '.join(str(exc).split())})") from exc


def schedule_of(meta: dict[str, Any]) -> NoiseSchedule:
    """The noise schedule a model was trained with."""
    return NoiseSchedule.create(meta["model"]["schedule"], meta["model"]["timesteps"])
