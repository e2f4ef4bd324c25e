"""Lesson 9's exercises: every right answer passes, each typical mistake gets its own hint and never passes, and the
graders expect the library's numbers (`score_from_eps`, `langevin`, `flow_matching_loss`, `sample_flow`,
`heun_step`), so the lesson can train and sample with the students' functions once they pass."""

import copy
import math

import pytest
import torch

from course_lib import exercises, recipes
from course_lib.flow import FlowNet, flow_matching_loss, heun_step, sample_flow
from course_lib.exercises.lesson9_score_and_flow import (_grade_langevin_step, _langevin_case, _teacher_calls,
                                                         euler_sample_solution, flow_loss_solution,
                                                         heun_step_solution, langevin_step_solution, score_solution)
from course_lib.scores import langevin, score_from_eps
from course_lib.unet import UNet

METHOD, STEPS = recipes.REFLOW.pair_solver  # how the lesson's flow makes the pairs of the one-step model
PAIR_CALLS = sample_flow(lambda x, t: torch.zeros_like(x), noise=torch.zeros(1, 2), steps=STEPS, method=METHOD,
                         image_range=False)[1].nfe

RIGHT = {  # in the notebook's order
    "score_from_eps": score_solution,
    "langevin_step": langevin_step_solution,
    "flow_loss": flow_loss_solution,
    "euler_sampler": euler_sample_solution,
    "heun_step": heun_step_solution,
    "one_step_nfe": PAIR_CALLS,
}


def test_lesson_9_registers_its_exercises_in_the_notebooks_order():
    names = list(exercises.EXERCISES)
    assert names[names.index("score_from_eps"):names.index("one_step_nfe") + 1] == list(RIGHT)
    code = {name for name in RIGHT if callable(exercises.EXERCISES[name].solution)}
    assert code == set(RIGHT) - {"one_step_nfe"}


@pytest.mark.parametrize("name", list(RIGHT))
def test_the_right_answer_passes(name, capsys):
    assert exercises.check(name, RIGHT[name]).right
    assert capsys.readouterr().out.startswith("Correct!")


def test_the_library_functions_themselves_are_right_answers(capsys):
    answers = {
        "score_from_eps": score_from_eps,
        "flow_loss": lambda v_model, x0, gen: flow_matching_loss(v_model, x0, gen, image_range=False),
        "euler_sampler": lambda v_model, x1, steps: sample_flow(v_model, noise=x1, steps=steps, image_range=False)[0],
        "heun_step": lambda v_model, x, t, t_next: heun_step(v_model, x, t, t_next)[0],
    }
    for name, answer in answers.items():
        assert exercises.check(name, answer).right, capsys.readouterr().out


# ---------------------------------------------------------------- scores and Langevin


def test_the_langevin_grader_expects_one_step_of_the_librarys_langevin(capsys):
    """The grader hands the student z, the first draw of a generator with its seed; `langevin` fed a generator with
    that seed makes the same step, which is the formula x + delta / 2 * score(x) + sqrt(delta) * z."""
    score, x, delta, z, seed = _langevin_case()
    gen = torch.Generator().manual_seed(seed)
    assert torch.equal(torch.randn(x.shape, generator=gen), z)
    library, _ = langevin(score, x, delta, 1, generator=torch.Generator().manual_seed(seed))
    formula = x + delta / 2 * score(x) + math.sqrt(delta) * z
    assert torch.allclose(library, formula, atol=1e-6)
    assert not torch.allclose(library, x + delta / 2 * score(x), atol=1e-2)  # the noise matters at this delta
    assert _grade_langevin_step(lambda s, points, d, noise: formula.clone())[0]
    assert not _grade_langevin_step(lambda s, points, d, noise: formula + 1e-3)[0]


