"""The `gpu` profile, exercised without a GPU (`python -m course_lib.tools.gpu_dry_run`): every model the lessons
train is built at the gpu profile's sizes, trained a few steps on the CPU with the lesson's own step and callbacks,
and sampled, so that a shape, memory or setting error of that profile fails here, not on a student's Colab.

To stay short, each model is measured at batches of 8 and 16 digits and the memory of a step is extrapolated to the
gpu batch size; one test checks that extrapolation against a measurement at the full batch size."""

import pytest
import torch

from course_lib import recipes
from course_lib.config import one_thread
from course_lib.nets import n_params
from course_lib.tools import gpu_dry_run
from course_lib.tools.gpu_dry_run import CUDA_OVERHEAD_BYTES, DRY_RUNS, NOT_DRY_RUN, T4_BYTES, dry_run, measure

SMALL_BATCHES = (8, 16)
BY_NAME = {run.recipes[0].name: run for run in DRY_RUNS}


def recipe_name(run):
    return run.recipes[0].name


def test_every_recipe_a_lesson_trains_is_dry_run():
    covered = [R.name for run in DRY_RUNS for R in run.recipes]
    assert len(covered) == len(set(covered))
    assert set(covered) | set(NOT_DRY_RUN) == set(recipes.every_recipe())
    assert not set(covered) & set(NOT_DRY_RUN)


@pytest.mark.parametrize("run", DRY_RUNS, ids=recipe_name)
def test_trains_and_samples_at_the_gpu_sizes_within_a_t4(run, no_network):
    with one_thread():
        result = dry_run(run, SMALL_BATCHES)  # raises if a number is not finite or a shape is not the lesson's
    assert result.parameters == n_params(run.recipes[0].build(run.settings("gpu")))
    assert result.batch_size == run.epochs_and_batch("gpu")[1] and result.measured_at == SMALL_BATCHES
    assert result.logs and all(torch.isfinite(torch.tensor(v)) for v in result.logs.values())
    assert result.sample_shape == run.sample_shape
    assert 4 * result.parameters < result.memory_bytes  # at least the weights: the measurement sees the tensors
    assert result.memory_bytes + CUDA_OVERHEAD_BYTES <= T4_BYTES


@pytest.mark.parametrize("run", DRY_RUNS, ids=recipe_name)
def test_the_gpu_sizes_are_the_recipes_and_larger_than_cpu(run):
    gpu, cpu = run.settings("gpu"), run.settings("cpu")
    sizes = {n_params(R.build(gpu)) for R in run.recipes}
    assert len(sizes) == 1, "the recipes of one dry run train the same network"
    assert all(n_params(R.build(gpu)) >= n_params(R.build(cpu)) for R in run.recipes)
    if gpu.channels and isinstance(run.recipes[0], recipes.DiffusionRecipe):  # the U-Nets are wider on a GPU
        assert n_params(run.recipes[0].build(gpu)) > n_params(run.recipes[0].build(cpu))
    gpu_batch, cpu_batch = run.epochs_and_batch("gpu")[1], run.epochs_and_batch("cpu")[1]
    assert gpu_batch > cpu_batch or run.batch_size  # only the toy GANs keep one batch size in every profile


@pytest.mark.parametrize("run", [run for run in DRY_RUNS if isinstance(run.recipes[0], recipes.DiffusionRecipe)],
                         ids=recipe_name)
def test_a_u_net_gets_its_recipes_learning_rate_schedule(run, no_network):
    """The dry run trains each U-Net with its recipe's schedule (lesson 5's guided U-Net: a cosine), as the lessons do."""
    from course_lib.data import load_dataset

    setup, _ = run.build(run.settings("smoke"), torch.device("cpu"), load_dataset("mnist", "train", n=64))
    assert setup.cosine_lr == run.recipes[0].cosine_lr


def test_the_memory_of_a_step_is_weights_gradients_adam_and_activations():
    """The MLP autoencoder at 128 digits: 4 bytes for each weight, its gradient and Adam's two averages, and a
    little for the activations of 784-512-256-2 layers and back."""
    run = BY_NAME["autoencoders/ae2"]
    with one_thread():
        result = measure(run, 128)
    state = 4 * 4 * result.parameters
    activations = 4 * 128 * 2 * (784 + 512 + 256 + 2) * 4  # a few tensors per layer, both ways
    assert state < result.memory_bytes < state + activations


def test_extrapolation_from_small_batches_matches_a_full_batch():
    """DCGAN: at 8 and 16 images its weights and two optimizers outweigh the activations, at 128 they do not, so a
    line through the two peaks would miss half the memory; the extrapolation follows every moment of the step."""
    run = BY_NAME["gan/dcgan"]
    with one_thread():
        full = measure(run, run.epochs_and_batch()[1])
        small = dry_run(run, SMALL_BATCHES)
    assert abs(small.memory_bytes - full.memory_bytes) < 0.02 * full.memory_bytes


def test_the_command_prints_one_row_per_model(capsys):
    with one_thread():
        assert gpu_dry_run.main(["--only", "autoencoders", "--batch", "8", "16"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| autoencoders |")]
    assert len(rows) == 3 and all("MiB (extrapolated)" in row and "| 128 |" in row for row in rows)
    with pytest.raises(SystemExit, match="Nothing matches"):
        gpu_dry_run.main(["--only", "no_such_lesson"])
