"""Tiled SDEdit synthesis: tiles vs whole image, seams, determinism, layouts and errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

from helpers import toy_sketch
from workflow_lib.diffusion.model_io import load_model, save_model
from workflow_lib.diffusion.pipeline import SynthesisPipeline
from workflow_lib.diffusion.settings import SamplingSettings
from workflow_lib.diffusion.samplers import sample, sdedit_start
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.synthesis import channel_batch, synthesize, to_layout
from workflow_lib.diffusion.tiling import TiledDenoiser, tile_starts
from workflow_lib.diffusion.unet import UNet
from workflow_lib.errors import InputError
from workflow_lib.io import read_tiff, write_tiff
from workflow_lib.simulate import get_kind
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow.stages import diffusion as stages
from workflow_lib.workflow.runner import Files, Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
SCHEDULE = NoiseSchedule.create("cosine", 1000)
PARAMS = {"t_start": 40, "sampler": "dpmpp", "steps": 3, "tile": [32, 32], "overlap": 8,
          "batch": 4, "blur": 1.0, "clip": True, "seed": 0, "guard": {"enabled": False, "margin": 2.0, "sigma": 1.0},
          "texture": False,
          "annotation_check": {"max_unannotated_pct": 2.0, "max_boundary_offset_px": 0.5, "redraws": 3}}


def synthesize_job(folder, params=PARAMS, i=0, kind="nuclei") -> Job:
    """Rule synthesize_chunk's job for the one sample ``i``: m.pt + s.tif, l.tif (+ c.json) ->
    o.tif, o.json in ``folder``, on the CPU."""
    files = {"sketch": [str(folder / "s.tif")], "labels": [str(folder / "l.tif")],
             "image": [str(folder / "o.tif")], "check": [str(folder / "o.json")]}
    return Job(
        Files(model=folder / "m.pt", sketches=folder / "sketched.json",
              labels=folder / "simulated.json", calibration=folder / "c.json"),
        Files(folder / "synthesized.json"),
        SimpleNamespace(synthesis=params, kind=kind, device="cpu", require_gpu=False, files=files),
        SimpleNamespace(chunk=f"{i}-{i}"),
    )


def _sampling(**changes) -> SamplingSettings:
    """PARAMS' sampling settings with ``changes``."""
    return cfg.synthesis_settings({**PARAMS, **changes}).sampling


def _pipeline(kind: str = "nuclei", params=PARAMS) -> SynthesisPipeline:
    return SynthesisPipeline(_net(), SCHEDULE, cfg.synthesis_settings(params), get_kind(kind), CPU)


def _net(spatial_dims: int = 2, channels: int = 1) -> UNet:
    torch.manual_seed(0)
    return UNet(spatial_dims, channels, features=4).eval()


def _sketch(shape, seed=0) -> np.ndarray:
    """A nuclei sketch in [-1, 1] (helpers.toy_sketch) of shape (N, C, *spatial)."""
    return np.broadcast_to(toy_sketch(shape[2:], seed)[None], shape).copy()


def test_tile_starts_cover_the_axis_with_overlap():
    assert tile_starts(100, 32, 8) == [0, 23, 45, 68]
    assert tile_starts(30, 32, 8) == [0]
    starts = tile_starts(512, 128, 32)
    assert starts[0] == 0 and starts[-1] == 512 - 128
    assert all(b - a <= 128 - 32 for a, b in zip(starts, starts[1:]))


def test_window_blend_is_a_partition_of_unity():
    x = torch.randn(2, 1, 70, 50)
    identity = TiledDenoiser(lambda x, t: x, x.shape[2:], [32, 32], 8, 3, CPU)
    assert identity.tiles_per_image > 4
    torch.testing.assert_close(identity(x, 5), x)


