"""fit with float16 autocast, as on a GPU without bfloat16 (a T4): the gradient scaler.

torch's gradient scaler works on the CPU too, so its logic is tested here on the CPU: with real float16 autocast where
a test lets float16 overflow on its own, and with float32 arithmetic and an enabled scaler where a test must decide
which steps overflow (an inf put into the gradient, or a scale so large that float32 overflows). Scaling by a power
of 2 is exact in both, so the scaler's arithmetic is the same; only the range where overflow starts differs.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import fastpath
from course_lib.config import one_thread
from course_lib.fastpath import fast_autocast
from course_lib.training import Callback, TrainingInterrupted, fit


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is as fast, and much faster when other programs share the cores."""
    with one_thread():
        yield


def regression_batches(n_batches=8, seed=0):
    """Batches of (x, y) with y = 3 x w for a fixed w: a small network learns it."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 1, generator=gen)
    return [(x, 3 * x @ w) for x in (torch.randn(32, 4, generator=gen) for _ in range(n_batches))]


def small_model(batchnorm=False):
    torch.manual_seed(0)
    norm = [torch.nn.BatchNorm1d(16)] if batchnorm else []
    return torch.nn.Sequential(torch.nn.Linear(4, 16), *norm, torch.nn.Tanh(), torch.nn.Linear(16, 1))


def adam(model):
    return torch.optim.Adam(model.parameters(), lr=1e-2)


def float32_step(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


def float16_step(model, batch):
    """The fast path's step as on a T4: the network in float16, the loss in float32."""
    x, y = batch
    with torch.autocast("cpu", dtype=torch.float16):
        pred = model(x)
    return F.mse_loss(pred.float(), y)


def cpu_scaler(**options):
    return torch.amp.GradScaler("cpu", **options)


class Record(Callback):
    """After every step: the scale, the model's state (weights and BatchNorm's statistics) and the optimizer's."""

    def __init__(self, scaler, optimizer):
        self.scaler, self.optimizer = scaler, optimizer
        self.scales, self.models, self.optimizers = [], [], []

    def on_step_end(self, state):
        self.scales.append(self.scaler.get_scale())
        self.models.append({k: v.clone() for k, v in state.model.state_dict().items()})
        self.optimizers.append(clone_state(self.optimizer.state_dict()))


