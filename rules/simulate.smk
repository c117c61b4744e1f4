from workflow_lib.errors import ConfigError
from workflow_lib.simulate.mask_files import mask_files


def simulations():
    """(data set, simulation name, its config) for every simulation of the config."""
    return [
        (ds, name, sim)
        for ds in DATASETS
        for name, sim in sorted(config["datasets"][ds]["simulations"].items())
    ]


def sim_config(wildcards):
    return config["datasets"][wildcards.dataset]["simulations"][wildcards.sim]


def sim_key(wildcards):
    """Config key of a simulation, for error messages."""
    return f"datasets.{wildcards.dataset}.simulations.{wildcards.sim}"


def sim_masks(wildcards):
    """Kind masks: sample i reads mask file i mod n of the sorted glob params.masks."""
    sim = sim_config(wildcards)
    if sim["kind"] != "masks":
        return {}
    key = sim_key(wildcards) + ".params.masks"
    pattern = sim["params"].get("masks")
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(key, "kind 'masks' needs a glob of label images")
    files = mask_files(pattern, key, known_files=DEMO_FILES)
    return {"mask": files[int(wildcards.i) % len(files)]}


def simulate_outputs():
    """Every label image (and CTC track file of time series) of every simulation."""
    out = []
    for ds, name, sim in simulations():
        for i in range(sim["count"]):
            out.append(f"results/{ds}/{name}/labels/{i}.tif")
            if sim["kind"] == "timeseries":
                out.append(f"results/{ds}/{name}/tracks/{i}/res_track.txt")
    return out


rule simulate_sample:
    """One simulated instance label image: uint16, ids 1..N, (C, [Z,] Y, X) or (T, C, [Z,] Y, X)."""
    input:
        unpack(sim_masks),
    output:
        labels="results/{dataset}/{sim}/labels/{i}.tif",
        meta="results/{dataset}/{sim}/labels/{i}.json",
    params:
        kind=lambda wc: sim_config(wc)["kind"],
        shape=lambda wc: sim_config(wc)["shape"],
        params=lambda wc: sim_config(wc)["params"],
        seed=lambda wc: sim_config(wc)["seed"],
        key=sim_key,
    log:
        "logs/{dataset}/{sim}/simulate/{i}.log",
    benchmark:
        "benchmarks/{dataset}/{sim}/simulate/{i}.tsv"
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/simulate.py"


rule export_tracks:
    """Cell Tracking Challenge res_track.txt (L B E P per track) of a time series sample."""
    input:
        "results/{dataset}/{sim}/labels/{i}.json",
    output:
        "results/{dataset}/{sim}/tracks/{i}/res_track.txt",
    log:
        "logs/{dataset}/{sim}/tracks/{i}.log",
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/tracks.py"


rule simulate:
    """Target: simulated labels of every simulation of every data set."""
    input:
        simulate_outputs(),