SCORE_MISTAKES = [
    (lambda eps, abar: -eps / math.sqrt(abar), "sqrt(abar_t) scales the image"),
    (lambda eps, abar: eps / math.sqrt(1 - abar), "minus sign is missing"),
    (lambda eps, abar: -eps / (1 - abar), "not by the variance"),
    (lambda eps, abar: -eps * math.sqrt(1 - abar), "do not multiply"),
    (lambda eps, abar: (-eps / math.sqrt(1 - abar)).mean(), "shaped like eps"),
]

LANGEVIN_MISTAKES = [
    (lambda score, x, delta, z: x + delta * score(x) + math.sqrt(delta) * z, "delta / 2"),
    (lambda score, x, delta, z: x + delta / 2 * score(x) + delta * z, "sqrt(delta), not delta"),
    (lambda score, x, delta, z: x - delta / 2 * score(x) + math.sqrt(delta) * z, "do not subtract"),
    (lambda score, x, delta, z: x + delta / 2 * score(x), "noise is missing"),
    (lambda score, x, delta, z: x + delta / 2 * score(x) + math.sqrt(delta) * torch.randn_like(x), "z you are given"),
]


@pytest.mark.parametrize("name, answer, hint", [("score_from_eps", *m) for m in SCORE_MISTAKES]
                         + [("langevin_step", *m) for m in LANGEVIN_MISTAKES])
