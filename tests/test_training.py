"""The fit loop: history, dict losses, interrupts, NaN, checkpoint resume, and self-updating steps."""

import pytest
import torch
from torch.utils.data import TensorDataset

from course_lib.data import make_loader
from course_lib.training import Callback, History, TrainingInterrupted, fit, last_history


def regression_batches(n_batches=4, seed=0):
    """Batches of (x, y) with y = 3x: a Linear(1, 1) can learn it exactly."""
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(16, 1, generator=gen) for _ in range(n_batches)]
    return [(x, 3 * x) for x in xs]


def mse_step(model, batch):
    x, y = batch
    return (model(x) - y).pow(2).mean()


def linear_model():
    torch.manual_seed(0)
    return torch.nn.Linear(1, 1)


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def test_fit_records_steps_and_epochs_and_learns():
    model = linear_model()
    history = fit(model, regression_batches(), mse_step, sgd(model), epochs=5, progress=False)
    assert history.epoch == 5 and history.stopped is None
    assert len(history.steps["loss"]) == 20 and len(history.epochs["loss"]) == 5
    assert history.epochs["loss"][0] == pytest.approx(sum(history.steps["loss"][:4]) / 4)
    assert history.epochs["loss"][-1] < 0.1 * history.epochs["loss"][0]


def test_dict_losses_are_logged_by_name():
    def step(model, batch):
        loss = mse_step(model, batch)
        return {"loss": loss, "double": 2 * loss}

    model = linear_model()
    history = fit(model, regression_batches(), step, sgd(model), epochs=2, progress=False)
    assert set(history.steps) == {"loss", "double"}
    assert len(history.steps["double"]) == 8 and len(history.epochs["double"]) == 2
    assert history.steps["double"][0] == pytest.approx(2 * history.steps["loss"][0])


def test_dict_without_loss_is_refused():
    model = linear_model()
    with pytest.raises(KeyError, match="'loss'"):
        fit(model, regression_batches(), lambda m, b: {"mse": mse_step(m, b)}, sgd(model), epochs=1, progress=False)


class InterruptAt(Callback):
    """Presses Ctrl-C after global step `at`."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt


def test_interrupt_keeps_model_and_history_then_stops_run_all_and_fit_continues():
    model = linear_model()
    before = model.weight.detach().clone()
    optimizer, batches = sgd(model), regression_batches()
    with pytest.raises(TrainingInterrupted, match="Run All stops here") as stop:
        fit(model, batches, mse_step, optimizer, epochs=3, callbacks=[InterruptAt(3)], progress=False)
    assert isinstance(stop.value, KeyboardInterrupt)  # what Jupyter treats as a stop: the queued cells do not run
    history = stop.value.history
    assert history is last_history() and history.stopped == "interrupted"
    assert len(history.steps["loss"]) == 3 and history.epoch == 0
    assert not torch.equal(model.weight, before)
    assert stop.value._render_traceback_() == [f"TrainingInterrupted: {stop.value}"]  # IPython shows only this

    history = fit(model, batches, mse_step, optimizer, epochs=3, history=last_history(), progress=False)
    assert history.epoch == 3 and history.stopped is None
    assert len(history.steps["loss"]) == 3 + 3 * 4  # the interrupted epoch is run again in full
    assert len(history.epochs["loss"]) == 3


def test_an_interrupt_passes_through_train_or_load_and_nothing_is_bundled(monkeypatch, tmp_path):
    from course_lib import pretrained

    monkeypatch.setenv(pretrained.BUILD_ENV, "1")
    monkeypatch.setattr(pretrained, "save_bundled", lambda *a, **k: pytest.fail("an interrupted run was bundled"))
    model = linear_model()
    with pytest.raises(TrainingInterrupted):
        pretrained.train_or_load("x/y", lambda: fit(model, regression_batches(), mse_step, sgd(model), 2,
                                                    callbacks=[InterruptAt(2)], progress=False), model=model)


def test_nan_loss_stops_training_and_keeps_the_weights(capsys):
    calls = []

    def step(model, batch):
        calls.append(1)
        loss = mse_step(model, batch)
        return loss * float("nan") if len(calls) == 3 else loss

    class RecordWeights(Callback):
        def on_step_end(self, state):
            weights.append(state.model.weight.detach().clone())

    model, weights = linear_model(), []
    history = fit(model, regression_batches(), step, sgd(model), epochs=2, callbacks=[RecordWeights()], progress=False)
    assert history.stopped == "nan"
    assert len(history.steps["loss"]) == 2  # the NaN step is not recorded
    assert "diverged" in capsys.readouterr().out
    assert torch.equal(model.weight, weights[-1])  # the NaN step did not turn the weights into NaN


def make_run(seed=0):
    """A fresh model, optimizer and seeded loader; the step uses torch's random numbers (noise) too."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 4, generator=gen)
    dataset = TensorDataset(x, x @ torch.randn(4, 1, generator=gen))
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, optimizer, make_loader(dataset, batch_size=8, seed=seed)


