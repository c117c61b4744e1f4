#!/usr/bin/env bash
# One GPU session's checks, in one go (docs/performance.md has the results):
#   1. bench/bench_diffusion.py at full size (1024^2 2D, 180x512x512 3D; the default sampler
#      against DDPM-400, peak memory, training patches/s);
#   2. samples drawn together (bench/bench_batching.py: 512x512 images, 1 against 16 per call);
#   3. the default config end to end on the GPU (demo data -> train -> synthesize -> evaluate).
# Usage, in the repository root of a GPU node:
#   bash bench/device_check.sh OUT [WHEELS]
# OUT receives the tables, the run's logs and metrics (as one tarball). WHEELS: a folder of wheels
# for what the node lacks (snakemake, jsonschema, stardist), for nodes without a package index.
# It needs about 8 minutes on an H100 (the benchmarks ~3, the demo: 39 jobs, 7 of them
# synthesis chunks that --resources gpu=1 runs one after the other): give it 10.
set -uo pipefail
out=${1:?usage: device_check.sh OUT [WHEELS]}
wheels=${2:-}
check=device_check
source bench/node_setup.sh

date; echo "== bench_diffusion (full size; default sampler: dpmpp, 4 network calls)"
timeout 140 python3 bench/bench_diffusion.py --full --big --steps 4 --repeat 2

date; echo "== samples drawn together (512x512, 1 against 16 images per network call)"
timeout 60 python3 bench/bench_batching.py --sizes 512 --count 64 --batch 16 2>/dev/null

date; echo "== default config end to end on the GPU"
start=$(date +%s)
timeout 420 snakemake all --cores "$(nproc)" --resources gpu=1 --quiet rules
echo "end to end: exit $?, $(($(date +%s) - start)) s"
tar czf "$out/run.tar.gz" --ignore-failed-read logs benchmarks \
    $(find results -name '*.json' -o -name '*.png' -o -name '*.csv' -o -name 'model.md' 2>/dev/null)