def test_score_and_langevin_mistakes_get_their_hint(name, answer, hint, capsys):
    assert not exercises.check(name, answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


# ---------------------------------------------------------------- the flow-matching loss


def loss_with(first="t", ends="right", sign=1, reshape="any", model_t="flat", remap=False, reduce="mean",
              keep_grad="yes"):
    """The flow-matching loss put together from parts, as a student might write it."""

    def loss(v_model, x0, gen):
        x0 = 2 * x0 - 1 if remap else x0
        if first == "t":
            t = torch.rand(len(x0), generator=gen)
            eps = torch.randn(x0.shape, generator=gen)
        else:
            eps = torch.randn(x0.shape, generator=gen)
            t = torch.rand(len(x0), generator=gen)
        t_ = {"any": t.view(-1, *[1] * (x0.dim() - 1)), "images": t.view(-1, 1, 1, 1), "none": t}[reshape]
        x_t = t_ * x0 + (1 - t_) * eps if ends == "swapped" else (1 - t_) * x0 + t_ * eps
        with torch.set_grad_enabled(keep_grad != "no_grad"):
            error = (v_model(x_t, t_ if model_t == "reshaped" else t) - sign * (eps - x0)).pow(2)
            out = error.sum() if reduce == "sum" else error.mean()
        return {"yes": out, "no_grad": out, "item": out.item(), "detach": out.detach()}[keep_grad]

    return loss


FLOW_LOSS_MISTAKES = [
    (loss_with(sign=-1), "wrong sign"),
    (loss_with(ends="swapped"), "ends are swapped"),
    (loss_with(first="eps"), "draw t first, then eps"),
    (loss_with(reshape="none"), "t.view(-1, *[1] * (x0.dim() - 1))"),
    (loss_with(reshape="images"), "right for images, but for points (B, 2) v_model saw x_t shaped (5, 1, 5, 2)"),
    (lambda v_model, x0, gen: loss_with()(v_model, x0, gen) if x0.dim() == 4 else None, "right for images, but not"),
    (loss_with(model_t="reshaped"), "it takes t shaped (6,)"),
    (loss_with(remap=True), "already in [-1, 1]"),
    (loss_with(reduce="sum"), "not the sum"),
    (loss_with(keep_grad="item"), "carries no gradient"),
    (loss_with(keep_grad="detach"), "carries no gradient"),
    (loss_with(keep_grad="no_grad"), "carries no gradient"),
]


@pytest.mark.parametrize("answer, hint", FLOW_LOSS_MISTAKES)
def test_flow_loss_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("flow_loss", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_a_loss_written_for_any_shape_passes_on_images_and_points(capsys):
    assert exercises.check("flow_loss", loss_with()).right, capsys.readouterr().out


@pytest.mark.parametrize("seed", [0, 1, 31])  # after seed 31, torch's own generator draws what the grader's gen draws
def test_a_loss_drawn_without_the_generator_is_told_how_to_draw(seed, capsys):
    def unseeded(v_model, x0, gen):
        t = torch.rand(len(x0))  # torch's own generator, not gen
        eps = torch.randn_like(x0)
        t_ = t.view(-1, *[1] * (x0.dim() - 1))
        return (v_model((1 - t_) * x0 + t_ * eps, t) - (eps - x0)).pow(2).mean()

    torch.manual_seed(seed)
    assert not exercises.check("flow_loss", unseeded).right
    assert "generator=gen" in capsys.readouterr().out


# ---------------------------------------------------------------- the Euler sampler and Heun's step


def sampler_with(direction="down", sign=1, n_steps=lambda steps: steps, at="t", fixed_steps=None, images_only=False):
    """The Euler sampler put together from parts, as a student might write it."""

    def sample(v_model, x1, steps):
        if images_only and x1.dim() != 4:
            x1 = x1.view(-1, 1, 1, 1)
        steps = fixed_steps or steps
        n = n_steps(steps)
        times = torch.linspace(1, 0, n + 1).tolist()
        times = times[::-1] if direction == "up" else times
        x = x1
        for t, t_next in zip(times[:-1], times[1:]):
            v = v_model(x, torch.full((len(x),), t_next if at == "t_next" else t))
            x = x + sign * (t_next - t) * v
        return x

    return sample


EULER_MISTAKES = [
    (sampler_with(direction="up"), "runs forwards"),
    (sampler_with(sign=-1), "wrong sign"),
    (sampler_with(n_steps=lambda steps: steps - 1), "one step too few"),
    (sampler_with(n_steps=lambda steps: steps + 1), "one step too many"),
    (sampler_with(n_steps=lambda steps: 2 * steps), "once per step"),
    (sampler_with(at="t_next"), "taken at t_next"),
    (sampler_with(fixed_steps=5), "v_model 2 times"),  # right for steps=5 only: the second run catches it
    (sampler_with(images_only=True), "shaped like x1 (7, 2)"),
    (lambda v_model, x1, steps: euler_sample_solution(v_model, x1, steps).clamp(-1, 1), "(t_next - t) * v"),
]


@pytest.mark.parametrize("answer, hint", EULER_MISTAKES)
def test_euler_sampler_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("euler_sampler", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_an_euler_sampler_written_with_linspace_passes(capsys):
    assert exercises.check("euler_sampler", sampler_with()).right, capsys.readouterr().out


def heun_with(kind):
    def step(v_model, x, t, t_next):
        dt, full = t_next - t, lambda time: torch.full((len(x),), time)
        v1 = v_model(x, full(t))
        if kind == "euler":
            return x + dt * v1
        if kind == "midpoint":
            return x + dt * v_model(x + dt / 2 * v1, full(t + dt / 2))
        v2 = v_model(x + dt * v1, full(t_next))
        if kind == "v2":
            return x + dt * v2
        if kind == "tuple":
            return x + dt * (v1 + v2) / 2, (v1 + v2) / 2
        return x + dt * (v1 + 2 * v2) / 3

    return step


HEUN_MISTAKES = [
    (heun_with("euler"), "plain Euler step"),
    (heun_with("v2"), "uses v2 alone"),
    (heun_with("midpoint"), "midpoint method"),
    (heun_with("tuple"), "return x at t_next alone"),
    (heun_with("weighted"), "(v1 + v2) / 2"),
]


@pytest.mark.parametrize("answer, hint", HEUN_MISTAKES)
def test_heun_step_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("heun_step", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


# ---------------------------------------------------------------- the cost of the teacher


def test_the_nfe_answer_is_the_calls_sample_flow_makes_with_the_recipes_pair_solver(capsys):
    """The grader counts the calls a stand-in network receives; sample_flow's own count, path.nfe, agrees."""
    assert _teacher_calls() == PAIR_CALLS == RIGHT["one_step_nfe"]
    assert f'method="{METHOD}" and steps={STEPS}' in exercises.EXERCISES["one_step_nfe"].question
    exercises.solution("one_step_nfe")
    assert capsys.readouterr().out.startswith(f"{PAIR_CALLS} network calls per batch of pairs")


NFE_MISTAKES = [(STEPS, "counts the steps"), (STEPS + 1, "no call there"), (2 * (STEPS + 1), "no call there"),
                (1, "distilled model itself"), (4 * STEPS, "path.nfe"), (16.5, "whole number"),
                ("many", "whole number")]
if PAIR_CALLS == 2 * STEPS - 1:  # sample_flow's Heun ends with an Euler step
    NFE_MISTAKES.append((2 * STEPS, "last step is an Euler step"))


@pytest.mark.parametrize("answer, hint", NFE_MISTAKES)
def test_nfe_mistakes_get_their_hint(answer, hint, capsys):
    assert METHOD == "heun", "the hints below are Heun's: two calls per step"
    assert not exercises.check("one_step_nfe", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


@pytest.mark.parametrize("form", [str, float, torch.tensor])
def test_the_nfe_count_in_any_whole_number_form_is_right(form, capsys):
    assert exercises.check("one_step_nfe", form(RIGHT["one_step_nfe"])).right


# ---------------------------------------------------------------- the lesson trains and samples with them


def test_training_with_the_students_loss_is_training_with_the_librarys():
    """The lesson's training step can switch to my_flow_loss once it is right: the same t, eps and loss, so the same
    weights after a few SGD steps."""
    torch.manual_seed(0)
    start = FlowNet(UNet(channels=(8, 16, 16), time_dim=32))
    images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))

    def trained(loss_of):
        model, gen = copy.deepcopy(start), torch.Generator().manual_seed(2)
        opt = torch.optim.SGD(model.parameters(), 0.1)
        for batch in (images[:4], images[4:]):
            opt.zero_grad()
            loss_of(model, batch, gen).backward()
            opt.step()
        return [p.detach() for p in model.parameters()]

    library = trained(lambda m, x, gen: flow_matching_loss(m, x, gen))  # images in [0, 1], mapped inside
    yours = trained(lambda m, x, gen: flow_loss_solution(m, 2 * x - 1, gen))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(library, yours))


def test_the_students_samplers_draw_what_the_library_draws_with_a_network():
    torch.manual_seed(0)
    net = FlowNet(UNet(channels=(8, 16, 16), time_dim=32)).eval()
    x1 = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        library, _ = sample_flow(net, noise=x1, steps=3, image_range=False)
        assert torch.allclose(euler_sample_solution(net, x1, 3), library, atol=1e-5)
        assert torch.allclose(heun_step_solution(net, x1, 1.0, 0.5), heun_step(net, x1, 1.0, 0.5)[0], atol=1e-5)


def test_passed_follows_the_latest_check(capsys):
    assert exercises.check("euler_sampler", euler_sample_solution).right
    assert exercises.passed("euler_sampler", euler_sample_solution)
    assert not exercises.passed("euler_sampler", sampler_with())  # another function than the one checked
    assert not exercises.check("euler_sampler", sampler_with(at="t_next")).right
    assert not exercises.passed("euler_sampler")


@pytest.mark.parametrize("name", list(RIGHT))
def test_grading_leaves_the_students_random_generator_alone(name, capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    exercises.check(name, RIGHT[name])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", [name for name, answer in RIGHT.items() if callable(answer)])
def test_the_notebooks_placeholder_is_told_to_return_something(name, capsys):
    def placeholder(*args):
        # YOUR CODE HERE
        return None

    assert not exercises.check(name, placeholder).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet: your function returned None; return "), out
