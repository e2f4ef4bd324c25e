"""The live training figure: free when headless, throttled when watched, final frame always drawn."""

import io
import sys
import types

import pytest
import torch
from PIL import Image

from course_lib import liveplot
from course_lib.liveplot import LivePlot, is_headless
from course_lib.training import History, TrainState


def training_state(n_steps=20):
    history = History(epoch=1)
    history.steps["loss"] += [1.0 / (i + 1) for i in range(n_steps)]
    return TrainState(model=torch.nn.Linear(1, 1), history=history, epoch=0, step=n_steps)


class FakeClock:
    """time.monotonic for a machine booted `now` seconds ago, advancing `tick` seconds per call."""

    def __init__(self, now=0.0, tick=1.0):
        self.now, self.tick = now, tick

    def __call__(self):
        self.now += self.tick
        return self.now


def test_headless_costs_nothing_until_the_end():
    live = LivePlot()
    assert live.headless  # conftest.py sets COURSE_HEADLESS=1 (nbval imports ipykernel, so that alone would not do)
    state = training_state()
    for _ in range(100):
        live.on_step_end(state)
    assert live.frames == 0
    live.on_train_end(state)
    assert live.frames == 1


def test_watched_plot_is_throttled_and_draws_the_final_frame(monkeypatch):
    monkeypatch.setattr(liveplot.time, "monotonic", FakeClock(now=0.0))  # a machine that just booted
    live = LivePlot(every_s=3600)
    live.headless = False
    state = training_state()
    for _ in range(50):
        live.on_step_end(state)
    assert live.frames == 1  # the first step draws, the next 49 are within the hour
    live.on_train_end(state)
    assert live.frames == 2


def test_watched_plot_redraws_every_every_s(monkeypatch):
    monkeypatch.setattr(liveplot.time, "monotonic", FakeClock(now=1000.0, tick=1.0))
    live = LivePlot(every_s=10)
    live.headless = False
    state = training_state()
    for _ in range(50):  # 50 simulated seconds
        live.on_step_end(state)
    assert live.frames == 5


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(png)).size


def test_render_gives_png_with_and_without_images():
    state = training_state()
    plain = LivePlot().render(state.history)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 784), torch.nn.Sigmoid(),
                                torch.nn.Unflatten(1, (1, 28, 28)))
    model.train()
    fixed = torch.rand(8, 1, 28, 28)
    with_images = LivePlot(images=lambda m: m(fixed)).render(state.history, model)
    assert png_size(with_images)[0] > png_size(plain)[0]  # the image panel widens the figure
    assert model.training  # rendering put the model back in training mode


@pytest.mark.parametrize(
    "env, headless",
    [({}, False), ({"COURSE_HEADLESS": "1"}, True), ({"COURSE_HEADLESS": "0"}, False), ({"MPLBACKEND": "Agg"}, True)],
)
def test_is_headless_honours_the_environment(monkeypatch, env, headless):
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))  # as if inside Jupyter
    monkeypatch.delenv("COURSE_HEADLESS", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_headless() is headless


def test_title_counts_epochs_from_1_like_the_progress_bar_and_the_last_frame_says_how_many(monkeypatch):
    titles = []
    live = LivePlot(title="AE")
    live.headless = False
    monkeypatch.setattr(live, "render", lambda history, model=None, when=None: titles.append(when) or b"")
    state = training_state()  # in its first epoch (state.epoch == 0), as the bar's "epoch 1/5"
    live.on_step_end(state)
    state.history.epoch = 5
    live.on_train_end(state)
    assert titles == ["epoch 1", "after 5 epochs"]


def test_the_final_frame_has_the_title_and_the_recorded_curve(monkeypatch):
    figures, real_figure = [], liveplot.Figure
    monkeypatch.setattr(liveplot, "Figure", lambda *a, **k: figures.append(real_figure(*a, **k)) or figures[-1])
    state = training_state(n_steps=20)
    LivePlot(title="AE").on_train_end(state)
    ax = figures[-1].axes[0]
    assert ax.get_title() == "AE, after 1 epoch"
    assert list(ax.lines[0].get_ydata()) == state.history.steps["loss"]  # the raw curve under the smoothed one


def test_a_long_curve_is_drawn_from_every_kth_step_at_its_own_step_numbers(monkeypatch):
    figures, real_figure = [], liveplot.Figure
    monkeypatch.setattr(liveplot, "Figure", lambda *a, **k: figures.append(real_figure(*a, **k)) or figures[-1])
    state = training_state(n_steps=1000)
    LivePlot().on_train_end(state)
    raw, smooth = figures[-1].axes[0].lines[:2]
    assert len(raw.get_xdata()) <= liveplot.MAX_POINTS and len(smooth.get_xdata()) == len(raw.get_xdata())
    assert list(raw.get_xdata()[:3]) == [0, 3, 6]  # 1,000 steps: every 3rd, at its step number
    assert list(raw.get_ydata()[:3]) == [state.history.steps["loss"][i] for i in (0, 3, 6)]
    assert smooth.get_ydata()[1] == liveplot._smooth(state.history.steps["loss"])[3]  # smoothed over every step


def test_slow_frames_are_drawn_less_often_so_drawing_takes_at_most_a_twentieth_of_the_time(monkeypatch):
    monkeypatch.setattr(liveplot.time, "monotonic", FakeClock(now=1000.0, tick=1.0))  # one second per step
    monkeypatch.setattr(liveplot.time, "perf_counter", FakeClock(now=0.0, tick=2.0))  # each frame takes 2 s to draw
    live = LivePlot(every_s=1)
    live.headless = False
    state = training_state()
    for _ in range(100):  # 100 simulated seconds: every step would be due at every_s = 1
        live.on_step_end(state)
    assert live.frames == 3  # one frame every 40 s: 2 s of drawing in each 40
