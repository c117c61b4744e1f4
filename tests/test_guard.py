"""Annotation guard: the ceiling's shape, the capped local mean, and synthesis under the guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from workflow_lib.diffusion.settings import SamplingSettings
from workflow_lib.diffusion.guard import (
    GuardedDenoiser, ceiling, edge_band, guard_ceiling, keep_edges, local_mean,
)
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.synthesis import synthesize
from workflow_lib.diffusion.unet import UNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCHEDULE = NoiseSchedule.create("cosine", 1000)


def disc_objects(shape=(48, 48), centre=(24, 24), radius=6) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius**2)[None, None]


def test_ceiling_is_free_inside_and_falls_to_the_background():
    objects = disc_objects()
    c = ceiling(objects, -0.8, 1.0)[0, 0]
    assert np.all(c[objects[0, 0]] == 1.0)
    profile = c[24, 31:]                       # from the edge outwards
    assert np.all(np.diff(profile) <= 1e-6) and profile[-1] == pytest.approx(-0.8, abs=1e-3)
    assert ceiling(np.zeros((1, 1, 8, 8), bool), -0.5, 1.0).max() == -0.5
    # [0, 1] statistics map to image units: background 0.1 + 1 x noise 0.05 -> 2 * 0.15 - 1
    assert guard_ceiling(np.zeros((1, 1, 4, 4), bool), 0.1, 0.05, 1.0, 1.0).max() == pytest.approx(-0.7)


@pytest.mark.parametrize("shape", [(1, 1, 20, 24), (1, 2, 6, 10, 12)])
def test_local_mean_is_a_gaussian_blur(shape):
    x = torch.rand(shape)
    ours = local_mean(x, 1.0).numpy()
    ref = ndimage.gaussian_filter(x.numpy(), [0, 0] + [1.0] * (len(shape) - 2), mode="mirror", truncate=3.0)
    inner = (slice(None), slice(None)) + (slice(3, -3),) * (len(shape) - 2)
    np.testing.assert_allclose(ours[inner], ref[inner], atol=1e-5)


def test_guard_caps_a_hallucinated_blob_and_keeps_the_annotated_one():
    objects = disc_objects()
    cap = torch.from_numpy(ceiling(objects, -0.9, 1.0))
    yy, xx = np.mgrid[:48, :48]
    annotated = objects[0, 0]
    extra = ((yy - 10) ** 2 + (xx - 38) ** 2) <= 16        # a nucleus no mask holds
    target = torch.from_numpy(np.where(annotated | extra, 0.6, -0.95)[None, None].astype(np.float32))
    t, ab = 300, SCHEDULE.alpha_bar[300].item()
    x = torch.randn(1, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    predict = lambda x, t: (x - ab**0.5 * target) / (1 - ab) ** 0.5   # eps of x0 = target
    eps = GuardedDenoiser(predict, SCHEDULE, cap)(x, t)
    x0 = ((x - (1 - ab) ** 0.5 * eps) / ab**0.5)[0, 0].numpy()
    assert x0[10, 38] < -0.5                                   # the extra blob is gone
    np.testing.assert_allclose(x0[annotated], 0.6, atol=1e-4)   # the annotated one untouched
    assert np.all(local_mean(torch.from_numpy(x0)[None, None], 1.0).numpy()[0, 0] <= cap.numpy()[0, 0] + 2e-2)


def test_synthesis_under_the_guard_respects_the_ceiling():
    torch.manual_seed(0)
    net = UNet(2, 1, features=4).eval()
    sketch = np.where(disc_objects(), 0.5, -1.0).astype(np.float32)
    cap = ceiling(disc_objects(), -0.9, 1.0)
    params = SamplingSettings(t_start=300, sampler="dpmpp", steps=4, tile=(48, 48), overlap=0,
                              batch=1, blur=1.0, clip=True)
    out = synthesize(sketch, net, SCHEDULE, params, torch.device("cpu"), (0,), ceiling=cap)
    mean = local_mean(torch.from_numpy(out * 2 - 1), 1.0).numpy()
    assert np.all(mean[~disc_objects()] <= cap[~disc_objects()] + 2e-2)
    free = synthesize(sketch, net, SCHEDULE, params, torch.device("cpu"), (0,))
    assert not np.allclose(free, out)                          # the guard did act


def test_edge_band_is_one_at_mask_edges_and_zero_far_from_them():
    objects = disc_objects()
    band = edge_band(objects, 2.0)[0, 0]
    assert band[24, 30] == pytest.approx(np.exp(-0.5 * (0.5 / 2.0) ** 2))   # outermost pixel
    assert band[24, 31] == pytest.approx(np.exp(-0.5 * (0.5 / 2.0) ** 2))   # first outside
    assert band[24, 24] < 0.05 and band[0, 0] < 1e-6                       # centre, far away
    assert not edge_band(np.zeros((1, 1, 8, 8), bool), 2.0).any()


def _soft_disc(sigma):
    sharp = np.where(disc_objects(), 0.6, -0.8).astype(np.float32)
    return torch.from_numpy(ndimage.gaussian_filter(sharp, [0, 0, sigma, sigma]))


def test_keep_edges_sharpens_a_softened_estimate_toward_its_sketch():
    sketch, soft = _soft_disc(1.0), 0.5 * _soft_disc(3.0) + 0.1     # the model: softer, dimmer
    band = torch.from_numpy(edge_band(disc_objects(), 2.0))
    kept = keep_edges(soft, sketch, band, 1.0)
    rise = lambda img: float(img[0, 0, 24, 29] - img[0, 0, 24, 32])  # across the edge at x = 30.5
    target = rise(0.5 * sketch + 0.1)                               # the sketch, matched
    assert rise(kept) - rise(soft) > 0.2 * (target - rise(soft))     # a quarter of the way in one step
    far = band < 1e-4
    np.testing.assert_allclose(kept[far].numpy(), soft[far].numpy(), atol=1e-3)
    # an estimate that already is its sketch up to gain and offset stays as it is
    same = 0.5 * sketch + 0.1
    np.testing.assert_allclose(keep_edges(same, sketch, torch.ones_like(band), 1.0).numpy(),
                               same.numpy(), atol=1e-5)


def test_synthesis_with_edge_keeping_follows_the_sketch_at_mask_edges():
    torch.manual_seed(0)
    net = UNet(2, 1, features=4).eval()
    objects = disc_objects()
    sketch = ndimage.gaussian_filter(np.where(objects, 0.5, -0.9), [0, 0, 1, 1]).astype(np.float32)
    cap = ceiling(objects, -0.8, 1.0)
    params = SamplingSettings(t_start=300, sampler="dpmpp", steps=4, tile=(48, 48), overlap=0,
                              batch=1, blur=0.0, clip=True)
    band = edge_band(objects, 2.0)
    near = band > 0.5

    def misfit(out):
        """RMS of the image's local mean from its sketch's (affine-matched) near the edges."""
        img = local_mean(torch.from_numpy(out * 2 - 1), 1.0).numpy()[near]
        ref = local_mean(torch.from_numpy(sketch), 1.0).numpy()[near]
        gain, offset = np.polyfit(ref, img, 1)
        return float(np.sqrt(np.mean((img - gain * ref - offset) ** 2)))

    run = lambda **kw: synthesize(sketch, net, SCHEDULE, params, torch.device("cpu"), (0,), ceiling=cap, **kw)
    assert misfit(run(edge_band=band)) < 0.5 * misfit(run())


def test_samples_guarded_together_are_capped_as_alone():
    """Two samples in one batch: one needs many rounds of the cap, the other few; each is
    capped as it would be alone (the cap's stopping rule is per sample)."""
    objects = np.concatenate([disc_objects(), disc_objects(centre=(30, 20), radius=4)])
    cap = torch.from_numpy(ceiling(objects, -0.9, 1.0))
    rng = np.random.default_rng(0)
    x0 = torch.from_numpy(np.stack([
        np.full((1, 48, 48), 0.8), rng.uniform(-1, -0.85, (1, 48, 48))]).astype(np.float32))
    t, ab = 300, SCHEDULE.alpha_bar[300].item()
    x = torch.randn(2, 1, 48, 48, generator=torch.Generator().manual_seed(1))

    def guarded(x, target, ceiling, rows=None):
        eps = lambda x, t: (x - ab**0.5 * target) / (1 - ab) ** 0.5
        return GuardedDenoiser(eps, SCHEDULE, ceiling, rows=rows)(x, t)

    together = guarded(x, x0, cap, rows=[1, 1])
    for n in range(2):
        alone = guarded(x[n : n + 1], x0[n : n + 1], cap[n : n + 1])
        torch.testing.assert_close(together[n : n + 1], alone, atol=1e-5, rtol=0)
    # as one sample, the faint one is lowered for as long as the bright one needs
    assert (guarded(x, x0, cap)[1] - together[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="do not cover"):
        GuardedDenoiser(lambda x, t: x, SCHEDULE, cap, rows=[1])
