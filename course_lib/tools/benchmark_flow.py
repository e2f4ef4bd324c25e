"""The benchmark's lesson 9 entries (`python -m course_lib.tools.benchmark --only flow flow_fast`):

- `flow`: the flow-matching U-Net (`recipes.FLOW`), trained as lesson 9 trains it, sampled with at most 10 network
  calls (`SOLVER`); also scores every (method, steps) the lesson's table compares, up to 32 calls.
- `flow_fast`: the same flow, then reflow on its own (noise, image) pairs and a one-step distillation, as lesson 9
  does; sampled with one network call. Its training seconds count all three trainings and the pairs.
"""

import time

import torch

from .. import recipes
from ..data import load_dataset, make_loader
from ..fastpath import fast_autocast
from ..flow import distill_step, pair_step, reflow_pairs, sample_flow
from ..metrics import fd_to_training_digits
from ..nets import n_params
from ..training import EMA, fit
from .setups import Trained, finished, flow_setup

SOLVER = ("heun", 5)  # (method, steps) of the `flow` entry: 9 network calls (the last step is Euler's)


def _trained_flow(profile: str, device: torch.device):
    s = recipes.FLOW.settings(profile)
    epochs, batch_size = s.for_model("flow")
    train = load_dataset("mnist", "train", n=s.n_train)
    flow = flow_setup(profile, device)
    history = finished(fit(flow.model, make_loader(train, batch_size), flow.step, flow.optimizer, epochs,
                           device=device, callbacks=flow.callbacks, progress=False))
    return flow, history, train


def train_flow(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    flow, history, _ = _trained_flow(profile, device)
    extra = {}
    for method, steps in (("euler", 1), ("euler", 2), ("euler", 4), ("euler", 8), ("euler", 16), ("heun", 2),
                          ("heun", 4), ("heun", 8)):
        images = flow.sample(500, torch.Generator().manual_seed(6), steps=steps, method=method)
        extra[f"fd_{method}{steps}_500"] = fd_to_training_digits(images)
        extra[f"fd2_{method}{steps}_500"] = fd_to_training_digits(images, network="second")
    method, steps = SOLVER
    return Trained(lambda n, generator: (flow.sample(n, generator, steps=steps, method=method), None),
                   n_params(flow.model), history.seconds, extra={"solver": f"{method} x {steps}", **extra})


def _pair_trained(R: recipes.FlowRecipe, start: torch.nn.Module, pairs, step, profile: str, device: torch.device):
    """A copy of `start`'s weights trained on the pairs with `step` for R's epochs; returns (averaged model, history)."""
    epochs, batch_size = R.settings(profile).for_model(R.name.split("/")[1])
    model = R.build(R.settings(profile)).to(device)
    model.load_state_dict(start.state_dict())
    ema = EMA(model, decay=R.ema_decay)

    def fast_step(model, batch):  # bfloat16 where the CPU has it, as lesson 9 trains
        with fast_autocast(device):
            return step(model, batch)

    history = finished(fit(model, make_loader(pairs, batch_size), fast_step,
                           torch.optim.Adam(model.parameters(), lr=R.lr), epochs, device=device, callbacks=[ema],
                           progress=False))
    return ema.model, history


def train_flow_fast(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    flow, history, train = _trained_flow(profile, device)
    method, steps = recipes.REFLOW.pair_solver
    start = time.perf_counter()

    def v_model(x, t):
        with fast_autocast(device):
            return flow.ema.model(x, t).float()

    pairs = reflow_pairs(v_model, len(train), steps=steps, method=method,
                         generator=torch.Generator().manual_seed(7), device=device)
    pair_seconds = time.perf_counter() - start
    reflow, reflow_history = _pair_trained(recipes.REFLOW, flow.ema.model, pairs,
                                           pair_step(torch.Generator().manual_seed(8)), profile, device)
    distilled, distill_history = _pair_trained(recipes.DISTILL, reflow, pairs, distill_step(), profile, device)

    def sample(n, generator, model=distilled, steps=1):
        with torch.no_grad():
            return sample_flow(model, n=n, steps=steps, generator=generator, device=device)[0].cpu()

    extra = {"pair_seconds": pair_seconds, "reflow_seconds": reflow_history.seconds,
             "distill_seconds": distill_history.seconds}
    for name, model in (("reflow", reflow), ("distilled", distilled)):
        for calls in (1, 2):
            images = sample(500, torch.Generator().manual_seed(6), model, calls)
            extra[f"fd_{name}_euler{calls}_500"] = fd_to_training_digits(images)
            extra[f"fd2_{name}_euler{calls}_500"] = fd_to_training_digits(images, network="second")
    seconds = history.seconds + pair_seconds + reflow_history.seconds + distill_history.seconds
    return Trained(lambda n, generator: (sample(n, generator), None), n_params(distilled), seconds, extra)
