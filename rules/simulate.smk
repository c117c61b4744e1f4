rule simulate_chunk:
    """A chunk of simulated instance label images: uint16, ids 1..N, (C, [Z,] Y, X) or
    (T, C, [Z,] Y, X), each with its metadata JSON (and CTC res_track.txt for time series)."""
    input:
        unpack(simulation_masks),
        unpack(calibration_of),
    output:
        layout.SIMULATED,
    params:
        kind=lambda wc: sim_config(wc)["kind"],
        shape=lambda wc: sim_config(wc)["shape"],
        params=lambda wc: sim_config(wc)["params"],
        seed=lambda wc: sim_config(wc)["seed"],
        calibrate=lambda wc: sim_config(wc)["calibrate"],
        # the data set's pixel size ([Z,] Y, X microns, or None): the config's pixel_size over
        # its first image's metadata, read here once per run; sketches, images and exports
        # take it from the labels
        pixel_size=lambda wc: pixel_sizes.pixel_size_um(dataset_config(wc), images_of(wc.dataset)),
        files=chunk_paths,
    log:
        "logs/{dataset}/{sim}/simulate/{chunk}.log",
    benchmark:
        "benchmarks/{dataset}/{sim}/simulate/{chunk}.tsv"
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/simulate.py"


rule simulate:
    """Target: simulated labels of every simulation of every data set."""
    input:
        layout.simulate_targets(config),
