"""No silent wrong result: values a model cannot mean are refused with the fix, one bad batch changes nothing, and
edge values are refused or defined (issue 19, classes 1, 2 and 7)."""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from course_lib.config import one_thread
from course_lib.autoencoders import (PCA, ConvAutoencoder, MLPAutoencoder, add_gaussian_noise, ae_loss,
                                    fit_code_gaussian, random_corruption)
from course_lib.conditional import ConditionalVAE, GuidedModel
from course_lib.data import check_images, make_loader
from course_lib.diffusion import (DiffusionSchedule, ddim_sample, ddim_update, ddpm_sample, diffusion_loss,
                                  forward_trajectory, q_sample)
from course_lib.gans import GAN, DCGANDiscriminator, DCGANGenerator, GANStep, MLPDiscriminator, MLPGenerator
from course_lib.latent_diffusion import LatentAutoencoder, encode_dataset
from course_lib.metrics import frechet_distance
from course_lib.pix2pix import PatchDiscriminator, Pix2Pix, Pix2PixGenerator, Pix2PixStep
from course_lib.training import Callback, fit
from course_lib.unet import UNet
from course_lib.vae import MLPVAE, bernoulli_nll, slerp, vae_step


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is as fast, and much faster when other programs share the cores."""
    with one_thread():
        yield


def digits(n=8):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def with_nan(x, where=(1, 0, 5, 7)):
    x = x.clone()
    x[where] = float("nan")
    return x


# ---------------------------------------------------------------- class 1: values a model cannot mean

MODELS_ON_IMAGES = {
    "MLP autoencoder": lambda x: MLPAutoencoder(latent_dim=2)(x),
    "conv autoencoder": lambda x: ConvAutoencoder(latent_dim=4, channels=4)(x),
    "VAE": lambda x: MLPVAE(latent_dim=2).encode(x),
    "DCGAN discriminator": lambda x: DCGANDiscriminator(width=4)(x),
    "pix2pix": lambda x: Pix2Pix(Pix2PixGenerator(width=4), PatchDiscriminator(width=4)).translate(x),
    "latent autoencoder": lambda x: LatentAutoencoder(width=4).encode(x),
    "CVAE": lambda x: ConditionalVAE(latent_dim=2).encode(x, torch.arange(len(x)) % 10),
    "ae_loss": lambda x: ae_loss(x, torch.rand_like(x)),
    "add_gaussian_noise": lambda x: add_gaussian_noise(x),  # would clip 0-255 pixels to a white square
    "random_corruption": lambda x: random_corruption(x),
    "bernoulli_nll": lambda x: bernoulli_nll(x, torch.zeros_like(x)),
    "diffusion_loss": lambda x: diffusion_loss(lambda xt, t: torch.zeros_like(xt), DiffusionSchedule(T=10), x),
    "forward_trajectory": lambda x: forward_trajectory(DiffusionSchedule(T=10), x, [0, 5]),
    "frechet_distance": lambda x: frechet_distance(x, digits()),
}


@pytest.mark.parametrize("name", MODELS_ON_IMAGES)
def test_0_255_pixels_are_refused_with_the_division_that_fixes_them(name):
    with pytest.raises(ValueError, match=r"x / 255"):
        MODELS_ON_IMAGES[name](digits() * 255)


@pytest.mark.parametrize("name", MODELS_ON_IMAGES)
def test_float64_images_are_refused_with_dot_float(name):
    with pytest.raises(TypeError, match=r"\.float\(\)"):
        MODELS_ON_IMAGES[name](digits().double())


@pytest.mark.parametrize("name", MODELS_ON_IMAGES)
def test_a_nan_pixel_is_refused_saying_where_it_is(name):
    with pytest.raises(ValueError, match=r"1 NaN value .*\[1, 0, 5, 7\]"):
        MODELS_ON_IMAGES[name](with_nan(digits()))


def test_images_in_minus_1_1_are_told_how_to_map_back():
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        check_images(digits() * 2 - 1)


def test_images_a_hair_outside_0_1_still_pass():
    check_images(digits().clamp(0, 1) * 1.005)  # a sigmoid's or an interpolation's round-off is no mistake


CODES_AND_NOISE = {
    "autoencoder decode": lambda z: MLPAutoencoder(latent_dim=2).decode(z[:, :2]),
    "VAE decode": lambda z: MLPVAE(latent_dim=2).decode(z[:, :2]),
    "CVAE decode": lambda z: ConditionalVAE(latent_dim=2).decode(z[:, :2], torch.arange(len(z)) % 10),
    "DCGAN generator": lambda z: DCGANGenerator(z_dim=8, width=4)(z),
    "toy generator": lambda z: MLPGenerator()(z[:, :2]),
    "toy discriminator": lambda z: MLPDiscriminator()(z[:, :2]),
    "U-Net": lambda z: UNet(channels=(4, 8, 8), time_dim=16)(z[:, :1].expand(-1, 784).reshape(-1, 1, 28, 28),
                                                              torch.zeros(len(z), dtype=torch.long)),
    "latent decoder": lambda z: LatentAutoencoder(width=4).decode(z[:, :4, None, None].expand(-1, 4, 7, 7)),
}


@pytest.mark.parametrize("name", CODES_AND_NOISE)
def test_nan_codes_and_noise_are_refused(name):
    z = torch.randn(3, 8)
    z[1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        CODES_AND_NOISE[name](z)


@pytest.mark.parametrize("name", CODES_AND_NOISE)
def test_float64_codes_and_noise_are_refused_with_dot_float(name):
    with pytest.raises(TypeError, match=r"\.float\(\)"):
        CODES_AND_NOISE[name](torch.randn(3, 8, dtype=torch.float64))


def test_samplers_refuse_nan_or_float64_starting_noise():
    eps = lambda x, t: torch.zeros_like(x)  # noqa: E731
    schedule = DiffusionSchedule(T=10)
    bad = torch.randn(2, 1, 28, 28)
    bad[0, 0, 0, 0] = float("inf")
    for sampler in (ddpm_sample, ddim_sample):
        with pytest.raises(ValueError, match="inf"):
            sampler(eps, schedule, noise=bad)
        with pytest.raises(TypeError, match=r"\.float\(\)"):
            sampler(eps, schedule, noise=torch.randn(2, 1, 28, 28, dtype=torch.float64))


def test_data_on_another_device_than_the_model_goes_where_the_model_is():
    """Models move their inputs; losses move the data to the prediction's device (here the 'meta' device stands in
    for a GPU: a mix of devices would fail inside torch)."""
    x = digits(2)
    assert ae_loss(x, torch.rand(2, 1, 28, 28, device="meta")).device.type == "meta"
    assert bernoulli_nll(x, torch.zeros(2, 1, 28, 28, device="meta")).device.type == "meta"
    assert q_sample(DiffusionSchedule(T=10), torch.zeros(2, 1, 28, 28, device="meta"), 3, torch.randn(2, 1, 28, 28)
                    ).device.type == "meta"
    meta_model = MLPAutoencoder(latent_dim=2).to("meta")
    assert meta_model(x).device.type == "meta"


# ---------------------------------------------------------------- class 2: one bad batch changes nothing


class Recorder(Callback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, state):
        self.steps += 1


def snapshot(model, optimizers):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [{k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()}
              for k, s in opt.state_dict()["state"].items()} for opt in optimizers])


def assert_unchanged(before, after):
    for (k, v), w in zip(before[0].items(), after[0].values()):
        assert torch.equal(v, w), k
    assert len(before[1]) == len(after[1])
    for a, b in zip(before[1], after[1]):
        assert a.keys() == b.keys()
        for key in a:
            for name in a[key]:
                assert torch.equal(torch.as_tensor(a[key][name]), torch.as_tensor(b[key][name])), (key, name)


def batches_with_a_bad_one(bad_at=2, n=4):
    x = [digits(16) for _ in range(n)]
    x[bad_at] = with_nan(x[bad_at], (3, 0, 10, 12))
    return [(b, torch.arange(16) % 10) for b in x]


def test_a_nan_batch_leaves_weights_batchnorm_statistics_and_adam_as_they_were(capsys):
    torch.manual_seed(0)
    model = ConvAutoencoder(latent_dim=4, channels=4)  # BatchNorm: its running statistics move in forward
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = batches_with_a_bad_one()
    fit(model, batches[:2], lambda m, b: ae_loss(b[0], m(b[0])), optimizer, 1, progress=False)
    before = snapshot(model, [optimizer])
    history = fit(model, batches[2:], lambda m, b: ae_loss(b[0], m(b[0])), optimizer, 1, progress=False)
    assert history.stopped == "nan" and not history.steps.get("loss")
    assert_unchanged(before, snapshot(model, [optimizer]))
    out = capsys.readouterr().out
    assert "batch[0]" in out and "[3, 0, 10, 12]" in out and "Nothing was trained on it" in out


def test_a_non_finite_loss_puts_back_batchnorm_statistics_too(capsys):
    torch.manual_seed(0)
    model = ConvAutoencoder(latent_dim=4, channels=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    fit(model, [(digits(16),)], lambda m, b: ae_loss(b[0], m(b[0])), optimizer, 1, progress=False)
    before = snapshot(model, [optimizer])
    history = fit(model, [(digits(16),)], lambda m, b: ae_loss(b[0], m(b[0])) * float("inf"), optimizer, 2,
                  progress=False)
    assert history.stopped == "nan"
    assert_unchanged(before, snapshot(model, [optimizer]))
    assert "Nothing of this step was applied" in capsys.readouterr().out


def test_an_infinite_gradient_with_a_finite_loss_is_not_applied(capsys):
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = snapshot(model, [optimizer])

    def step(m, batch):  # sqrt(0) is finite, its gradient at 0 is not
        return (m(batch[0]) * 0).abs().sqrt().sum()

    history = fit(model, [(torch.ones(4, 1),)], step, optimizer, 1, progress=False)
    assert history.stopped == "nan" and "gradient norm" in capsys.readouterr().out
    assert_unchanged(before, snapshot(model, [optimizer]))


@pytest.mark.parametrize("kind", ["nan batch", "nan in the generator's loss"])
def test_a_gan_step_with_a_non_finite_number_changes_neither_network_nor_optimizer(kind, monkeypatch):
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(z_dim=8, width=4), DCGANDiscriminator(width=4))
    step = GANStep(gan, generator=torch.Generator().manual_seed(0))
    fit(gan, [(digits(16),)], step, None, 1, progress=False)  # the optimizers have a state now
    before = snapshot(gan, [step.opt_d, step.opt_g])
    batches = [(digits(16),)]
    if kind == "nan batch":
        batches = [(with_nan(digits(16)),)]
    else:  # D's update is applied first; G's loss then turns out NaN: D's update must be undone too
        import course_lib.gans as gans

        monkeypatch.setattr(gans, "g_loss_non_saturating", lambda logits: logits.mean() * float("nan"))
    history = fit(gan, batches, step, None, 2, progress=False)
    assert history.stopped == "nan"
    assert_unchanged(before, snapshot(gan, [step.opt_d, step.opt_g]))


def test_a_gan_step_alone_does_not_update_g_after_a_non_finite_d_loss(monkeypatch):
    import course_lib.gans as gans

    torch.manual_seed(0)
    gan = GAN(MLPGenerator(), MLPDiscriminator())
    step = GANStep(gan)
    before = [p.clone() for p in gan.parameters()]
    monkeypatch.setattr(gans, "d_loss", lambda real, fake: (real.mean() + fake.mean()) * float("nan"))
    logs = step(gan, (torch.randn(8, 2),))
    assert math.isnan(logs["d_loss"]) and math.isfinite(logs["g_loss"])
    assert all(torch.equal(a, b) for a, b in zip(before, gan.parameters()))  # neither D nor G moved


def test_pix2pix_step_with_a_nan_batch_changes_nothing():
    torch.manual_seed(0)
    model = Pix2Pix(Pix2PixGenerator(width=4), PatchDiscriminator(width=4))
    step = Pix2PixStep(model)
    fit(model, [(digits(16),)], step, None, 1, progress=False)
    before = snapshot(model, [step.opt_d, step.opt_g])
    assert fit(model, [(with_nan(digits(16)),)], step, None, 1, progress=False).stopped == "nan"
    assert_unchanged(before, snapshot(model, [step.opt_d, step.opt_g]))


# ---------------------------------------------------------------- class 7: edge values


def test_negative_or_too_large_timesteps_are_refused_not_wrapped():
    schedule, x0 = DiffusionSchedule(T=100), torch.zeros(2, 1, 28, 28)
    for t in (-1, torch.tensor([0, -1]), 100, torch.tensor([5, 100])):
        with pytest.raises(ValueError, match="0 to T-1 = 99"):
            q_sample(schedule, x0, t, torch.randn_like(x0))
    with pytest.raises(TypeError, match=r"t\.long\(\)"):
        q_sample(schedule, x0, torch.tensor([1.5, 2.0]), torch.randn_like(x0))
    with pytest.raises(ValueError, match="count from 0"):
        UNet(channels=(4, 8, 8), time_dim=16)(x0, torch.tensor([3, -2]))


@pytest.mark.parametrize("w", [float("nan"), float("inf"), -1.0, None])
def test_a_guidance_weight_that_is_not_a_number_at_least_0_is_refused(w):
    unet = UNet(channels=(4, 8, 8), time_dim=16, num_classes=10)
    with pytest.raises(ValueError, match="guidance scale w"):
        GuidedModel(unet, torch.tensor([1, 2]), w)


@pytest.mark.parametrize("eta", [-0.1, 1.5, float("nan")])
def test_ddim_refuses_an_eta_outside_0_1(eta):
    eps = lambda x, t: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(eps, DiffusionSchedule(T=10), n=1, steps=2, eta=eta)
    with pytest.raises(ValueError, match="eta"):
        ddim_update(DiffusionSchedule(T=10), torch.zeros(1, 1, 28, 28), 5, 2, torch.zeros(1, 1, 28, 28), eta)


def test_slerp_refuses_a_zero_code_and_opposite_codes_and_keeps_the_norm_otherwise():
    z0, t = torch.tensor([1.0, 2.0]), torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="zero code"):
        slerp(torch.zeros(2), z0, t)
    with pytest.raises(ValueError, match="opposite"):
        slerp(z0, -3 * z0, t)
    path = slerp(z0, torch.tensor([-2.0, 1.0]), t)
    assert torch.allclose(path.norm(dim=1), torch.full((5,), z0.norm().item()))


def test_an_empty_dataset_has_no_latent_scale_and_an_empty_loader_trains_nothing():
    empty = TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty dataset"):
        encode_dataset(LatentAutoencoder(width=4), empty)
    with pytest.raises(ValueError, match="empty dataset"):
        make_loader(empty, 4)
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], lambda m, b: m(b[0]).sum(), torch.optim.SGD(model.parameters(), 0.1), 3, progress=False)
    with pytest.raises(ValueError, match="no batches"):  # a loader without a length: found after one pass
        fit(model, iter([]), lambda m, b: m(b[0]).sum(), torch.optim.SGD(model.parameters(), 0.1), 3, progress=False)


def test_a_latent_scale_without_spread_is_refused():
    class Constant(LatentAutoencoder):
        def encode(self, x):
            return torch.zeros(len(x), 4, 7, 7)

    with pytest.raises(ValueError, match="no spread"):
        encode_dataset(Constant(width=4), TensorDataset(digits(4), torch.zeros(4, dtype=torch.long)))


def test_a_gaussian_is_not_fitted_to_nan_codes():
    codes = torch.randn(10, 2)
    codes[4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"codes\[4, 1\]"):
        fit_code_gaussian(codes)


def test_pca_needs_two_images():
    with pytest.raises(ValueError, match="at least 2 images"):
        PCA(2).fit(digits(1))


def test_vae_step_refuses_a_nan_batch_before_it_reaches_the_encoder():
    with pytest.raises(ValueError, match="NaN"):
        vae_step()(MLPVAE(latent_dim=2), (with_nan(digits()),))
    assert math.isfinite(vae_step()(MLPVAE(latent_dim=2), (digits(),))["loss"].item())


def test_metrics_refuse_float_labels_and_too_few_images_for_precision_recall():
    from course_lib.metrics import class_accuracy, precision_recall

    with pytest.raises(TypeError, match=r"labels\.long\(\)"):
        class_accuracy(digits(2), torch.tensor([3.7, 1.0]))
    with pytest.raises(ValueError, match="at least 4 images"):
        precision_recall(digits(3), digits(8))
