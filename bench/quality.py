"""Quality and time of DDPM from t_start (the original) vs the fast sampler, same sketches.

Synthesises one simulation's sketches with the trained model through the workflow's own
stages: DDPM (every step from t_start) and the data set's fast sampler at each step count of
--steps, then runs the evaluation on each and prints one table (plus sketch and real rows for
scale; completeness columns: unannotated objects in % of the annotated, edge offset in px):

    python bench/quality.py --workdir RUN_DIR --dataset nuclei --sim spread [--crop 128]
        [--limit 1] [--steps 2,4,10,20] [--no-ddpm] [--configfile config/config.yaml]

RUN_DIR is a directory where the workflow has run up to `sketch`, `calibrate` and `train`
(model.pt, sketches, labels, calibration, prepared real data). --crop cuts sketches to their
top-left CROP pixels per spatial axis so DDPM's 400 network calls fit a CPU; --limit takes the
first N samples.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml
from snakemake.utils import validate

from workflow_lib.device import pick_device
from workflow_lib.diffusion.pipeline import SynthesisPipeline
from workflow_lib.diffusion.samplers import network_evaluations
from workflow_lib.diffusion.synthesis import to_layout
from workflow_lib.io import axes_for, read_tiff, write_json, write_tiff
from workflow_lib.simulate import get_kind
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow import inputs, layout
from workflow_lib.workflow.stages import evaluation
from workflow_lib.workflow.runner import Files, Job

REPO = Path(__file__).resolve().parents[1]


def load_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    validate(config, str(REPO / "config" / "config.schema.yaml"))  # fills the defaults
    cfg.check(config)
    return config


def crop(array: np.ndarray, size: int | None, ndim: int) -> np.ndarray:
    if size is None:
        return array
    return array[(Ellipsis,) + (slice(0, size),) * ndim]


def row(name: str, nfe, seconds, metrics: dict, complete: dict | None = None) -> list[str]:
    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    fid = metrics.get("fidelity", {}).get("0", {}).get("f1") if metrics.get("fidelity") else None
    real = metrics.get("realism", {})
    down = metrics.get("downstream", {})
    return [name, "-" if nfe is None else str(nfe), "-" if seconds is None else f"{seconds:.1f}",
            fmt(fid), fmt((real.get("c2st") or {}).get("accuracy")), fmt(real.get("kid")),
            fmt(real.get("histogram_w1")),
            fmt(real.get("spectrum_rmse")), fmt(down.get("f1")), fmt(down.get("ap_50_95")),
            fmt((complete or {}).get("unannotated_pct")), fmt((complete or {}).get("boundary_offset_px"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--dataset", default="nuclei")
    ap.add_argument("--sim", default="spread")
    ap.add_argument("--crop", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", default=None,
                    help="comma-separated step counts of the fast sampler to compare "
                         "(default: the config's); DDPM from t_start is always a row")
    ap.add_argument("--no-ddpm", action="store_true", help="leave out the (slow) DDPM row")
    args = ap.parse_args()

    config = load_config(args.configfile)
    ds = config["datasets"][args.dataset]
    sim = ds["simulations"][args.sim]
    ndim, kind = ds["ndim"], get_kind(sim["kind"])
    axes = axes_for(ndim, time=kind.time)
    count = sim["count"] if args.limit is None else min(args.limit, sim["count"])
    os.chdir(args.workdir)  # the config's globs and results/ are relative to the run

    def sample_paths(template: str) -> list[str]:
        return layout.sample_files(template, args.dataset, args.sim, range(count))

    eval_config = ds["evaluation"]
    names = inputs.dataset_images(ds["images"], cfg.key(args.dataset, "images"))
    masks = inputs.real_masks(eval_config["real_masks"], names,
                              cfg.key(args.dataset, "evaluation", "real_masks"))
    wildcards = SimpleNamespace(dataset=args.dataset, sim=args.sim)
    real = {"index": layout.index_files(args.dataset), "h5": [], "masks": sorted(masks.values())}
    model = layout.fill(layout.MODEL, dataset=args.dataset)
    fast = cfg.synthesis_params(ds, ds["simulations"][args.sim])
    steps = [int(s) for s in args.steps.split(",")] if args.steps else [fast["steps"]]
    samplers = ([] if args.no_ddpm else [("ddpm", {**fast, "sampler": "ddpm"})]) + [
        (f"{fast['sampler']}-{n}", {**fast, "steps": n}) for n in steps
    ]
    calibration = layout.fill(layout.CALIBRATION, dataset=args.dataset)
    rows, details = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reference = tmp / "reference.json"
        evaluation.evaluate_reference(Job(
            Files(**real), Files(reference),
            SimpleNamespace(evaluation=eval_config), wildcards, threads=2,
        ))
        for stage, paths in (("labels", sample_paths(layout.LABELS)),
                             ("sketches", sample_paths(layout.SKETCH))):
            for i, path in enumerate(paths):
                array = crop(read_tiff(path, axes=axes)[0], args.crop, ndim)
                write_tiff(tmp / stage / f"{i}.tif", array, axes)
        cropped = {stage: [tmp / stage / f"{i}.tif" for i in range(count)]
                   for stage in ("labels", "sketches")}
        real_measurements = (json.loads(Path(calibration).read_text())
                             if Path(calibration).exists() else None)
        for name, params in samplers:
            images = [tmp / name / f"{i}.tif" for i in range(count)]
            start = time.perf_counter()
            # the pipeline the synthesize stage uses, built once, as a chunk job does
            pipeline = SynthesisPipeline.from_file(
                model, cfg.synthesis_settings(params), kind, pick_device(args.device),
                real_measurements)
            samples = ((to_layout(read_tiff(cropped["sketches"][i])[0], axes, ndim)[0],
                        read_tiff(cropped["labels"][i], axes=axes)[0], (params["seed"], i),
                        str(images[i])) for i in range(count))
            for path, (_, drawn) in zip(images, pipeline.stream(samples)):
                write_tiff(path, drawn.image, axes)
                write_json(path.with_suffix(".json"), drawn.report)
            seconds = time.perf_counter() - start
            out = tmp / f"evaluation-{name}"
            evaluation.evaluate_simulation(Job(
                Files(**real, reference=reference, calibration=calibration),
                Files(metrics=out / "metrics.json",
                      **{fig: out / f"{fig}.png" for fig in layout.EVAL_FIGURES}),
                SimpleNamespace(kind=kind.name, ndim=ndim, evaluation=eval_config,
                                calibration=ds["calibration"],
                                samples={"labels": cropped["labels"], "sketch": cropped["sketches"],
                                         "image": images,
                                         "check": [p.with_suffix(".json") for p in images]}),
                wildcards, threads=2,
            ))
            metrics = json.loads((out / "metrics.json").read_text())
            details[name] = metrics
            nfe = network_evaluations(params["sampler"], params["t_start"], params["steps"])
            rows.append(row(f"{name} from {params['t_start']}", nfe, seconds,
                            {**metrics, "realism": metrics["realism"]["synthetic"],
                             "downstream": metrics["downstream"]["synthetic"]},
                            metrics["completeness"]["synthetic"]))
        reference = json.loads(reference.read_text())
    last = details[samplers[-1][0]]
    rows.append(row("sketch (no diffusion)", None, None,
                    {"realism": last["realism"]["sketch"], "downstream": last["downstream"]["sketch"]}))
    rows.append(row("real train (reference)", None, None,
                    {"realism": reference["realism_train_vs_test"],
                     "downstream": reference["downstream_real"]}))

    header = ["images", "NFE", "seconds", "fidelity F1", "C2ST", "KID", "hist W1", "spectrum",
              "down F1@0.5", "down AP50:95", "unannotated %", "edge offset px"]
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(len(header))]
    print(f"{args.dataset}/{args.sim}: {count} sample(s), crop {args.crop}, device {args.device}")
    for r in [header] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


if __name__ == "__main__":
    main()
