from functools import partial

from workflow_lib.simulate import targets as sim_targets

simulate_outputs = partial(sim_targets.simulate_outputs, config)
sim_config = lambda wc: sim_targets.sim_config(config, wc.dataset, wc.sim)
sim_key = lambda wc: sim_targets.sim_key(wc.dataset, wc.sim)


rule simulate_sample:
    """One simulated instance label image: uint16, ids 1..N, (C, [Z,] Y, X) or (T, C, [Z,] Y, X)."""
    input:
        unpack(
            lambda wc: sim_targets.sim_masks(
                config, wc.dataset, wc.sim, int(wc.i), known_files=DEMO_FILES
            )
        ),
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
