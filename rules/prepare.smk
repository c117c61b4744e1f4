rule convert_image:
    """One image -> normalised float32 HDF5 `data/image`, (C, Y, X) or (C, Z, Y, X) in [0, 1]."""
    input:
        convert_input,
    output:
        layout.H5,
    params:
        ndim=lambda wc: dataset_config(wc)["ndim"],
        channels=lambda wc: dataset_config(wc)["channels"],
        axes=lambda wc: dataset_config(wc)["axes"],
        h5_dataset=lambda wc: dataset_config(wc)["h5_dataset"],
        scene=lambda wc: dataset_config(wc)["scene"],
        normalize=lambda wc: dataset_config(wc)["normalize"],
        rescale=lambda wc: dataset_config(wc)["rescale"],
        # microns, overriding the image's metadata; written as element_size_um
        pixel_size=lambda wc: dataset_config(wc)["pixel_size"],
    log:
        "logs/{dataset}/convert/{image}.log",
    benchmark:
        "benchmarks/{dataset}/convert/{image}.tsv"
    conda:
        "../envs/prepare.yaml"
    script:
        "../scripts/convert.py"


rule index_dataset:
    """All HDF5 files of a data set -> seeded train/val/test CSV lists."""
    input:
        h5_files,
    output:
        layout.index_files("{dataset}"),
    params:
        split=lambda wc: dataset_config(wc)["split"],
    log:
        "logs/{dataset}/index.log",
    conda:
        "../envs/prepare.yaml"
    script:
        "../scripts/index.py"


rule unusable_images:
    """Fails with the reason a data set's images cannot be used (so the other data sets go on)."""
    output:
        layout.UNUSABLE_IMAGES,
    params:
        problem=lambda wc: image_inputs(wc.dataset)[1],
    log:
        "logs/{dataset}/unusable_images.log",
    conda:
        "../envs/prepare.yaml"
    script:
        "../scripts/unusable_images.py"


rule prepare:
    """Target: convert and index every data set."""
    input:
        layout.prepare_targets(config, image_names()),
