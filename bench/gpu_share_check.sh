#!/usr/bin/env bash
# Do synthesize_chunk jobs gain from sharing one GPU? Each job of the default config spends
# ~7 s on an H100, of which 0.1 s is network calls (docs/performance.md), and needs ~0.2 GiB, so
# --resources gpu=1 leaves the card idle most of the time.
# Usage, in the repository root of a GPU node:
#   bash bench/gpu_share_check.sh OUT [WHEELS]
# Runs the default config up to its 33 synthesized images, then synthesizes them again with
# --resources gpu=1 and gpu=4 (same outputs: seeded) and prints both wall times and GPU memory.
# About 7 minutes on an H100: give it 10.
set -uo pipefail
out=${1:?usage: gpu_share_check.sh OUT [WHEELS]}
wheels=${2:-}
check=gpu_share_check
source bench/node_setup.sh

cores=$(nproc)
date; echo "== the default config up to its synthesized images (gpu=1)"
timeout 200 snakemake all --until synthesize_chunk --cores "$cores" --resources gpu=1 --quiet rules
echo "prepared: exit $?"
for share in 1 4; do
    date; echo "== 7 synthesize_chunk jobs, --resources gpu=$share"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader -lms 500 > "$out/memory_gpu$share.txt" &
    watch=$!
    start=$(date +%s.%N)
    timeout 300 snakemake all --until synthesize_chunk --forcerun synthesize_chunk \
        --cores "$cores" --resources gpu=$share --quiet rules
    status=$?
    kill $watch
    echo "gpu=$share: exit $status, $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s," \
        "peak GPU memory $(sort -n "$out/memory_gpu$share.txt" | tail -1)"
    cat benchmarks/*/*/synthesize/*.tsv | awk '$1 != "s" {n++; s += $1} END {print "  mean job", s / n, "s over", n}'
done
