"""The GAN lab: frames follow training, controls act on the running GANStep, run / pause drive one background task."""

import asyncio

import pytest
import torch

from course_lib.gan_dashboard import N_FAKE, GANDashboard, G_LOSSES, generator_push
from course_lib.gans import GAN, MLPDiscriminator, MLPGenerator


@pytest.fixture
def dash():
    return GANDashboard(toy="ring", loss="non_saturating", seed=0, steps_per_frame=2)


def test_training_changes_the_picture(dash):
    before = bytes(dash.image.value)
    dash.train(5)
    assert bytes(dash.image.value) != before
    assert "step 5" in dash._title.get_text()


def test_train_records_every_step_and_draws_only_the_final_frame_when_headless(dash):
    assert dash.headless  # conftest sets COURSE_HEADLESS=1
    frames = dash.frames
    logs = dash.train(7)
    assert sorted(logs) == ["d_fake", "d_loss", "d_real", "g_loss"]
    assert all(len(values) == 7 for values in logs.values())
    assert all(dash.history[key] == values for key, values in logs.items())
    assert dash.steps == 7 and dash.frames == frames + 1
    dash.train(3)  # history keeps counting across calls
    assert len(dash.history["g_loss"]) == 10 and dash.steps == 10


def test_the_same_seed_trains_the_same_way():
    first, second = GANDashboard(seed=3).train(4), GANDashboard(seed=3).train(4)
    assert first == second
    assert GANDashboard(seed=4).train(4) != first


def test_sliders_change_the_running_gan_step(dash):
    dash.lr_d.value = 1e-2
    assert dash.gan_step.opt_d.param_groups[0]["lr"] == pytest.approx(1e-2)
    assert dash.gan_step.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3)  # the other one is left alone
    dash.lr_g.value = 1e-4
    assert dash.gan_step.opt_g.param_groups[0]["lr"] == pytest.approx(1e-4)
    dash.d_steps.value = 3
    assert dash.gan_step.d_steps == 3
    dash.train(2)
    assert dash.steps == 2  # no reset: the sliders act on the networks being trained


def test_changing_the_loss_resets_and_wgan_shows_critic_scores(dash):
    dash.train(3)
    dash.loss_menu.value = "wgan_gp"
    assert dash.gan_step.loss == "wgan_gp" and dash.steps == 0
    assert all(len(values) == 0 for values in dash.history.values())
    logs = dash.train(3)
    assert sorted(logs) == ["critic_fake", "critic_real", "d_loss", "g_loss"]
    assert "critic score" in dash._colorbar.ax.get_ylabel()
    with torch.no_grad():  # the colour scale follows the critic's raw scores, not 0..1
        scores = dash.gan.discriminator(dash._grid)
    assert dash._heat.get_clim() == pytest.approx((scores.min().item(), scores.max().item()), abs=1e-5)
    assert [line.get_label() for line in dash._score_lines] == ["critic_real", "critic_fake"]


def test_changing_the_toy_resets_with_its_real_points(dash):
    dash.train(2)
    dash.toy_menu.value = "grid"
    assert dash.steps == 0
    assert dash._real_dots.get_offsets() == pytest.approx(dash.real.numpy())
    assert dash.coverage["n_modes"] == 25 and "/25" in dash._title.get_text()
    dash.toy_menu.value = "moons"  # no modes to count
    assert dash.coverage is None


def test_reset_button_restores_the_seeded_start(dash):
    start = [p.clone() for p in dash.gan.parameters()]
    dash.train(3)
    assert any(not torch.equal(a, b) for a, b in zip(start, dash.gan.parameters()))
    dash.reset_button.click()
    assert dash.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(start, dash.gan.parameters()))


def test_step_button_advances_exactly_one_step_and_redraws(dash):
    frames, before = dash.frames, bytes(dash.image.value)
    dash.step_button.click()
    assert dash.steps == 1 and len(dash.history["d_loss"]) == 1
    assert dash.frames == frames + 1 and bytes(dash.image.value) != before
    assert dash.status.value.startswith("step 1 ")


