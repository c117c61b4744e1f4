"""Quality and time of DDPM from t_start (the original) vs the fast sampler, same sketches.

Synthesises one simulation's sketches twice with the trained model: DDPM (every step from
t_start) and the data set's configured sampler (e.g. DPM-Solver++ in 10 calls), then runs
the evaluation protocol on both and prints one table (plus sketch and real rows for scale):

    python bench/quality.py --workdir RUN_DIR --dataset nuclei --sim spread [--crop 128]
        [--limit 1] [--configfile config/config.yaml] [--device auto]

RUN_DIR is a directory where the workflow has run up to `sketch` and `train` (model.pt,
sketches, labels, prepared real data). --crop cuts sketches to their top-left CROP pixels
per spatial axis so DDPM's 400 network calls fit a CPU; --limit takes the first N samples.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from snakemake.utils import validate  # noqa: E402

from workflow_lib.device import pick_device  # noqa: E402
from workflow_lib.diffusion.samplers import network_evaluations  # noqa: E402
from workflow_lib.diffusion.stages import synthesize_stage  # noqa: E402
from workflow_lib.evaluate.data import load_real, load_stack, match_masks  # noqa: E402
from workflow_lib.evaluate.protocol import (  # noqa: E402
    Sample,
    Settings,
    evaluate_reference,
    evaluate_simulation,
)
from workflow_lib.io import axes_for, write_tiff  # noqa: E402
from workflow_lib.pipeline import dataset_images  # noqa: E402


def load_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    validate(config, str(REPO / "config" / "config.schema.yaml"))  # fills the defaults
    return config


def crop(array: np.ndarray, size: int | None, ndim: int) -> np.ndarray:
    if size is None:
        return array
    return array[(Ellipsis,) + (slice(0, size),) * ndim]


def row(name: str, nfe, seconds, metrics: dict) -> list[str]:
    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    fid = metrics.get("fidelity", {}).get("0", {}).get("f1") if metrics.get("fidelity") else None
    real = metrics.get("realism", {})
    down = metrics.get("downstream", {})
    return [name, "-" if nfe is None else str(nfe), "-" if seconds is None else f"{seconds:.1f}",
            fmt(fid), fmt(real.get("kid")), fmt(real.get("histogram_w1")),
            fmt(real.get("spectrum_rmse")), fmt(down.get("f1")), fmt(down.get("ap_50_95"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--dataset", default="nuclei")
    ap.add_argument("--sim", default="spread")
    ap.add_argument("--crop", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    config = load_config(args.configfile)
    ds = config["datasets"][args.dataset]
    sim = ds["simulations"][args.sim]
    ndim, kind = ds["ndim"], sim["kind"]
    time_axis = kind == "timeseries"
    root = args.workdir / "results" / args.dataset
    count = sim["count"] if args.limit is None else min(args.limit, sim["count"])
    sketch_paths = [root / args.sim / "sketches" / f"{i}.tif" for i in range(count)]
    labels = [crop(a, args.crop, ndim) for a in load_stack(
        [root / args.sim / "labels" / f"{i}.tif" for i in range(count)], ndim, time_axis)]
    sketches = [crop(a, args.crop, ndim) for a in load_stack(sketch_paths, ndim, time_axis)]

    evaluation = ds["evaluation"]
    settings = Settings.from_config(evaluation)
    names = dataset_images(args.dataset, str(args.workdir / ds["images"]))
    pattern = evaluation["real_masks"]
    masks = match_masks(None if pattern is None else str(args.workdir / pattern), names,
                        f"datasets.{args.dataset}.evaluation.real_masks")
    key = f"datasets.{args.dataset}.evaluation.real_channel"
    train = load_real(root / "index" / "train.csv", masks, evaluation["real_channel"], key)
    test = load_real(root / "index" / "test.csv", masks, evaluation["real_channel"], key)
    reference, _ = evaluate_reference(train, test, pattern is not None, settings)

    device = pick_device(args.device)
    model = root / "model" / "model.pt"
    fast = ds["synthesis"]
    samplers = [("ddpm", {**fast, "sampler": "ddpm"}), (fast["sampler"], fast)]
    rows, details = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        axes = axes_for(ndim, time=time_axis)
        for i, sketch in enumerate(sketches):
            write_tiff(tmp / "sketches" / f"{i}.tif", sketch.astype(np.float32), axes)
        for name, params in samplers:
            start = time.perf_counter()
            for i in range(count):
                synthesize_stage(model, tmp / "sketches" / f"{i}.tif",
                                 tmp / name / f"{i}.tif", params, i, device)
            seconds = time.perf_counter() - start
            images = load_stack([tmp / name / f"{i}.tif" for i in range(count)], ndim, time_axis)
            samples = [Sample(lab, sk, img) for lab, sk, img in zip(labels, sketches, images)]
            metrics, _ = evaluate_simulation(kind, samples, test, reference,
                                             pattern is not None, settings)
            details[name] = metrics
            nfe = network_evaluations(params["sampler"], params["t_start"], params["steps"])
            rows.append(row(f"{name} from {params['t_start']}", nfe, seconds,
                            {**metrics, "realism": metrics["realism"]["synthetic"],
                             "downstream": metrics["downstream"]["synthetic"]}))
    last = details[samplers[-1][0]]
    rows.append(row("sketch (no diffusion)", None, None,
                    {"realism": last["realism"]["sketch"], "downstream": last["downstream"]["sketch"]}))
    rows.append(row("real train (reference)", None, None,
                    {"realism": reference["realism_train_vs_test"],
                     "downstream": reference["downstream_real"]}))

    header = ["images", "NFE", "seconds", "fidelity F1", "KID", "hist W1", "spectrum",
              "down F1@0.5", "down AP50:95"]
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(len(header))]
    print(f"{args.dataset}/{args.sim}: {count} sample(s), crop {args.crop}, device {device}")
    for r in [header] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


if __name__ == "__main__":
    main()
