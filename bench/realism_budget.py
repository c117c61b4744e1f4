"""What a training budget buys: realism (C2ST) and downstream F1 against diffusion training steps.

In a workdir where the config has run (e.g. the demo: `snakemake --cores all`), trains the
model on to each step count in turn (raising `train.steps` continues from the checkpoint),
then redraws and evaluates one simulation with the same seeds, and prints one row per step
count:

    python bench/realism_budget.py --workdir DEMO --steps 500,1000,2000 [--sim spread]

The metrics of every step count are kept as `DEMO/budget/{steps}/metrics.json`. The workdir's
config file is left as it was; its results end at the last step count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from workflow_lib.evaluate.c2st import c2st_text
from workflow_lib.workflow import layout

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--dataset", default="nuclei")
    ap.add_argument("--sim", default="spread")
    ap.add_argument("--steps", default="500,1000,2000")
    ap.add_argument("--cores", default="2")
    args = ap.parse_args()
    base = yaml.safe_load(args.configfile.read_text())
    rows = []
    for steps in (int(s) for s in args.steps.split(",")):
        config = json.loads(json.dumps(base))
        config["datasets"][args.dataset]["model"].setdefault("train", {})["steps"] = steps
        out = args.workdir / "budget" / str(steps)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        metrics = args.workdir / layout.fill(layout.METRICS, dataset=args.dataset, sim=args.sim)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "snakemake", str(metrics.relative_to(args.workdir)),
             "-s", str(REPO / "Snakefile"), "--directory", str(args.workdir), "--cores", args.cores,
             "--configfile", str(out / "config.yaml")],
            check=True,
        )
        seconds = time.perf_counter() - start
        shutil.copy(metrics, out / "metrics.json")
        m = json.loads(metrics.read_text())
        real, down = m["realism"], m["downstream"]
        rows.append((steps, c2st_text(real["synthetic"]), c2st_text(real["sketch"]),
                     c2st_text(real.get("real_train_vs_test")),
                     f"{real['synthetic']['memorisation']['ratio']:.2f}",
                     "n/a" if down["synthetic"].get("f1") is None else f"{down['synthetic']['f1']:.2f}",
                     f"{seconds:.0f}"))
    header = ("train steps", "C2ST synthetic", "C2ST sketch", "C2ST real floor", "memorisation",
              "downstream F1", "seconds (train on + redraw + evaluate)")
    print(f"{args.dataset}/{args.sim}")
    for r in [header] + rows:
        print(" | ".join(str(v) for v in r))


if __name__ == "__main__":
    main()
