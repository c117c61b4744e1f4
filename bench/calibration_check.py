"""The unsupervised calibration against the labels of every labelled nuclei set at hand.

For each data set (bench/labelled_sets.py), images normalised as `convert_image` does (1st and
99.8th percentiles), prints the calibration's own comparison (`unsupervised_vs_masks`:
whole nuclei each way, density and median radius ratios, KS distances) and, to tell a fault of
the measurement from one of the labels, how complete the labels themselves are (the
completeness metric: visible objects no label covers) and where their outline lies against
the image's edge (median offset, px; negative = the outline lies outside the edge), beside the
same for the unsupervised segmentation:

    python bench/calibration_check.py [--cache ~/.cache/cellsynth-wheels] [--sets demo,bbbc007]

The wheels holding BBBC007 and the scratch assay are downloaded once (16 MB, no install).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# Run as a script (`python bench/...`), so its folder is on the path.
import labelled_sets
from workflow_lib.calibrate import MeasureSettings, find_nuclei, measure_nuclei
from workflow_lib.calibrate.check import unsupervised_vs_masks
from workflow_lib.evaluate.completeness import boundary_offsets, completeness
from workflow_lib.prepare.convert import normalize_block, percentiles


def normalised(image: np.ndarray) -> np.ndarray:
    """``image`` in [0, 1] as `convert_image` writes it (its 1st and 99.8th percentiles)."""
    return normalize_block(image, *percentiles(image, 1.0, 99.8))


def row(name: str, images: list[np.ndarray], labels: list[np.ndarray]) -> str:
    images = [normalised(i) for i in images]
    labels = [np.asarray(m).astype(np.int64) for m in labels]
    c = unsupervised_vs_masks(measure_nuclei, images, labels, MeasureSettings(),
                              [str(k) for k in range(len(images))])
    found = [find_nuclei(i) for i in images]
    by_labels, by_us = completeness(images, labels), completeness(images, found)
    edge = [np.nanmedian(np.concatenate([boundary_offsets(i, m) for i, m in zip(images, lab)]))
            for lab in (labels, found)]
    ks = c["ks"]
    return (f"| {name} ({len(images)}) | {c['objects']['masks']} / {c['objects']['unsupervised']} "
            f"| {c['density']['ratio']:.2f} | {c['radius']['masks']:.1f} / "
            f"{c['radius']['unsupervised']:.1f} ({c['radius']['ratio']:.2f}) "
            f"| {ks.get('elongation', float('nan')):.2f} | {ks.get('brightness', float('nan')):.2f} "
            f"| {'yes' if all(c['holds'].values()) else 'no'} "
            f"| {by_labels['unannotated_pct']:.1f} / {by_us['unannotated_pct']:.1f} "
            f"| {edge[0]:+.2f} / {edge[1]:+.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=labelled_sets.DEFAULT_CACHE)
    ap.add_argument("--sets", default=",".join(labelled_sets.NAMES))
    args = ap.parse_args()
    print("| data (images) | whole nuclei: labels / unsupervised | density ratio "
          "| median radius px: labels / unsupervised (ratio) | KS elongation | KS brightness "
          "| within target | visible but unlabelled %: labels / unsupervised "
          "| outline vs image edge px: labels / unsupervised |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        images, labels, _ = labelled_sets.load(name, args.cache)
        print(row(name, images, labels), flush=True)


if __name__ == "__main__":
    main()
