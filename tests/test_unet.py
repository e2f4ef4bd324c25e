"""The DDPM U-Net (shapes, time and class conditioning, errors) and the CPU/GPU fast path (autocast that never
breaks a machine without bfloat16, stays close to float32, and still trains)."""

import pytest
import torch

from course_lib import fastpath
from course_lib.config import one_thread
from course_lib.fastpath import describe_fast_path, fast_autocast, fast_dtype, prepare_model
from course_lib.tools.speed import noise_prediction_step, time_training_step, training_step_flops
from course_lib.unet import UNet, sinusoidal_embedding

TINY = dict(channels=(8, 16, 16), time_dim=32)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny tensors: one thread is faster, and far faster when other work shares the cores (a first step took 4 s
    on 2 threads of a busy 2-core machine, 40 ms on one)."""
    with one_thread():
        yield


def tiny_unet(seed=0, **kwargs):
    torch.manual_seed(seed)
    return UNet(**TINY, **kwargs)


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 1000, (n,), generator=g)


def test_output_has_the_input_shape():
    model = tiny_unet()
    x, t = batch(3)
    assert model(x, t).shape == (3, 1, 28, 28)
    assert model(x, 500).shape == (3, 1, 28, 28)  # one number: the same timestep for the whole batch
    assert model(x, t.float()).shape == (3, 1, 28, 28)  # float timesteps work too (e.g. a continuous-time sampler)


def test_output_depends_on_the_timestep():
    model = tiny_unet()
    x, _ = batch(2)
    early, late = model(x, torch.tensor([1, 1])), model(x, torch.tensor([900, 900]))
    assert (early - late).abs().mean() > 1e-3 * early.abs().mean()
    # and each image gets its own timestep: changing image 1's t leaves image 0's prediction alone
    mixed = model(x, torch.tensor([1, 900]))
    torch.testing.assert_close(mixed[0], early[0])
    torch.testing.assert_close(mixed[1], late[1])


def test_sinusoidal_embedding_at_zero_and_for_distinct_steps():
    emb = sinusoidal_embedding(torch.tensor([0]), 16)
    assert emb.shape == (1, 16)
    assert torch.equal(emb[0, :8], torch.zeros(8))  # sin(0) = 0
    assert torch.equal(emb[0, 8:], torch.ones(8))  # cos(0) = 1
    # every one of 1000 timesteps gets its own code, and each code has length sqrt(dim / 2) (sin^2 + cos^2 = 1)
    codes = sinusoidal_embedding(torch.arange(1000), 128)
    distances = torch.cdist(codes, codes) + 1e9 * torch.eye(1000)
    assert distances.min() > 0.1
    torch.testing.assert_close(codes.norm(dim=1), torch.full((1000,), 8.0))
    with pytest.raises(ValueError, match="even dim"):
        sinusoidal_embedding(torch.tensor([0]), 7)


def test_default_model_size():
    # 1,786,433: (32, 64, 128) channels, time_dim 128; change this number only on purpose (lessons quote it)
    assert sum(p.numel() for p in UNet().parameters()) == 1_786_433
    # a class-conditional one adds an 11 x 128 label table (10 classes + "no label")
    assert sum(p.numel() for p in UNet(num_classes=10).parameters()) == 1_786_433 + 11 * 128


def test_class_conditional_model():
    model = tiny_unet(num_classes=10)
    x, t = batch(2)
    no_label = model(x, t)  # y=None: no label for anyone
    torch.testing.assert_close(model(x, t, torch.tensor([10, 10])), no_label)  # index num_classes = "no label"
    three, seven = model(x, t, torch.tensor([3, 3])), model(x, t, torch.tensor([7, 7]))
    assert (three - seven).abs().mean() > 1e-4
    assert (three - no_label).abs().mean() > 1e-4
    with pytest.raises(ValueError, match=r"0 \.\. 9.*10 for 'no label'"):
        model(x, t, torch.tensor([3, 11]))
    with pytest.raises(ValueError, match=r"0 \.\. 9"):
        model(x, t, torch.tensor([-1, 3]))
    with pytest.raises(ValueError, match="one whole-number label per image"):
        model(x, t, torch.tensor([3.0, 1.0]))


def test_unconditional_model_refuses_labels():
    with pytest.raises(ValueError, match=r"unconditional.*UNet\(num_classes=10\)"):
        tiny_unet()(*batch(2), torch.tensor([1, 2]))


def test_wrong_shapes_get_a_helpful_error():
    model = tiny_unet()
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\), got \(28, 28\).*x.view\(1, 1, 28, 28\)"):
        model(torch.randn(28, 28), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\), got \(2, 3, 28, 28\)"):
        model(torch.randn(2, 3, 28, 28), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match=r"one timestep per image, shaped \(2,\)"):
        model(torch.randn(2, 1, 28, 28), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="3 numbers"):
        UNet(channels=(8, 16))


def test_fast_autocast_on_cpu_is_close_to_float32_and_finite():
    model = tiny_unet()
    x, t = batch(4)
    with torch.no_grad():
        exact = model(x, t)
        with fast_autocast("cpu"):  # bfloat16 where the CPU has it, float32 elsewhere: never an error
            fast = model(x, t).float()
    assert torch.isfinite(fast).all()
    assert (fast - exact).norm() < 0.05 * exact.norm()  # bfloat16 keeps ~3 digits: about 1% off here


def test_no_fast_path_where_it_would_not_be_faster(monkeypatch):
    monkeypatch.setattr(fastpath, "cpu_bf16_flags", lambda: ())  # a CPU without bfloat16 instructions
    assert fast_dtype("cpu") is None
    assert "float32" in describe_fast_path("cpu")
    with fast_autocast("cpu"):
        assert torch.nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.float32
    if not torch.cuda.is_available():
        assert fast_dtype("cuda") is None  # asking for CUDA on a machine without it is a no-op, not an error
        with fast_autocast("cuda"):
            pass
    assert fast_dtype("meta") is None and "no fast path" in describe_fast_path("meta")


def test_cpu_bf16_is_used_only_where_measured_faster(monkeypatch):
    # a CPU that lists avx512_bf16 but multiplies bfloat16 matrices at half float32's speed (an Intel Xeon whose
    # virtual machine hides AMX): float32, and the line says why; measured twice as fast: bfloat16
    monkeypatch.setattr(fastpath, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    monkeypatch.setattr(fastpath, "_onednn_has_bf16", lambda: True)
    monkeypatch.setattr(fastpath, "cpu_bf16_speedup", lambda: 0.53)
    assert fast_dtype("cpu") is None
    assert "0.53x as fast" in describe_fast_path("cpu") and "needs 1.2x" in describe_fast_path("cpu")
    with fast_autocast("cpu"):
        assert torch.nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.float32
    monkeypatch.setattr(fastpath, "cpu_bf16_speedup", lambda: 2.2)  # an AMD EPYC with avx512_bf16
    assert fast_dtype("cpu") is torch.bfloat16 and describe_fast_path("cpu").startswith("cpu: bfloat16")
    assert "2.20x as fast" in describe_fast_path("cpu")


def test_cpu_bf16_speedup_measures_both_types(monkeypatch):
    fastpath.cpu_bf16_speedup.cache_clear()
    seen = []
    real_mm = torch.mm
    monkeypatch.setattr(torch, "mm", lambda a, b: seen.append(a.dtype) or real_mm(a, b))
    speedup = fastpath.cpu_bf16_speedup()
    fastpath.cpu_bf16_speedup.cache_clear()
    assert speedup > 0 and seen.count(torch.float32) == 6 and seen.count(torch.bfloat16) == 6


def test_fast_path_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("COURSE_FAST_PATH", "off")
    assert fast_dtype("cpu") is None and "COURSE_FAST_PATH=off" in describe_fast_path("cpu")
    monkeypatch.setenv("COURSE_FAST_PATH", "fast please")
    with pytest.raises(ValueError, match="COURSE_FAST_PATH=off"):
        fast_dtype("cpu")


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_prepare_model_picks_the_cpu_layout_by_its_arithmetic(dtype, monkeypatch):
    # float32: channels_last (measured faster); bfloat16: NCHW (channels_last made GroupNorm slow there)
    monkeypatch.setattr(fastpath, "fast_dtype", lambda device: dtype)
    model = prepare_model(tiny_unet(), "cpu")
    weight = next(m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert weight.is_contiguous(memory_format=torch.channels_last) == (dtype is None)
    assert weight.is_contiguous() == (dtype is not None)
    assert next(model.parameters()).device.type == "cpu"
    x, t = batch(2)
    with torch.no_grad():  # the same numbers in either layout, up to rounding
        assert torch.allclose(model(x, t), model.to(memory_format=torch.contiguous_format)(x, t), atol=1e-5)


@pytest.mark.parametrize("fast", [False, True])
def test_a_few_adam_steps_reduce_the_loss_on_a_fixed_batch(fast):
    model = tiny_unet()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, t = batch(8)
    eps = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    losses = [noise_prediction_step(model, optimizer, x, t, eps, fast=fast) for _ in range(15)]
    assert losses[-1] < 0.9 * losses[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_gradients_are_finite_under_the_fast_path():
    model = tiny_unet(num_classes=10)
    x, t = batch(4)
    with fast_autocast("cpu"):
        pred = model(x, t, torch.tensor([0, 5, 9, 10]))
    torch.nn.functional.mse_loss(pred.float(), torch.randn_like(x)).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast never changes the weights' type


def test_step_timing_and_flop_count():
    model = tiny_unet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert time_training_step(model, batch=4, steps=1, warmup=0) > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # timed on a copy: not trained
    # convolutions cost the same per image, so a batch twice as large costs twice the operations
    assert training_step_flops(model, batch=4) == 2 * training_step_flops(model, batch=2) > 0


@pytest.mark.parametrize("capability, dtype", [((8, 0), torch.bfloat16), ((7, 5), torch.float16)])
def test_gpu_choice_of_16_bit_type(monkeypatch, capability, dtype):
    # pretend to be an A100 (bfloat16 units) or a T4 (float16 only, which needs a gradient scaler)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a pretend GPU")
    assert fast_dtype("cuda") is dtype
    assert fastpath.uses_channels_last("cuda")
    assert fastpath.uses_channels_last("cpu") == (fast_dtype("cpu") is None)  # float32 CPUs: see the next test
    text = describe_fast_path("cuda")
    assert text.startswith(f"cuda (a pretend GPU): {str(dtype)[6:]} autocast")
    assert ("grad_scaler" in text) == (dtype is torch.float16)
    assert not fastpath.grad_scaler("cpu").is_enabled()  # no scaler needed with bfloat16 or float32
