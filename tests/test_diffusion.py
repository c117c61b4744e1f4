"""Noise schedule, forward process, U-Net shape contracts and the samplers."""

from __future__ import annotations

import math

import pytest
import torch

from workflow_lib.diffusion.samplers import (
    fast_timesteps, network_evaluations, randn_like, sample, sdedit_start,
)
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.unet import UNet, norm_statistics, pixel_shuffle

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COSINE = NoiseSchedule.create("cosine", 1000)



def test_cosine_schedule_values():
    ab = COSINE.alpha_bar
    assert ab[399].item() == pytest.approx(0.65, abs=0.01)
    assert COSINE.betas.min() >= 1e-4 and COSINE.betas.max() <= 0.9999
    assert torch.all(ab[1:] < ab[:-1])
    # the first step is nearly noise-free, the last nearly pure noise
    assert ab[0] > 0.999 and ab[-1] < 1e-4


def test_linear_schedule_keeps_less_of_the_sketch():
    assert NoiseSchedule.create("linear", 1000).alpha_bar[399].item() == pytest.approx(0.20, abs=0.01)


def test_q_sample_statistics():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.full((4, 1, 64, 64), 0.5)
    t = torch.full((4,), 399)
    xt = COSINE.q_sample(x0, t, torch.randn(x0.shape, generator=gen))
    ab = COSINE.alpha_bar[399].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 0.5, abs=0.02)
    assert xt.std().item() == pytest.approx(math.sqrt(1 - ab), abs=0.02)


@pytest.mark.parametrize(
    "spatial_dims, shape",
    [(2, (2, 1, 32, 48)), (2, (1, 3, 16, 16)), (3, (1, 1, 8, 16, 24)), (3, (2, 2, 16, 16, 16))],
)
def test_unet_shape_contract(spatial_dims, shape):
    net = UNet(spatial_dims, channels=shape[1], features=4)
    out = net(torch.randn(shape), torch.randint(0, 1000, (shape[0],)))
    assert out.shape == shape
    assert net.multiple == 8


def test_unet_size_matches_the_original():
    n = sum(p.numel() for p in UNet(2).parameters())
    assert 0.6e6 < n < 1.2e6  # ~0.9 M in the original


def test_pixel_shuffle_matches_torch_in_2d_and_inverts_unshuffle_in_3d():
    x = torch.randn(2, 8, 5, 6)
    assert torch.equal(pixel_shuffle(x), torch.nn.functional.pixel_shuffle(x, 2))
    y = torch.randn(1, 2, 4, 6, 8)
    # 3D unshuffle by reshaping: each 2x2x2 block -> 8 channels
    blocks = y.reshape(1, 2, 2, 2, 3, 2, 4, 2).permute(0, 1, 3, 5, 7, 2, 4, 6)
    assert torch.equal(pixel_shuffle(blocks.reshape(1, 16, 2, 3, 4)), y)


def _gaussian_denoiser(mu: float, s: float, schedule: NoiseSchedule, calls: list[int]):
    """The exact noise estimate for data ~ N(mu, s^2): a sampler test without a network."""
    ab_all = schedule.alpha_bar.tolist()

    def denoise(x: torch.Tensor, t: int) -> torch.Tensor:
        calls.append(t)
        ab = ab_all[t]
        x0 = mu + ab**0.5 * s**2 / (ab * s**2 + 1 - ab) * (x - ab**0.5 * mu)
        return (x - ab**0.5 * x0) / (1 - ab) ** 0.5

    return denoise


def _sample_gaussian(sampler: str, steps: int, calls: list[int]) -> torch.Tensor:
    """SDEdit from t = 400 with guides drawn from the data distribution N(0.3, 0.2^2)."""
    gen = torch.Generator().manual_seed(0)
    x0 = 0.3 + 0.2 * torch.randn(20000, generator=gen, dtype=torch.float64)
    x = sdedit_start(x0, COSINE, 400, gen)
    return sample(_gaussian_denoiser(0.3, 0.2, COSINE, calls), x, COSINE, 400, sampler, steps, gen, clip=False)


@pytest.mark.parametrize("sampler, steps, tol", [("ddpm", 0, 0.01), ("ddim", 20, 0.015), ("dpmpp", 20, 0.005)])
def test_samplers_keep_the_data_distribution(sampler, steps, tol):
    calls: list[int] = []
    out = _sample_gaussian(sampler, steps, calls)
    assert out.mean().item() == pytest.approx(0.3, abs=0.01)
    assert out.std().item() == pytest.approx(0.2, abs=tol)
    assert len(calls) == network_evaluations(sampler, 400, steps)


def test_dpm_solver_beats_ddim_at_equal_network_calls():
    err = {s: abs(_sample_gaussian(s, 10, []).std().item() - 0.2) for s in ("ddim", "dpmpp")}
    assert err["dpmpp"] < err["ddim"]


def test_fast_sampler_needs_20x_fewer_network_calls():
    assert network_evaluations("ddpm", 400, 20) == 400
    assert network_evaluations("dpmpp", 400, 20) == 20
    assert fast_timesteps(400, 20) == list(range(399, 0, -20))
    assert fast_timesteps(5, 50) == [4, 3, 2, 1, 0]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp"])
def test_samplers_are_deterministic_with_a_seed(sampler):
    net = UNet(2, features=4).eval()

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        x = sdedit_start(torch.zeros(1, 1, 16, 16), COSINE, 8, gen)
        with torch.inference_mode():
            return sample(lambda x, t: net(x, torch.tensor([t])), x, COSINE, 8, sampler, 3, gen)

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1


@pytest.mark.parametrize("dims", [2, 3])
def test_norm_statistics_recorded_and_given_back_reproduce_the_network(dims):
    """Recording an input's statistics and normalising with them is InstanceNorm itself; other
    statistics change the output (what lets tiles share their image's)."""
    torch.manual_seed(0)
    net = UNet(dims, 1, features=4, levels=2).eval()
    x = torch.randn(2, 1, *([8] * (dims - 2)), 16, 16)
    t = torch.tensor([10, 500])
    with torch.inference_mode():
        own = net(x, t)
        with norm_statistics(net) as recorded:
            again = net(x, t)
        assert len(recorded) == sum(1 for m in net.modules() if "InstanceNorm" in type(m).__name__)
        with norm_statistics(net, recorded):
            shared = net(x, t)
        swapped = [(m.flip(0), v.flip(0)) for m, v in recorded]  # the other input's statistics
        with norm_statistics(net, swapped):
            other = net(x, t)
    torch.testing.assert_close(again, own, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shared, own, atol=1e-5, rtol=1e-5)
    assert float((other - own).abs().mean()) > 1e-3
    first = recorded[0][0]
    assert first.shape == (2, 4)


def test_per_sample_generators_draw_each_samples_own_noise():
    """Samples batched together get, bit for bit, the noise each draws alone."""
    alone = [torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(s))
             for s, n in ((1, 2), (2, 1))]
    gens = [(torch.Generator().manual_seed(s), n) for s, n in ((1, 2), (2, 1))]
    together = randn_like(torch.empty(3, 1, 8, 8), gens)
    assert torch.equal(together, torch.cat(alone))
    with pytest.raises(ValueError, match="cover 3 rows of a batch of 4"):
        randn_like(torch.empty(4, 1, 8, 8), gens)