def noisy_step(model, batch):
    x, y = batch
    return (model(x + 0.1 * torch.randn_like(x)) - y).pow(2).mean()


def comparable(history: History) -> dict:
    state = history.state_dict()
    del state["seconds"]
    return state


def test_checkpoint_resume_gives_the_same_result(tmp_path, capsys):
    model_a, opt_a, loader_a = make_run()
    history_a = fit(model_a, loader_a, noisy_step, opt_a, epochs=4, checkpoint=tmp_path / "a.pt", progress=False)

    model_b, opt_b, loader_b = make_run()
    fit(model_b, loader_b, noisy_step, opt_b, epochs=2, checkpoint=tmp_path / "b.pt", progress=False)
    torch.rand(5)  # other work between the sessions uses the random generator too
    model_b, opt_b, loader_b = make_run()  # e.g. a restarted kernel
    history_b = fit(model_b, loader_b, noisy_step, opt_b, epochs=4, checkpoint=tmp_path / "b.pt", progress=False)

    assert "Resuming from" in capsys.readouterr().out
    assert history_b.epoch == 4
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()):
        assert torch.equal(a, b)
    assert comparable(history_a) == comparable(history_b)


def test_self_updating_step_without_optimizer_is_driven_and_recorded():
    def step(model, batch):  # updates the model itself, like a GAN's alternating updates
        loss = mse_step(model, batch)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
                p.grad = None
        return {"loss": loss.item(), "other": 1.0}

    model = linear_model()
    history = fit(model, regression_batches(), step, None, epochs=3, progress=False)
    assert len(history.steps["loss"]) == 12 and history.steps["other"] == [1.0] * 12
    assert history.epochs["loss"][-1] < 0.1 * history.epochs["loss"][0]


def test_snapshots_keep_frames_every_n_steps_and_at_the_end():
    from course_lib.training import Snapshots

    model = linear_model()
    snaps = Snapshots(lambda m: m.weight.detach().clone(), every=3)
    fit(model, regression_batches(), mse_step, sgd(model), epochs=2, callbacks=[snaps], progress=False)
    assert snaps.at_step == [3, 6, 8] and len(snaps.frames) == 3
    assert not torch.equal(snaps.frames[0], snaps.frames[-1])


def test_a_callback_can_stop_training_with_a_message(capsys):
    from course_lib.training import StopTraining

    class StopAtFive(Callback):
        def on_step_end(self, state):
            if state.step == 5:
                raise StopTraining("enough", "Stopped: five steps are enough.")

    model = linear_model()
    history = fit(model, regression_batches(), mse_step, sgd(model), epochs=3, callbacks=[StopAtFive()],
                  progress=False)
    assert history.stopped == "enough" and len(history.steps["loss"]) == 5
    assert "five steps are enough" in capsys.readouterr().out


def test_ema_follows_the_weights_with_a_lag():
    from course_lib.training import EMA

    model = linear_model()
    start = model.weight.detach().clone()
    ema = EMA(model, decay=0.9)
    fit(model, regression_batches(), mse_step, sgd(model), epochs=3, callbacks=[ema], progress=False)
    final, averaged = model.weight.detach(), ema.model.weight.detach()
    assert not torch.equal(averaged, final) and not torch.equal(averaged, start)
    assert (averaged - final).abs().item() < (start - final).abs().item()  # between the start and the end, nearer the end
    assert not ema.model.weight.requires_grad
    instant = EMA(model, decay=0.0)
    fit(model, regression_batches(), mse_step, sgd(model), epochs=4, callbacks=[instant], progress=False)
    assert torch.equal(instant.model.weight, model.weight)  # decay 0: the average is the last weights


def test_importing_the_course_flushes_denormals_in_every_thread_of_torch():
    # set before torch's threads start, so a product split over all of them gives 0 for 1e-39 too (set after the
    # threads started, only the thread that set it flushed: half of such a product stayed 1e-39 on 2 threads)
    import os
    import subprocess
    import sys

    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals (torch.set_flush_denormal: x86 with SSE3, or ARM64)")

    code = ("import course_lib, torch; x = torch.full((4_000_000,), 1e-39); "
            "print(torch.get_num_threads(), (x * 1.0).ne(0).sum().item())")
    threads, left = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                   env={**os.environ, "OMP_NUM_THREADS": "2"}).stdout.split()
    assert threads == "2" and left == "0"