def clone_state(state):
    if isinstance(state, torch.Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {k: clone_state(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(clone_state(v) for v in state)
    return state


def identical(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return set(a) == set(b) and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return a == b


def inf_gradient_at(calls: set[int], step=float32_step):
    """`step`, but at the given calls (1, 2, ...) the gradient flowing back from the prediction is inf, as when
    float16 overflows; the loss stays finite."""
    count = [0]

    def with_inf(model, batch):
        count[0] += 1
        if count[0] not in calls:
            return step(model, batch)
        x, y = batch
        pred = model(x)
        pred.register_hook(lambda grad: torch.full_like(grad, float("inf")))
        return F.mse_loss(pred, y)

    return with_inf


# ---------------------------------------------------------------- which precision gets a scaler


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, None])
def test_fit_scales_the_loss_exactly_where_the_fast_path_computes_in_float16(dtype, monkeypatch, tmp_path):
    # pretend this CPU's fast path is a T4's (float16), an A100's (bfloat16) or none at all (float32)
    monkeypatch.setattr(fastpath, "fast_dtype", lambda device: dtype)
    assert fastpath.grad_scaler("cpu").is_enabled() == (dtype is torch.float16)

    def step(model, batch):  # a lesson's step: the network under the fast path, the loss in float32
        x, y = batch
        with fast_autocast(x.device):
            pred = model(x)
        assert pred.dtype == (dtype or torch.float32)
        return F.mse_loss(pred.float(), y)

    model = small_model()
    history = fit(model, regression_batches(), step, adam(model), 3, checkpoint=tmp_path / "run.pt", progress=False)
    assert history.stopped is None and len(history.steps["loss"]) == 24
    parts = torch.load(tmp_path / "run.pt", weights_only=True)["parts"]
    if dtype is torch.float16:
        # the default scale 2^16 overflows float16 here at first: the scaler skipped steps and lowered it
        assert parts["gradient scaler"]["scale"] < 2.0**16
    else:
        assert "gradient scaler" not in parts  # bfloat16 and float32 train without one


def test_a_self_updating_step_cannot_be_given_a_scaler():
    def step(model, batch):  # updates the model itself, as a GAN step does
        return {"loss": 0.0}

    model = small_model()
    with pytest.raises(ValueError, match="does its own backward"):
        fit(model, regression_batches(1), step, None, 1, progress=False, scaler=cpu_scaler())
    assert fit(model, regression_batches(1), step, None, 1, progress=False).stopped is None  # no scaler: driven


# ---------------------------------------------------------------- what the scaler does inside fit


def test_float16_training_learns_with_the_scaler():
    model, scaler = small_model(), cpu_scaler()
    history = fit(model, regression_batches(), float16_step, adam(model), 10, progress=False, scaler=scaler)
    assert history.stopped is None and len(history.steps["loss"]) == 80
    assert history.epochs["loss"][-1] < 0.2 * history.epochs["loss"][0]
    assert scaler.get_scale() < 2.0**16  # float16 overflowed at the start, and the scaler came down to what fits


def test_without_overflow_the_scaler_changes_nothing_but_the_arithmetic_is_scaled():
    # scaling by 2^k and dividing again is exact in float32: the same weights as training without a scaler
    runs = []
    for scaler in (cpu_scaler(enabled=False), cpu_scaler(init_scale=2.0**20, growth_interval=10**6)):
        model = small_model(batchnorm=True)
        fit(model, regression_batches(), float32_step, adam(model), 2, progress=False, scaler=scaler)
        runs.append(model.state_dict())
    assert identical(*runs)


def test_a_step_with_infinite_gradients_is_skipped_and_the_scale_halves():
    model = small_model(batchnorm=True)  # BatchNorm: its running statistics move in forward
    optimizer, scaler = adam(model), cpu_scaler(init_scale=2.0**10, growth_interval=10**6)
    record = Record(scaler, optimizer)
    history = fit(model, regression_batches(), inf_gradient_at({3, 5}), optimizer, 1, callbacks=[record],
                  progress=False, scaler=scaler)
    assert history.stopped is None and len(history.steps["loss"]) == 8  # fit goes on; every loss is recorded
    assert record.scales == [2.0**10, 2.0**10, 2.0**9, 2.0**9, 2.0**8, 2.0**8, 2.0**8, 2.0**8]
    for skipped in (3, 5):  # nothing of a skipped step was applied: weights, BatchNorm, Adam as after the step before
        assert identical(record.models[skipped - 1], record.models[skipped - 2])
        assert identical(record.optimizers[skipped - 1], record.optimizers[skipped - 2])
    assert not identical(record.models[3], record.models[1])  # the steps between did train
    assert optimizer.state_dict()["state"][0]["step"] == 6  # Adam counted the 6 steps that were applied


def test_infinite_gradients_at_scale_1_are_divergence_and_stop_fit(capsys):
    model = small_model(batchnorm=True)
    optimizer, scaler = adam(model), cpu_scaler(init_scale=4.0)
    before = ({k: v.clone() for k, v in model.state_dict().items()}, clone_state(optimizer.state_dict()))
    history = fit(model, regression_batches(), inf_gradient_at(set(range(1, 100))), optimizer, 1, progress=False,
                  scaler=scaler)
    # scale 4 and 2: float16 overflow as far as the scaler can tell, skipped; at scale 1 the loss is not scaled up
    assert history.stopped == "nan" and len(history.steps["loss"]) == 2
    assert "gradient norm = " in capsys.readouterr().out  # (inf through BatchNorm comes back as nan)
    assert identical((model.state_dict(), optimizer.state_dict()), before)  # nothing was applied
    assert scaler.get_scale() == 1.0  # the stopping step did not halve it again
    # the scaler is ready for the next step: going on with a healthy step trains as usual
    history = fit(model, regression_batches(), float32_step, optimizer, 1, progress=False, scaler=scaler,
                  history=history)
    assert history.stopped is None and len(history.steps["loss"]) == 10
    assert optimizer.state_dict()["state"][0]["step"] == 8


# ---------------------------------------------------------------- the scale is part of the training state


class InterruptAt(Callback):
    """Presses Ctrl-C after global step `at`."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("at", [3, 13, 22])
def test_a_resumed_run_restores_the_scale_and_skips_the_same_steps(at, tmp_path):
    # float32 with a scale near its top (2^128): scaled gradients overflow often, the scale goes down and (every
    # 2 good steps) up again, so which steps are skipped depends on the scale a resumed run starts from
    def run():
        model = small_model(batchnorm=True)
        optimizer, scaler = adam(model), cpu_scaler(init_scale=2.0**126, growth_interval=2)
        return model, optimizer, scaler, Record(scaler, optimizer)

    epochs, batches = 4, regression_batches()
    model_a, optimizer_a, scaler_a, record_a = run()
    history_a = fit(model_a, batches, float32_step, optimizer_a, epochs, callbacks=[record_a], progress=False,
                    scaler=scaler_a)
    assert len(set(record_a.scales)) > 1  # the scale did move: skipped steps and growth

    model_b, optimizer_b, scaler_b, _ = run()
    with pytest.raises(TrainingInterrupted):
        fit(model_b, batches, float32_step, optimizer_b, epochs, callbacks=[InterruptAt(at)],
            checkpoint=tmp_path / "run.pt", progress=False, scaler=scaler_b)
    model_c, optimizer_c, scaler_c, record_c = run()  # a restarted kernel: a fresh scaler at 2^126
    history_c = fit(model_c, batches, float32_step, optimizer_c, epochs, callbacks=[record_c],
                    checkpoint=tmp_path / "run.pt", progress=False, scaler=scaler_c)

    assert history_c.stopped is None
    resumed_at = len(batches) * (at // len(batches))  # the last finished epoch
    assert record_c.scales == record_a.scales[resumed_at:]
    assert identical(scaler_c.state_dict(), scaler_a.state_dict())
    assert identical(model_c.state_dict(), model_a.state_dict())
    assert identical(optimizer_c.state_dict(), optimizer_a.state_dict())
    assert identical(dict(history_c.steps), dict(history_a.steps))


def test_a_run_saved_with_a_scaler_resumes_on_a_machine_without_one_and_back(tmp_path):
    # a T4 (float16, scaler) and a CPU (no scaler): the checkpoint moves between them, the scale starts afresh
    epochs, batches = 3, regression_batches()
    model = small_model()
    with pytest.raises(TrainingInterrupted):
        fit(model, batches, float32_step, adam(model), epochs, callbacks=[InterruptAt(5)],
            checkpoint=tmp_path / "t4.pt", progress=False, scaler=cpu_scaler())
    assert "gradient scaler" in torch.load(tmp_path / "t4.pt", weights_only=True)["parts"]
    model = small_model()
    history = fit(model, batches, float32_step, adam(model), epochs, checkpoint=tmp_path / "t4.pt", progress=False)
    assert history.stopped is None and history.epoch == epochs

    model = small_model()
    with pytest.raises(TrainingInterrupted):
        fit(model, batches, float32_step, adam(model), epochs, callbacks=[InterruptAt(5)],
            checkpoint=tmp_path / "cpu.pt", progress=False)
    model, scaler = small_model(), cpu_scaler(init_scale=1024.0)
    history = fit(model, batches, float32_step, adam(model), epochs, checkpoint=tmp_path / "cpu.pt",
                  progress=False, scaler=scaler)
    assert history.stopped is None and history.epoch == epochs and scaler.get_scale() == 1024.0


# ---------------------------------------------------------------- the GAN steps' own bfloat16 path


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, None])
def test_gan_steps_compute_in_bfloat16_only_where_the_fast_path_does(dtype, monkeypatch):
    """bf16_call wraps a network only where the fast path is bfloat16: the GAN steps own their optimizers and have no
    gradient scaler, so on float16 GPUs (and without a fast path) they stay in float32."""
    monkeypatch.setattr(fastpath, "fast_dtype", lambda device: dtype)
    net = torch.nn.Linear(4, 2)
    wrapped = fastpath.bf16_call(net, "cpu")
    assert (wrapped is net) == (dtype is not torch.bfloat16)
    seen = []
    net.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    out = wrapped(torch.randn(3, 4))
    assert out.dtype == torch.float32  # what the loss sees
    assert seen == [torch.bfloat16 if dtype is torch.bfloat16 else torch.float32]


@pytest.mark.parametrize("which", ["gan", "pix2pix"])
def test_a_fast_gan_step_trains_in_bfloat16_and_keeps_float32_weights(which, monkeypatch):
    from course_lib.conditional import ConditionalDiscriminator, ConditionalGAN, ConditionalGenerator
    from course_lib.data import load_dataset
    from course_lib.gans import GANStep
    from course_lib.pix2pix import Pix2Pix, Pix2PixStep
    monkeypatch.setattr(fastpath, "fast_dtype", lambda device: torch.bfloat16)
    x, y = load_dataset("mnist", n=16, source="bundled").tensors
    torch.manual_seed(0)
    if which == "gan":
        model = ConditionalGAN(ConditionalGenerator(width=8), ConditionalDiscriminator(width=8))
        step, nets = GANStep(model, fast=True, generator=torch.Generator().manual_seed(0)), model
    else:
        model = Pix2Pix()
        step, nets = Pix2PixStep(model, fast=True), model
    dtypes = set()
    for module in nets.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, args, out: dtypes.add(out.dtype))
    before = {k: v.clone() for k, v in nets.state_dict().items()}
    logs = step(nets, (x, y))
    assert dtypes == {torch.bfloat16}
    assert all(math.isfinite(value) for value in logs.values())
    after = nets.state_dict()
    assert all(value.dtype == before[key].dtype for key, value in after.items())  # weights stay float32
    assert any(not torch.equal(after[key], before[key]) for key in before)  # and were updated


# ---------------------------------------------------------------- COURSE_FAST_PATH=float16: a T4's path on any GPU


def test_the_float16_setting_gives_float16_and_a_scaler_on_a_gpu_and_leaves_the_cpu_alone(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # pretend: an H100 (compute capability 9.0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "pretend H100")
    cpu_before = fastpath.fast_dtype("cpu")
    assert fastpath.fast_dtype("cuda") is torch.bfloat16
    monkeypatch.setenv("COURSE_FAST_PATH", "float16")
    assert fastpath.fast_dtype("cuda") is torch.float16 and "as on a T4" in fastpath.describe_fast_path("cuda")
    assert fastpath.fast_dtype("cpu") is cpu_before  # the CPU has no float16 fast path: it stays as it was
    monkeypatch.setenv("COURSE_FAST_PATH", "half")
    with pytest.raises(ValueError, match="COURSE_FAST_PATH=float16"):
        fastpath.fast_dtype("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_fit_trains_in_real_float16_on_a_gpu_with_the_scaler(monkeypatch, tmp_path):
    # the T4's arithmetic on whatever GPU is here: float16 autocast, the loss scaled, the weights in float32
    monkeypatch.setenv("COURSE_FAST_PATH", "float16")
    assert fastpath.grad_scaler("cuda").is_enabled()

    def step(model, batch):
        x, y = (t.cuda() for t in batch)
        with fast_autocast("cuda"):
            pred = model(x)
        assert pred.dtype == torch.float16
        return F.mse_loss(pred.float(), y)

    model = small_model().cuda()
    history = fit(model, regression_batches(), step, adam(model), 10, checkpoint=tmp_path / "run.pt", progress=False)
    assert history.stopped is None and len(history.steps["loss"]) == 80
    assert history.epochs["loss"][-1] < 0.2 * history.epochs["loss"][0]
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    scale = torch.load(tmp_path / "run.pt", weights_only=True)["parts"]["gradient scaler"]["scale"]
    assert 1.0 < scale <= 2.0**16  # saved with the run, so a resumed run skips the same steps