def test_tiles_share_their_images_normalisation():
    """A bright strip in the first of four tiles: tiles normalised each by its own statistics
    draw the dark background they share at different levels (the demo's tissue seam); with
    their image's statistics shared they agree. Level = mean difference from the network's
    output on the whole image, in each tile's centre; spread = its range over the tiles."""
    spreads = {"shared": [], "own": []}
    for seed in range(3):
        torch.manual_seed(seed)
        net = UNet(2, 1, features=4, levels=3).eval()
        x = torch.full((1, 1, 64, 192), -0.8) + 0.1 * torch.randn(1, 1, 64, 192)
        x[..., :48] = 0.9
        with torch.inference_mode():
            whole = net(x, torch.tensor([300]))
            tiled = TiledDenoiser(net, x.shape[2:], [64, 64], 16, 4, CPU)
            assert tiled.tiles_per_image == 4 and tiled.shared_normalisation
            shared = tiled(x, 300)
            own = torch.zeros_like(x)  # the old way: every tile normalised by itself
            for sl, window in zip(tiled.slices, tiled.windows):
                own[(..., *sl)] += net(x[(..., *sl)], torch.tensor([300])) * window
            own = own * tiled.inv_weight
        for name, out in (("shared", shared), ("own", own)):
            levels = [float((out - whole)[..., 16:48, sl[1].start + 16 : sl[1].stop - 16].mean())
                      for sl in tiled.slices]
            spreads[name].append(max(levels) - min(levels))
    assert np.mean(spreads["shared"]) < 0.5 * np.mean(spreads["own"]), spreads


def test_tiled_equals_untiled_when_one_tile_covers_the_image():
    net, sketch = _net(), _sketch((1, 1, 40, 48))
    tiled = synthesize(sketch, net, SCHEDULE, _sampling(tile=[64, 64]), CPU, (3,))
    # the same SDEdit without any tiling code: blur, noise, sample with the bare network
    from scipy import ndimage

    from workflow_lib.device import generator

    x0 = torch.from_numpy(ndimage.gaussian_filter(sketch, [0, 0, 1, 1]))
    gen = generator(CPU, 3)
    with torch.inference_mode():
        x = sdedit_start(x0, SCHEDULE, 40, gen)
        out = sample(lambda x, t: net(x, torch.tensor([t])), x, SCHEDULE, 40, "dpmpp", 3, gen)
    np.testing.assert_allclose(tiled, (out.numpy() + 1) / 2, atol=1e-5)


def _seam_energy(img: np.ndarray, borders: list[int]) -> tuple[float, float]:
    """Squared steps of the column-mean profile across the given columns and elsewhere.

    Averaging over Y leaves the per-tile offsets a seam consists of and removes most noise.
    """
    step = np.diff(img.mean(axis=0)) ** 2  # step[j]: from column j to j + 1
    at = np.zeros(step.shape, bool)
    for b in borders:
        at[b - 2 : b + 1] = True
    return step[at].mean(), step[~at].mean()


def test_no_seams_at_tile_borders():
    net = _net()
    sketch = _sketch((1, 1, 48, 144), seed=1)
    params = _sampling(tile=[48, 48], overlap=16, t_start=400)
    out = synthesize(sketch, net, SCHEDULE, params, CPU, (0,))[0, 0]
    starts = tile_starts(144, 48, 16)
    borders = starts[1:] + [s + 48 for s in starts[:-1]]
    at, inside = _seam_energy(out, borders)
    assert at <= inside
    # the control: tiles denoised on their own and pasted side by side show their edges
    hard = np.concatenate(
        [synthesize(sketch[..., i : i + 48], net, SCHEDULE, params, CPU, (0,))[0, 0] for i in (0, 48, 96)],
        axis=-1,
    )
    at_hard, inside_hard = _seam_energy(hard, [48, 96])
    assert at_hard > 1.5 * inside_hard


