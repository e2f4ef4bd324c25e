"""How fast the course trains under each way torch's CPU threads can wait for each other (course_lib/wait_policy).

Each policy runs in a fresh Python, the course's own choice among them (OpenMP reads it once, when torch starts): training steps per second of four
recipes' own step functions on random data of the right shapes (lesson 10's text U-Net and code prior, lesson 7's
StyleGAN and lesson 3's DCGAN), and the CPU seconds torch's idle threads spend during a 3-second pause after work
(spinning threads burn them; the pause stands for a kernel waiting for its next cell).

    python -m course_lib.tools.wait_policies                 # on the idle machine
    python -m course_lib.tools.wait_policies --busy 1        # beside a busy loop on one core
"""

import argparse
import json
import os
import subprocess
import sys
import time

# "course": nothing set, so `import course_lib` chooses (spinning on idle cores, PASSIVE on busy ones)
POLICIES = {"course": {}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}, "ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"}}


def _steps_per_second(step, model, batch, optimizer, seconds: float) -> float:
    def one():
        out = step(model, batch)
        if optimizer is not None:  # a GAN step updates its own networks; the others return the loss
            loss = out["loss"] if isinstance(out, dict) else out
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    model.train()
    for _ in range(3):  # warm-up
        one()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        one()
        n += 1
    return n / (time.perf_counter() - start)


def measure(seconds: float) -> dict[str, float]:
    """Steps per second of the four steps, and the CPU seconds spent in a 3-second pause after work."""
    import torch

    from .. import recipes
    from ..diffusion import DiffusionSchedule
    from ..gans import GANStep
    from ..text2image import t2i_step
    from ..vqvae import prior_step

    torch.manual_seed(0)
    result = {}
    unet = recipes.T2I_UNET.build(recipes.T2I_UNET.settings("cpu"))
    batch = (torch.randn(64, 4, 14, 14), torch.randint(1, 20, (64, 16)))
    result["text U-Net"] = _steps_per_second(t2i_step(DiffusionSchedule(T=1000)), unet, batch,
                                             torch.optim.Adam(unet.parameters(), 1e-3), seconds)
    prior = recipes.CODE_PRIOR.build(recipes.CODE_PRIOR.settings("cpu"))
    batch = (torch.randint(1, 20, (64, 16)), torch.randint(0, 256, (64, 14, 14)))
    result["code prior"] = _steps_per_second(prior_step(), prior, batch, torch.optim.AdamW(prior.parameters(), 1e-3),
                                             seconds)
    for name, recipe in (("StyleGAN", recipes.STYLEGAN), ("DCGAN", recipes.DCGAN)):
        gan = recipe.build(recipe.settings("cpu"))
        step = GANStep(gan, generator=torch.Generator().manual_seed(0), **recipe.step_args())
        result[name] = _steps_per_second(step, gan, torch.rand(64, 1, 28, 28), None, seconds)
    busy = time.process_time()
    time.sleep(3.0)
    result["CPU s in a 3 s pause"] = time.process_time() - busy
    return result


def _child_policy() -> str:
    from ..wait_policy import POLICY

    return POLICY


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Training speed under each OpenMP wait policy, each in a fresh Python.")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of steps per model")
    parser.add_argument("--rounds", type=int, default=2, help="times each policy is measured, in turn")
    parser.add_argument("--busy", type=int, default=0, help="busy loops running beside, one core each")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps({"policy": _child_policy(), **measure(args.seconds)}))
        return
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for round_ in range(args.rounds):
            for policy, settings in POLICIES.items():
                environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | settings
                out = subprocess.run([sys.executable, "-m", __spec__.name, "--child", "--seconds", str(args.seconds)],
                                     env=environment, capture_output=True, text=True, check=True)
                numbers = json.loads(out.stdout.strip().splitlines()[-1])
                in_force = numbers.pop("policy")
                print(f"round {round_ + 1}, {policy:>7} ({in_force}): steps/s "
                      + ", ".join(f"{k} {v:.2f}" for k, v in numbers.items()), flush=True)
    finally:
        for spinner in spinners:
            spinner.kill()


if __name__ == "__main__":
    main()
