DEMO_FILES = [
    f"resources/demo/{kind}/dsb2018_{q}.tif"
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
