rule simulate_sample:
    """One simulated instance label image: uint16, ids 1..N, (C, [Z,] Y, X) or (T, C, [Z,] Y, X)."""
    input:
        unpack(simulation_mask),
        unpack(calibration_of),
    output:
        labels=layout.LABELS,
        meta=layout.LABELS_META,
    params:
        kind=lambda wc: sim_config(wc)["kind"],
        shape=lambda wc: sim_config(wc)["shape"],
        params=lambda wc: sim_config(wc)["params"],
        seed=lambda wc: sim_config(wc)["seed"],
        calibrate=lambda wc: sim_config(wc)["calibrate"],
        # the data set's pixel size ([Z,] Y, X microns, or None): the config's pixel_size over
        # its first image's metadata, read here once per run; sketches, images and exports
        # take it from the labels
        pixel_size=lambda wc: cfg.pixel_size_um(dataset_config(wc), images_of(wc.dataset)),
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
        layout.LABELS_META,
    output:
        layout.TRACKS,
    log:
        "logs/{dataset}/{sim}/tracks/{i}.log",
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/tracks.py"


rule simulate:
    """Target: simulated labels of every simulation of every data set."""
    input:
        layout.simulate_targets(config),