def test_synthesis_is_deterministic_with_a_seed():
    net, sketch = _net(), _sketch((1, 1, 48, 48))
    a = synthesize(sketch, net, SCHEDULE, _sampling(), CPU, (0, 1))
    b = synthesize(sketch, net, SCHEDULE, _sampling(), CPU, (0, 1))
    c = synthesize(sketch, net, SCHEDULE, _sampling(), CPU, (0, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1


def test_3d_synthesis_pads_thin_axes():
    out = synthesize(_sketch((1, 1, 5, 20, 36)), _net(3), SCHEDULE,
                     _sampling(tile=[8, 16, 16]), CPU, (0,))
    assert out.shape == (1, 1, 5, 20, 36)


@pytest.mark.parametrize(
    "shape, axes, ndim, want, time",
    [
        ((20, 24), "YX", 2, (1, 1, 20, 24), False),
        ((2, 20, 24), "CYX", 2, (1, 2, 20, 24), False),
        ((3, 20, 24), "TYX", 2, (3, 1, 20, 24), True),
        ((4, 2, 20, 24), "ZCYX", 3, (1, 2, 4, 20, 24), False),
        ((3, 4, 2, 20, 24), "TZCYX", 3, (3, 2, 4, 20, 24), True),
        ((2, 20, 24), "", 2, (1, 2, 20, 24), False),
    ],
)
def test_to_layout(shape, axes, ndim, want, time):
    arr, has_time = to_layout(np.zeros(shape, np.float32), axes, ndim)
    assert arr.shape == want and has_time == time


def test_channel_rule():
    sketch = np.zeros((3, 2, 16, 16), np.float32)
    assert channel_batch(sketch, 2).shape == (3, 2, 16, 16)
    assert channel_batch(sketch, 1).shape == (6, 1, 16, 16)
    with pytest.raises(InputError, match="sketch has 2 channels but the model was trained on 3"):
        channel_batch(sketch, 3, "s.tif")


def test_model_round_trip_and_missing_model(tmp_path):
    net = _net(3, channels=2)
    save_model(tmp_path / "model.pt", net, {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 3})
    loaded, meta = load_model(tmp_path / "model.pt", CPU)
    assert meta["ndim"] == 3 and loaded.config == net.config
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(InputError, match="missing.pt: model file not found"):
        load_model(tmp_path / "missing.pt", CPU)
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(InputError, match="junk.pt: not a loadable model"):
        load_model(tmp_path / "junk.pt", CPU)


@pytest.mark.parametrize(
    "model_channels, shape, axes",
    [(1, (40, 40), "CYX"), (1, (2, 40, 40), "CYX"), (1, (3, 1, 40, 40), "TCYX"), (2, (2, 40, 40), "CYX")],
)
def test_synthesize_stage_keeps_layout_and_axes(tmp_path, model_channels, shape, axes):
    save_model(tmp_path / "m.pt", _net(2, model_channels),
               {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    sketch = _sketch((1, 1, 40, 40))[0, 0]
    write_tiff(tmp_path / "s.tif", np.broadcast_to(sketch, shape[:-2] + (40, 40)).copy()
               if len(shape) > 2 else sketch[None], axes if len(shape) > 2 else "CYX")
    # labels of the sketch's layout: a disc, so the annotation check has something to check
    labels = np.zeros((1, *shape[-3:]) if len(shape) == 2 else shape, np.uint16)
    labels[..., 15:25, 15:25] = 1
    write_tiff(tmp_path / "l.tif", labels, axes if len(shape) > 2 else "CYX")
    kind = "timeseries" if "T" in axes else "multichannel" if shape[0] == 2 else "nuclei"
    stages.synthesize_chunk(synthesize_job(tmp_path, kind=kind))
    out, out_axes = read_tiff(tmp_path / "o.tif")
    src, src_axes = read_tiff(tmp_path / "s.tif")
    assert out.shape == src.shape and out_axes == src_axes and out.dtype == np.float32
    check = json.loads((tmp_path / "o.json").read_text())
    assert isinstance(check["flagged"], bool)   # an untrained model: whatever it drew, checked


def test_synthesize_stage_rejects_wrong_channels(tmp_path):
    save_model(tmp_path / "m.pt", _net(2, 2), {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    write_tiff(tmp_path / "s.tif", np.zeros((3, 32, 32), np.float32), "CYX")
    write_tiff(tmp_path / "l.tif", np.zeros((1, 32, 32), np.uint16), "CYX")
    with pytest.raises(InputError, match="s.tif: sketch has 3 channels but the model was trained on 2"):
        stages.synthesize_chunk(synthesize_job(tmp_path))


def test_device_choice(monkeypatch, caplog):
    from workflow_lib import device
    from workflow_lib.device import pick_device
    from workflow_lib.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    with caplog.at_level("INFO", logger="cellsynth"):
        assert pick_device("cpu").type == "cpu"
    assert "torch.cuda.is_available()=False" in caplog.text
    with pytest.raises(ConfigError, match="'require_gpu': is true but no GPU was found"):
        pick_device("auto", require_gpu=True)
    with pytest.raises(ConfigError, match="'device': 'cuda' was requested but is not available"):
        pick_device("cuda")


def test_annotation_check_flags_an_object_no_mask_holds():
    from helpers import discs

    centres = [(20, 20), (20, 70), (70, 30), (70, 75)]
    labels = discs(centres, 8, (96, 96)).astype(np.uint16)[None]
    pipeline = _pipeline()
    rng = np.random.default_rng(0)
    clean = (0.1 + 0.7 * (discs(centres, 8, (96, 96)) > 0) + rng.normal(0, 0.02, (96, 96)))[None]
    assert not pipeline.check(labels, clean.astype(np.float32))["flagged"]
    extra = (0.1 + 0.7 * (discs(centres + [(45, 48)], 8, (96, 96)) > 0)
             + rng.normal(0, 0.02, (96, 96)))[None]
    check = pipeline.check(labels, extra.astype(np.float32))
    assert check["flagged"] and check["unannotated_pct"] == 25.0
    assert "in no mask" in check["problems"][0]


def _flag_first_draws(monkeypatch, flagged: int) -> list[np.ndarray]:
    """The annotation check flags the first ``flagged`` draws and passes the others (an
    untrained model's images would fail it); returns the drawn images."""
    drawn = []

    def flag(self, labels, image):
        drawn.append(image.copy())
        bad = len(drawn) <= flagged
        return {"flagged": bad, "problems": [f"draw {len(drawn) - 1} flagged by the test"] if bad else []}

    monkeypatch.setattr(SynthesisPipeline, "check", flag)
    return drawn


def _synthesis_inputs(folder) -> None:
    save_model(folder / "m.pt", _net(), {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    write_tiff(folder / "s.tif", _sketch((1, 1, 48, 48))[0], "CYX")
    labels = np.zeros((1, 48, 48), np.uint16)
    labels[0, 12:36, 12:36] = 1
    write_tiff(folder / "l.tif", labels, "CYX")


def test_a_flagged_image_is_redrawn_with_derived_seeds(tmp_path, monkeypatch, caplog):
    """The first draw is flagged: the sample is drawn again from a seed of its own, delivered
    unflagged, and its check JSON says what was redrawn and why; the same config draws the same
    image again."""
    _synthesis_inputs(tmp_path)
    drawn = _flag_first_draws(monkeypatch, flagged=1)
    stages.synthesize_chunk(synthesize_job(tmp_path, i=2))
    out, _ = read_tiff(tmp_path / "o.tif")
    check = json.loads((tmp_path / "o.json").read_text())
    assert len(drawn) == 2 and not check["flagged"]
    assert check["redrawn"] == [{"seeds": [0, 2], "problems": ["draw 0 flagged by the test"]}]
    assert check["seeds"] == [0, 2, 2, 1]
    np.testing.assert_array_equal(out, drawn[1][0])
    assert np.abs(drawn[0] - drawn[1]).max() > 0.01   # new noise, same labels and sketch
    drawn.clear()
    stages.synthesize_chunk(synthesize_job(tmp_path, i=2))
    np.testing.assert_array_equal(read_tiff(tmp_path / "o.tif")[0], out)


def test_redraws_are_bounded_and_the_job_says_so(tmp_path, monkeypatch, caplog):
    _synthesis_inputs(tmp_path)
    drawn = _flag_first_draws(monkeypatch, flagged=99)
    params = {**PARAMS, "annotation_check": {**PARAMS["annotation_check"], "redraws": 2}}
    with caplog.at_level("WARNING", logger="cellsynth"):
        stages.synthesize_chunk(synthesize_job(tmp_path, params=params))
    check = json.loads((tmp_path / "o.json").read_text())
    assert len(drawn) == 3 and check["flagged"] and len(check["redrawn"]) == 2
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "flagged after 3 draws" in warnings[0].getMessage()
    assert "annotation_check.redraws: 2" in warnings[0].getMessage()
    assert "left out of exports" in warnings[0].getMessage()


def test_synthesize_stage_matches_the_real_texture(tmp_path, caplog):
    from workflow_lib.calibrate.texture import measure_texture

    save_model(tmp_path / "m.pt", _net(2, 1), {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    write_tiff(tmp_path / "s.tif", _sketch((1, 1, 64, 64))[0], "CYX")
    labels = np.zeros((1, 64, 64), np.uint16)
    labels[0, 20:44, 20:44] = 1
    write_tiff(tmp_path / "l.tif", labels, "CYX")
    texture = {"fine": {"objects": 0.05, "background": 0.05}, "mid": {"objects": 1.0, "background": 1.0}}
    calibration = tmp_path / "c.json"
    job = synthesize_job(tmp_path, params={**PARAMS, "texture": True})

    calibration.write_text(json.dumps({"texture": texture}))
    stages.synthesize_chunk(synthesize_job(tmp_path))   # texture off
    plain, _ = read_tiff(tmp_path / "o.tif")
    stages.synthesize_chunk(job)
    out, _ = read_tiff(tmp_path / "o.tif")
    check = json.loads((tmp_path / "o.json").read_text())
    assert check["texture"][0]["background"]["noise_added"] > 0
    # the untrained model's background sits near 0, where [0, 1] clips part of the noise
    before, after = (measure_texture(np.squeeze(a), labels[0] > 0)["fine"]["background"] for a in (plain, out))
    assert after > 1.5 * before

    calibration.write_text(json.dumps({"background": {"level": 0.1}}))  # made before texture
    with caplog.at_level("WARNING", logger="cellsynth"):
        stages.synthesize_chunk(job)
    assert "forcerun calibrate_dataset" in json.loads((tmp_path / "o.json").read_text())["texture"]
    assert "texture not matched" in caplog.text


def test_guard_and_texture_with_a_two_channel_model(tmp_path):
    """Nuclei labels (one channel) guard every channel of a 2-channel model's sketch; texture
    matching, measured on one channel, is skipped and says why."""
    save_model(tmp_path / "m.pt", _net(2, 2), {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    write_tiff(tmp_path / "s.tif", _sketch((1, 2, 40, 40))[0], "CYX")
    labels = np.zeros((1, 40, 40), np.uint16)
    labels[0, 12:28, 12:28] = 1
    write_tiff(tmp_path / "l.tif", labels, "CYX")
    (tmp_path / "c.json").write_text(json.dumps({
        "background": {"level": 0.1, "noise_local_mean": 0.02}, "edge_sigma_px": 1.5,
        "texture": {"fine": {"objects": 0.03, "background": 0.03}, "mid": {"objects": 0.02, "background": 0.01}}}))
    params = {**PARAMS, "guard": {"enabled": True, "margin": 2.0, "sigma": 1.0, "edge_band": 2.0}, "texture": True}
    stages.synthesize_chunk(synthesize_job(tmp_path, params=params))
    out, _ = read_tiff(tmp_path / "o.tif")
    assert out.shape == (2, 40, 40)
    # far from the square the guard holds both channels' local mean at the ceiling
    ceiling = 0.1 + 2.0 * 0.02
    far = ndimage.gaussian_filter(out, (0, 1, 1))[:, :4, :4]
    assert far.max() <= ceiling + 0.02
    assert "single-channel model" in json.loads((tmp_path / "o.json").read_text())["texture"]


def test_texture_of_the_nucleus_channel_only(tmp_path):
    """multichannel through a one-channel nuclei model: the nucleus channel (1) gets the real
    nuclei's texture, the cell channel (0) is left as drawn."""
    save_model(tmp_path / "m.pt", _net(2, 1), {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    write_tiff(tmp_path / "s.tif", _sketch((1, 2, 48, 48))[0], "CYX")
    labels = np.zeros((2, 48, 48), np.uint16)
    labels[0, 8:40, 8:40] = 1
    labels[1, 16:32, 16:32] = 1
    write_tiff(tmp_path / "l.tif", labels, "CYX")
    (tmp_path / "c.json").write_text(json.dumps({
        "texture": {"fine": {"objects": 0.05, "background": 0.05}, "mid": {"objects": 1.0, "background": 1.0}}}))
    stages.synthesize_chunk(synthesize_job(tmp_path, kind="multichannel"))
    plain, _ = read_tiff(tmp_path / "o.tif")
    stages.synthesize_chunk(synthesize_job(tmp_path, params={**PARAMS, "texture": True}, kind="multichannel"))
    out, _ = read_tiff(tmp_path / "o.tif")
    np.testing.assert_array_equal(out[0], plain[0])
    assert np.abs(out[1] - plain[1]).max() > 0.01
    assert len(json.loads((tmp_path / "o.json").read_text())["texture"]) == 1


# an untrained model's images would fail the annotation check and be redrawn
UNCHECKED = {**PARAMS, "annotation_check": {"max_unannotated_pct": 1000,
                                            "max_boundary_offset_px": 100, "redraws": 3}}


def _chunk_job(folder, files, chunk, params=UNCHECKED) -> Job:
    return Job(
        Files(model=folder / "m.pt", sketches=folder / "sketched.json",
              labels=folder / "simulated.json"),
        Files(folder / f"synthesized-{chunk}.json"),
        SimpleNamespace(synthesis=params, kind="nuclei", device="cpu", require_gpu=False,
                        files=files),
        SimpleNamespace(chunk=chunk),
    )


def test_a_sample_is_the_same_whatever_the_chunking(tmp_path):
    """Three samples in one job or one per job: the same images, bit for bit (each keeps its
    (seed, i)); the job clears the samples' stale files first and writes its manifest last."""
    from helpers import chunk_files

    save_model(tmp_path / "m.pt", _net(), {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    together, alone = chunk_files(tmp_path / "a", range(3)), chunk_files(tmp_path / "b", range(3))
    for files in (together, alone):
        for i in range(3):
            write_tiff(files["sketch"][i], _sketch((1, 1, 40, 40), seed=i)[0], "CYX")
            labels = np.zeros((1, 40, 40), np.uint16)
            labels[0, 10:30, 10:30] = 1
            write_tiff(files["labels"][i], labels, "CYX")
    write_tiff(together["image"][1], np.zeros((1, 40, 40), np.float32), "CYX")  # a stale image
    stages.synthesize_chunk(_chunk_job(tmp_path, together, "0-2"))
    for i in range(3):
        one = {name: paths[i:i + 1] for name, paths in alone.items()}
        stages.synthesize_chunk(_chunk_job(tmp_path, one, f"{i}-{i}"))
    for a, b in zip(together["image"], alone["image"]):
        np.testing.assert_array_equal(read_tiff(a)[0], read_tiff(b)[0])
    assert read_tiff(together["image"][1])[0].max() > 0
    manifest = json.loads((tmp_path / "synthesized-0-2.json").read_text())
    assert manifest["samples"] == [0, 1, 2] and [r["sample"] for r in manifest["records"]] == [0, 1, 2]
    assert json.loads(Path(together["check"][2]).read_text())["seeds"] == [0, 2]


def test_the_pipeline_object_draws_what_the_stage_draws(tmp_path):
    """bench and tests call the same object the stage uses: same sketch, labels and seeds, same
    image."""
    save_model(tmp_path / "m.pt", _net(), {"model": {"schedule": "cosine", "timesteps": 1000}, "ndim": 2})
    _synthesis_inputs(tmp_path)
    stages.synthesize_chunk(synthesize_job(tmp_path, i=4))
    pipeline = SynthesisPipeline.from_file(tmp_path / "m.pt", cfg.synthesis_settings(PARAMS),
                                           get_kind("nuclei"), CPU)
    sketch, _ = to_layout(*read_tiff(tmp_path / "s.tif"), 2)
    (drawn,) = pipeline([sketch], [read_tiff(tmp_path / "l.tif", axes="CYX")[0]], [(0, 4)])
    np.testing.assert_array_equal(drawn.image, read_tiff(tmp_path / "o.tif", axes="CYX")[0])
    assert drawn.report == json.loads((tmp_path / "o.json").read_text())


def test_samples_drawn_together_are_drawn_as_alone(monkeypatch):
    """Three one-tile samples share the network calls of one batch: each gets the image it
    gets alone (to float rounding: a batched convolution sums in another order), its own
    noise, guard and redraw; only the flagged one is drawn again."""
    params = {**PARAMS, "guard": {"enabled": True, "margin": 2.0, "sigma": 1.0, "edge_band": 2.0}}
    calibration = {"background": {"level": 0.1, "noise_local_mean": 0.02}, "edge_sigma_px": 1.5}
    sketches = [_sketch((1, 1, 32, 32), seed=i)[0][None] for i in range(3)]
    labels = [np.zeros((1, 32, 32), np.uint16) for _ in range(3)]
    for i, lab in enumerate(labels):
        lab[0, 4 + 4 * i : 20 + 4 * i, 8:24] = 1
    pipelines = {batch: SynthesisPipeline(_net(), SCHEDULE, cfg.synthesis_settings({**params, "batch": batch}),
                                          get_kind("nuclei"), CPU, calibration)
                 for batch in (1, 4)}
    assert [pipelines[b].group_size(sketches[0].shape) for b in (1, 4)] == [1, 4]

    def flag_sample_1(self, lab, image):
        bad = lab is labels[1] and not any(c.get("bad") for c in checked)
        checked.append({"bad": bad})
        return {"flagged": bad, "problems": ["flagged by the test"] if bad else []}

    checked: list[dict] = []
    monkeypatch.setattr(SynthesisPipeline, "check", flag_sample_1)
    together = pipelines[4](sketches, labels, [(0, i) for i in range(3)])
    assert len(checked) == 4                                   # 3 draws, then sample 1 again
    checked.clear()
    alone = pipelines[1](sketches, labels, [(0, i) for i in range(3)])
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.image, b.image, atol=1e-5, rtol=0)
        assert a.report["seeds"] == b.report["seeds"]
    assert together[1].report["seeds"] == [0, 1, 2, 1] and together[0].report["seeds"] == [0, 0]
    assert np.abs(together[0].image - together[2].image).max() > 0.01


def test_group_size_fills_a_network_call():
    pipeline = _pipeline(params={**PARAMS, "tile": [32, 32], "batch": 8})
    pipeline.device = torch.device("cuda")                     # read, never used here
    assert pipeline.group_size((1, 1, 32, 32)) == 8            # one tile each
    assert pipeline.group_size((1, 1, 20, 24)) == 8            # padded to one tile
    assert pipeline.group_size((1, 2, 32, 32)) == 4            # two channels, one model channel
    assert pipeline.group_size((5, 1, 32, 32)) == 1            # a time series of 5 frames
    assert pipeline.group_size((1, 1, 48, 48)) == 2            # 4 tiles each
    assert pipeline.group_size((1, 1, 96, 96)) == 1            # 16 tiles: more than a call
    big = _pipeline(params={**PARAMS, "tile": [256, 256], "batch": 8})
    assert big.group_size((1, 1, 128, 128)) == 8
    assert big.group_size((1, 1, 256, 256)) == 2               # the CPU's pixel budget
    big.device = torch.device("cuda")
    assert big.group_size((1, 1, 256, 256)) == 8


def test_one_tile_images_go_through_the_network_in_batches():
    shapes = []
    tiled = TiledDenoiser(_net(), (32, 32), [32, 32], 8, 3, CPU)
    tiled._net = lambda x, t: shapes.append(x.shape[0]) or x
    x = torch.zeros(7, 1, 32, 32)
    assert tiled(x, 10).shape == x.shape and shapes == [3, 3, 1]


def test_stream_draws_each_group_as_it_is_read():
    """A chunk job's samples are read as they are drawn: the first group's images come out
    before the samples after it are read (one look ahead)."""
    pipeline = _pipeline(params={**UNCHECKED, "batch": 2})
    read = []

    def samples():
        for i in range(5):
            read.append(i)
            lab = np.zeros((1, 32, 32), np.uint16)
            lab[0, 8:24, 8:24] = 1
            yield _sketch((1, 1, 32, 32), seed=i)[0][None], lab, (0, i), f"s{i}"

    drawn = pipeline.stream(samples())
    assert next(drawn)[0] == "s0" and read == [0, 1, 2]
    assert [name for name, _ in drawn] == ["s1", "s2", "s3", "s4"] and read == [0, 1, 2, 3, 4]
