"""`snakemake --lint` and a dry-run of the default config stay clean."""

from __future__ import annotations

from helpers import run_snakemake


def test_lint_is_clean(tmp_path):
    proc = run_snakemake(tmp_path, None, "--lint", check=False)
    assert proc.returncode == 0 and "Lints for" not in proc.stdout, proc.stdout[-4000:]


def test_default_config_plans_the_whole_pipeline(tmp_path):
    proc = run_snakemake(tmp_path, None, "-n", "--quiet", "rules")
    for rule in ("demo_data", "convert_image", "index_dataset"):
        assert rule in proc.stdout, proc.stdout
