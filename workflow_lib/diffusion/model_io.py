"""model.pt: the weights plus the config that made them, loadable with ``weights_only=True``.

Beside it, ``model.md``: a short model card (:func:`model_card`) written from the same metadata.
"""

from __future__ import annotations

import importlib.metadata
import json
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


def read_model(path: str | Path) -> dict[str, Any]:
    """The payload of a model.pt on the CPU: ``{"format", "unet", "meta", "state_dict"}``.

    Raises :class:`InputError` naming the file when it is missing or not a cellsynth model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found (run the train stage first)")
    payload = load_tensors(path, "cpu")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, f"not a cellsynth model (expected format '{FORMAT}')")
    return payload


def load_model(path: str | Path, device: torch.device) -> tuple[UNet, dict[str, Any]]:
    """Load a model.pt onto ``device`` in eval mode; return ``(net, meta)``.

    Raises :class:`InputError` naming the file when it is missing or not a cellsynth model.
    """
    path = Path(path)
    payload = read_model(path)
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


def versions() -> dict[str, str]:
    """The cellsynth and torch versions, recorded in model.pt."""
    try:
        cellsynth = importlib.metadata.version("cellsynth")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        cellsynth = "unknown"
    return {"cellsynth": cellsynth, "torch": str(torch.__version__)}  # TorchVersion: not plain


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


#: Training steps of the method's budget for a GPU (the schema's `train.steps` default).
GPU_STEPS = 50000


def model_card(meta: dict[str, Any], model_path: str) -> str:
    """A short Markdown model card of a model.pt (``meta`` as :func:`save_model` stores it):
    what data, config, steps, losses, versions, and how to reuse it."""
    norm = meta.get("normalize") or {}
    init = meta.get("init_from")
    loss = meta.get("loss") or {}
    files = meta.get("train_files", [])
    ver = meta.get("versions", {})
    size = meta.get("pixel_size")
    lines = [
        f"# Model card: {meta.get('dataset', 'cellsynth model')}",
        "",
        f"Denoising diffusion model (DDPM U-Net, {meta['ndim']}D, {meta['channels']} channel(s)) "
        "trained by cellsynth. Weights: `model.pt` (the EMA of the weights; load with "
        "`torch.load(..., weights_only=True)` or `workflow_lib.diffusion.model_io.load_model`).",
        "",
        "## Data",
        f"- train images ({len(files)}): {', '.join(files) if files else 'none'}",
        f"- normalisation: percentiles {norm.get('lower')} -> 0, {norm.get('upper')} -> 1",
        "- pixel size: " + (f"{size} um ([Z,] Y, X)" if size is not None else "unknown"),
        "",
        "## Training",
        f"- steps: {meta.get('steps')}"
        + (f", fine-tuned from `{init['path']}` (sha256 {init['sha256'][:12]})" if init else ""),
        f"- final loss: train {_number(loss.get('train'))} (mean of the last "
        f"{loss.get('train_steps', 'few')} steps), "
        f"validation {_number(loss.get('val'))} (EMA weights)",
        f"- versions: cellsynth {ver.get('cellsynth', 'unknown')}, "
        f"torch {ver.get('torch', 'unknown')}",
        f"- resume hash: {meta.get('hash')}",
        "",
        "## What the training budget buys",
        f"- trained {meta.get('steps')} steps; the method's budget on a GPU is {GPU_STEPS} "
        "(`train.steps`, the schema default)"
        + (": a short budget, as on a CPU demo" if (meta.get("steps") or 0) < GPU_STEPS / 10 else ""),
        "- whether the images pass for real is measured, not assumed: each simulation's "
        "`evaluation/metrics.json` `realism.synthetic.c2st.accuracy` (0.5: a classifier cannot "
        "tell synthetic from real patches; `realism.sketch.c2st`: the raw sketches; "
        "`evaluation/reference.json` `realism_train_vs_test.c2st`: real against real, the floor)",
        "- well above the floor (0.7 and more): raise `train.steps` (training continues from the "
        "checkpoint) and compare; docs/models.md has what more steps bought on the demo, and "
        "`realism.png` in the report shows the patches that give the images away",
        "",
        "## Config (`model:` block)",
        "```json",
        json.dumps(meta.get("model", {}), indent=2, sort_keys=True),
        "```",
        "",
        "## Reuse",
        "Synthesise another data set with this model, without training (its `ndim`, number of "
        "`channels` and `normalize` percentiles must match the above):",
        "```yaml",
        "    model:",
        f"      from: {model_path}",
        "```",
        f"or fine-tune it on the other data set's images: `model: {{init_from: {model_path}}}`.",
        "",
    ]
    return "\n".join(lines)
