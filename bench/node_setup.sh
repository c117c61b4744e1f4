# Sourced by the GPU node checks (device_check.sh, gpu_share_check.sh) with $out and $wheels
# set: tees everything to $out/$check.txt, names the card, installs what the node lacks.
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
exec > >(tee "$out/$check.txt") 2>&1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if [ -n "$wheels" ]; then
    python3 -m pip install -q --no-index --find-links "$wheels" snakemake jsonschema stardist csbdeep \
        || python3 -m pip install -q --no-index --no-deps "$wheels"/*.whl
fi
python3 -c 'import torch, snakemake; print("torch", torch.__version__, "snakemake", snakemake.__version__)'