def test_run_trains_in_the_background_until_paused(dash):
    async def session():
        dash.start()
        task = dash._task
        await asyncio.sleep(0.3)
        dash.pause()
        dash.start()  # run pressed again before the old task noticed the pause: still one task
        assert dash._task is task and len(asyncio.all_tasks()) == 2  # this coroutine and the training task
        await asyncio.sleep(0.2)
        assert dash.steps > 0
        dash.pause()
        await asyncio.sleep(0.05)
        paused_at = dash.steps
        await asyncio.sleep(0.2)
        return task, paused_at

    task, paused_at = asyncio.run(session())
    assert paused_at > 0 and dash.steps == paused_at and task.done()
    assert dash.steps % dash.steps_per_frame == 0  # whole frames only
    assert dash.run_button.description == "run"


def test_run_without_an_event_loop_says_what_to_do(dash):
    dash.run_button.value = True  # a plain script has no running event loop
    assert dash.run_button.value is False and dash.steps == 0
    assert "dash.train(" in dash.status.value
    with pytest.raises(RuntimeError, match=r"dash\.train\("):
        dash.start()


def test_unknown_names_raise_a_clear_error():
    with pytest.raises(ValueError, match="Unknown toy 'rings'.*ring, grid"):
        GANDashboard(toy="rings")
    with pytest.raises(ValueError, match="Unknown loss 'wgan'.*wgan_gp"):
        GANDashboard(loss="wgan")


@pytest.mark.parametrize("asked, message", [
    ({"lr_d": 1.0}, r"lr_d=1.0 is outside .* 1e-05 \.\. 0\.1"),  # the slider would have trained at 0.1
    ({"lr_g": 1e-7}, r"lr_g=1e-07 is outside"),
    ({"lr_g": float("nan")}, r"lr_g=nan is outside"),
    ({"d_steps": 0}, r"d_steps=0 must be a whole number from 1 to 20"),  # the slider would have done 1
    ({"d_steps": 2.5}, r"d_steps=2.5 must be a whole number"),
])
def test_values_the_sliders_cannot_show_are_refused_not_clamped(asked, message):
    with pytest.raises(ValueError, match=message):
        GANDashboard(**asked)


def test_the_ends_of_the_slider_ranges_are_taken_as_asked():
    dash = GANDashboard(lr_d=1e-5, lr_g=0.1, d_steps=20)
    assert (dash.lr_d.value, dash.lr_g.value, dash.d_steps.value) == (pytest.approx(1e-5), pytest.approx(0.1), 20)
    assert dash.gan_step.d_steps == 20 and dash.gan_step.opt_g.param_groups[0]["lr"] == pytest.approx(0.1)


def test_the_arrow_caption_sits_on_a_light_box_over_the_dark_heatmap(dash):
    box = dash._push_text.get_bbox_patch()
    assert box is not None and min(box.get_facecolor()[:3]) > 0.9  # white-ish behind dark text


@pytest.mark.parametrize("loss", sorted(G_LOSSES))
def test_the_arrows_point_where_the_generator_loss_falls(loss):
    torch.manual_seed(0)
    gan = GAN(MLPGenerator(), MLPDiscriminator())
    x, push = generator_push(gan, torch.randn(N_FAKE, 2), loss)
    assert all(p.grad is None for p in gan.parameters())  # drawing arrows must not leave gradients behind
    per_point = lambda points: torch.stack([G_LOSSES[loss](gan.discriminator(p[None])) for p in points])  # noqa: E731
    with torch.no_grad():
        moved = x + 1e-3 * push / push.norm(dim=1, keepdim=True)
        assert (per_point(moved) < per_point(x)).float().mean() > 0.95


def test_arrows_are_drawn_on_every_generated_point_with_bounded_length(dash):
    dash.train(3)
    lengths = (torch.as_tensor(dash._arrows.U) ** 2 + torch.as_tensor(dash._arrows.V) ** 2).sqrt()
    assert len(lengths) == N_FAKE
    assert lengths.max() <= 0.3 + 1e-6 and (lengths > 0.1).float().mean() > 0.5


def test_ctrl_c_during_train_keeps_what_was_learned(dash, capsys):
    real_train, calls = dash._train, []

    def interrupted_on_the_fourth_step(steps):
        calls.append(steps)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_train(steps)

    dash._train = interrupted_on_the_fourth_step
    logs = dash.train(10)
    assert len(logs["d_loss"]) == 3 and dash.steps == 3  # the three finished steps are kept
    assert "Interrupted after 3 of 10 steps" in capsys.readouterr().out
    assert "step 3" in dash._title.get_text()  # the final frame shows where it stopped
    dash._train = real_train
    dash.train(2)  # and training goes on from there
    assert dash.steps == 5
