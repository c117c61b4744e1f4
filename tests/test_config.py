"""The default config and schema: valid, defaults filled from every sub-schema."""

from __future__ import annotations

from pathlib import Path

import yaml
from snakemake.utils import validate

from workflow_lib.workflow.config import check as check_config

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_defaults_reach_every_sub_schema():
    config = {"datasets": {"d": {"images": "x/*.tif"}}}
    validate(config, str(CONFIG / "config.schema.yaml"))
    ds = config["datasets"]["d"]
    assert ds["model"]["train"]["steps"] >= 1
    assert ds["synthesis"]["t_start"] == 400
    assert "real_masks" in ds["evaluation"]
    check_config(config)


def test_default_config_is_valid():
    config = yaml.safe_load((CONFIG / "config.yaml").read_text())
    validate(config, str(CONFIG / "config.schema.yaml"))
    check_config(config)
    assert config["datasets"]["nuclei"]["images"].startswith("resources/demo/")


def test_3d_demo_config_is_valid():
    config = yaml.safe_load((CONFIG / "demo3d.yaml").read_text())
    validate(config, str(CONFIG / "config.schema.yaml"))
    check_config(config)
    ds = config["datasets"]["nuclei3d"]
    assert ds["ndim"] == 3 and ds["images"].startswith("resources/demo3d/")


def test_simulation_name_must_not_shadow_a_stage_folder():
    import pytest

    from workflow_lib.errors import ConfigError

    config = {"datasets": {"d": {"images": "x", "simulations": {"model": {"kind": "nuclei"}}}}}
    validate(config, str(CONFIG / "config.schema.yaml"))
    with pytest.raises(ConfigError, match="simulations.model"):
        check_config(config)


def test_calibrate_needs_a_kind_showing_the_calibrated_stain():
    import pytest

    from workflow_lib.errors import ConfigError

    def config(stain, kind):
        c = {"datasets": {"d": {"images": "x", "calibration": {"stain": stain},
                                "simulations": {"s": {"kind": kind, "calibrate": True}}}}}
        validate(c, str(CONFIG / "config.schema.yaml"))
        return c

    for stain, kind in (("nuclei", "multichannel"), ("membranes", "membranes"),
                        ("membranes", "multichannel"), ("nuclei", "timeseries")):
        check_config(config(stain, kind))
    with pytest.raises(ConfigError, match=r"simulations.s.calibrate': kind 'nuclei' shows nuclei, "
                       r"but .* membranes stain \(datasets.d.calibration.stain\)"):
        check_config(config("membranes", "nuclei"))
    with pytest.raises(ConfigError, match="kind 'membranes' shows membranes"):
        check_config(config("nuclei", "membranes"))


def test_two_stains_pair_with_their_channels():
    """calibration.stain as a list measures each stain on its channel (null: 0, 1, ...); a
    channel per stain, inside the converted images, in the order a model drawing a kind's
    channels together draws them."""
    import pytest

    from workflow_lib.errors import ConfigError
    from workflow_lib.workflow.config import calibration_channels

    def config(calibration, channels=(0, 1), kind="multichannel"):
        c = {"datasets": {"d": {"images": "x", "channels": list(channels), "calibration": calibration,
                                "simulations": {"s": {"kind": kind, "calibrate": True}}}}}
        validate(c, str(CONFIG / "config.schema.yaml"))
        return c

    both = config({"stain": ["membranes", "nuclei"]})
    check_config(both)
    assert calibration_channels(both["datasets"]["d"]["calibration"]) == {"membranes": 0, "nuclei": 1}
    assert calibration_channels(config({"stain": "nuclei"}, [0])["datasets"]["d"]["calibration"]) == {"nuclei": 0}
    check_config(config({"stain": ["membranes", "nuclei"]}, kind="nuclei"))   # shows one of them
    with pytest.raises(ConfigError, match=r"calibration.channel': has 1 channel\(s\) for 2 stain"):
        check_config(config({"stain": ["membranes", "nuclei"], "channel": 1}))
    with pytest.raises(ConfigError, match=r"calibration.channel': nuclei in channel 2, but the "
                       r"converted images hold 2 channel"):
        check_config(config({"stain": ["membranes", "nuclei"], "channel": [0, 2]}))
    with pytest.raises(ConfigError, match=r"nuclei is measured in channel 0, but the model draws "
                       r"the channels of simulation 's' \(kind 'multichannel'\) together: "
                       r"membranes in channel 0, nuclei in channel 1"):
        check_config(config({"stain": ["nuclei", "membranes"]}))
    with pytest.raises(Exception, match="is not valid|non-unique|has non-unique"):
        config({"stain": ["nuclei", "nuclei"]})


def test_synthesis_blur_defaults_by_calibration():
    """A calibrated sketch carries the measured blur: synthesis adds none unless told to."""
    from workflow_lib.workflow.config import synthesis_params

    c = {"datasets": {"d": {"images": "x", "simulations": {
        "cal": {"kind": "nuclei", "calibrate": True}, "own": {"kind": "nuclei"}}}}}
    validate(c, str(CONFIG / "config.schema.yaml"))
    ds = c["datasets"]["d"]
    assert ds["synthesis"]["blur"] is None
    assert synthesis_params(ds, ds["simulations"]["cal"])["blur"] == 0.0
    assert synthesis_params(ds, ds["simulations"]["own"])["blur"] == 1.0
    ds["synthesis"]["blur"] = 0.5
    assert synthesis_params(ds, ds["simulations"]["cal"])["blur"] == 0.5


def test_errors_survive_pickling():
    import pickle

    from workflow_lib.errors import ConfigError, InputError

    for err in (ConfigError("a.b", "bad"), InputError("x.tif", "broken")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)


def test_readme_config_example_is_valid():
    readme = (CONFIG.parent / "README.md").read_text()
    section = readme[readme.index("## Your own data"):]
    block = section[section.index("```yaml") + len("```yaml"):]
    config = yaml.safe_load(block[: block.index("```")])
    validate(config, str(CONFIG / "config.schema.yaml"))
    check_config(config)


def test_sorted_keys_is_recursive_and_keeps_lists():
    from workflow_lib.workflow.config import sorted_keys

    value = {"b": [{"z": 1, "a": 2}], "a": {"y": 1, "x": 2}}
    out = sorted_keys(value)
    assert list(out) == ["a", "b"] and list(out["a"]) == ["x", "y"]
    assert list(out["b"][0]) == ["a", "z"] and out == value
