"""Beat the peers: the course's models against well-known implementations, trained side by side for the same time.

Each pair trains the course's model and a well-known *peer* on the same digits and machine for the same wall-clock
budget, and scores both with the course's Frechet distance (`course_lib.metrics`; lower is better):

- **diffusion**: lesson 4's U-Net DDPM (with Min-SNR weighting) vs the Hugging Face diffusion course's
  `diffusers` UNet2DModel + DDPMScheduler (needs `pip install -e ".[peers]"`);
- **vae**: lesson 2's convolutional VAE vs the PyTorch examples' MLP VAE;
- **gan**: lesson 3's DCGAN vs the PyTorch examples' DCGAN.

Those peers are several times larger than the course's models and may not leave noise on a CPU within the budget.
Two more pairs race networks of the *same size*, so that only the training recipe differs:

- **diffusion_same_size**: lesson 4's DDPM vs diffusers' UNet2DModel at the course U-Net's widths, no attention
  (`peer_models.diffusers_same_size_unet`), trained as diffusers' example does: DDPMScheduler, plain noise loss,
  float32, no EMA; sampled with the course's DDIM;
- **gan_same_size**: lesson 3's DCGAN vs the PyTorch examples' DCGAN cut to 28 x 28 at the course's width
  (`peer_models.PyTorchExamplesDCGAN28`), with the example's settings (Adam 2e-4, beta1 0.5, BCE, its init).

The course's side is built from its recipe (`setups.vae_setup`, `dcgan_setup`, `ddpm_setup`) at the lesson's batch
size. The peers (`peer_models`) are re-implemented from their public sources at their documented settings, nothing
tuned for them and nothing changed but what the task needs (one channel; 28 x 28 digits, resized for a 64 x 64 net).

    python -m course_lib.tools.peers --profile cpu --out runs/peers                    # every pair, ~1 h on 2 cores
    python -m course_lib.tools.peers --profile cpu --out runs/peers --only diffusion_same_size gan_same_size  # ~30 min
    python -m course_lib.tools.peers --profile smoke --out /tmp/p --only vae           # seconds
    python -m course_lib.tools.results_table runs/peers/peers.json --readme README.md  # the README's table

How a race works, and the time to quality (`seconds_to_threshold`, `time_ratio`): see `course_lib.tools.race`.
Writes `OUT/peers.json` (per pair: the budget, both models' final Frechet distance, images/s, images seen,
parameters, settings, curve of (seconds, Frechet distance) and time to the threshold, and ratio = course / peer; the
machine; the distances of held-out real digits and of noise for as many images) and `OUT/peers.png`.

A side whose training stops before its budget (NaN, the GAN guard) is no result: its pair gets `"status": "stopped"`
and no ratio, and the exit code is 1; Ctrl-C keeps the pairs raced so far, marks its pair "interrupted", exits 130.
"""

import argparse
import json
import platform
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from .. import recipes
from ..config import PROFILES, pick_device
from ..data import load_dataset
from ..fastpath import describe_fast_path, describe_machine, fast_dtype
from ..metrics import reference_points
from ..vae import negative_elbo
from . import peer_models
from .setups import dcgan_setup, ddpm_setup, vae_setup
from .peer_models import INSTALL_DIFFUSERS, import_diffusers
from .race import Entrant, RaceSettings, fd_text, race, seconds_to_reach, time_ratio

PAIRS = ("diffusion", "vae", "gan", "diffusion_same_size", "gan_same_size")


# More checkpoints make a finer curve for the time to the threshold, and cost scoring time (not training time).
# Scoring a GAN costs a second or two (500 samples are one batch through G): the same-size GAN pair is scored every
# 1/16 of its budget. A diffusion model's 500 samples cost 50 DDIM steps each (about half a minute to a minute on a
# CPU): the same-size diffusion pair is scored 6 times; the first three pairs keep their 4 points.
EVERY_16TH = tuple(k / 16 for k in range(1, 17))
SAME_SIZE_DIFFUSION_POINTS = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)

# Thresholds (the distance each pair is timed to). The Frechet distance of 500 samples runs from about 20 (held-out
# real digits) to about 95,000 (uniform noise); digits are recognizable below about 1,000. Each threshold is a value
# the course's side reaches within about the first half of its budget on a 2-core CPU, so that a peer learning up
# to about twice as slowly still reaches it within the budget and the times compare: lesson 3's DCGAN is at about
# 500 after 50 s (350 after 130 s); lesson 4's DDPM at about 250 after 300 s (13,900 after 60 s of one busy thread,
# 13,000 images), so 1,000 falls about a third of the way; lesson 2's VAE at about 650 after 60 s.
CPU_THRESHOLDS = {"diffusion": 1000.0, "vae": 800.0, "gan": 500.0, "diffusion_same_size": 1000.0,
                  "gan_same_size": 500.0}

SETTINGS = {
    # smoke: every line runs in seconds; tiny U-Nets on both sides, as lesson 4's smoke profile does. Its thresholds
    # only exercise the code: after 1 s every model is still near noise.
    "smoke": RaceSettings({name: 1.0 for name in PAIRS}, n_scored=64, ddim_steps=5, checkpoints=(0.5, 1.0),
                          thresholds={name: 70_000.0 for name in PAIRS}, diffusers_channels=(8, 16, 16)),
    "cpu": RaceSettings({"diffusion": 300.0, "vae": 60.0, "gan": 150.0, "diffusion_same_size": 300.0,
                         "gan_same_size": 150.0}, n_scored=500, ddim_steps=50, checkpoints=(0.125, 0.25, 0.5, 1.0),
                        thresholds=CPU_THRESHOLDS,
                        pair_checkpoints={"gan_same_size": EVERY_16TH,
                                          "diffusion_same_size": SAME_SIZE_DIFFUSION_POINTS}),
    # gpu: the same budgets and thresholds (1,000 samples score a little lower than 500: the thresholds are reached
    # a little sooner on both sides alike)
    "gpu": RaceSettings({"diffusion": 300.0, "vae": 60.0, "gan": 150.0, "diffusion_same_size": 300.0,
                         "gan_same_size": 150.0}, n_scored=1000, ddim_steps=50, checkpoints=(0.125, 0.25, 0.5, 1.0),
                        thresholds=CPU_THRESHOLDS,
                        pair_checkpoints={"gan_same_size": EVERY_16TH,
                                          "diffusion_same_size": SAME_SIZE_DIFFUSION_POINTS}),
}

# The course's diffusion recipes, as (recipe, batch size). "min_snr" is lesson 4's own (`recipes.DDPM`, at the
# lesson's batch size: None), adopted after this race measured it against the paper's plain loss;
# `--course-diffusion plain` races the plain loss with the settings lesson 4 used before (Adam 2e-3, batch 64).
COURSE_DIFFUSION = {
    "min_snr": (recipes.DDPM, None),
    "plain": (replace(recipes.DDPM, min_snr_gamma=None, lr=2e-3), 64),
}


# ---------------------------------------------------------------- the pairs


def vae_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 2's VAE vs the PyTorch examples' VAE; both also give their test negative ELBO (nats per image, same
    Bernoulli likelihood)."""
    R = recipes.VAE8
    s = R.settings(profile)
    batch_size = s.for_model("conv")[1]
    train = load_dataset("mnist", "train", n=s.n_train)
    test_x = load_dataset("mnist", "test", source="bundled").tensors[0]

    def nelbo(model):
        return {"nelbo_test": negative_elbo(model, test_x)}

    cosine = " with a cosine over the budget" if R.cosine_lr else ""
    augment = f"augmentation {R.augment:g}" if R.augment else "no augmentation"
    course = Entrant("course ConvVAE", f"lesson 2's ConvVAE ({R.name}), negative ELBO with beta {R.beta:g}, "
                     f"{augment}, Adam {R.lr:g}{cosine}, batch {batch_size}",
                     lambda: vae_setup(profile, device, R), train, batch_size, nelbo)
    peer = Entrant("pytorch/examples VAE", f"pytorch/examples vae/main.py: MLP 784-400-20, BCE + KLD summed, "
                   f"Adam {peer_models.VAE_LR:g}, batch {peer_models.VAE_BATCH_SIZE}",
                   lambda: peer_models.pytorch_examples_vae_setup(device), train, peer_models.VAE_BATCH_SIZE, nelbo)
    return course, peer


def gan_pair_course(profile: str, device: torch.device) -> Entrant:
    """The course's side of both GAN pairs: lesson 3's DCGAN at its recipe and batch size."""
    R = recipes.DCGAN
    s = R.settings(profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    augmented = f", D's inputs augmented ({R.augment:g})" if R.augment else ""
    return Entrant("course DCGAN", f"lesson 3's DCGAN for 28 x 28 ({R.name}), {R.loss.replace('_', '-')} loss, "
                   f"Adam {R.lr:g} {R.betas}{augmented}, batch {s.batch_size}",
                   lambda: dcgan_setup(profile, device), train, s.batch_size)


def gan_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 3's DCGAN (28 x 28) vs the PyTorch examples' DCGAN (digits resized to 64 x 64, samples back to 28)."""
    course = gan_pair_course(profile, device)
    x, y = course.data.tensors
    big = TensorDataset(torch.cat([peer_models.to_dcgan_size(part) for part in x.split(1000)]), y)  # once, untimed
    peer = Entrant("pytorch/examples DCGAN", f"pytorch/examples dcgan/main.py: {peer_models.DCGAN_SIZE} x "
                   f"{peer_models.DCGAN_SIZE}, nz 100, ngf = ndf = 64, BatchNorm, N(0, 0.02) init, BCE, Adam "
                   f"{peer_models.DCGAN_LR:g} ({peer_models.DCGAN_BETA1:g}, 0.999), "
                   f"batch {peer_models.DCGAN_BATCH_SIZE}; samples shrunk to 28 x 28",
                   lambda: peer_models.pytorch_examples_dcgan_setup(device), big, peer_models.DCGAN_BATCH_SIZE)
    return course, peer


def _course_diffusion(profile: str, course_diffusion: str, steps: int, device: torch.device):
    """The course's side of a diffusion pair: (recipe, batch size, Entrant builder, settings in words)."""
    R, batch_size = COURSE_DIFFUSION[course_diffusion]
    s = R.settings(profile)
    batch_size = batch_size or s.batch_size

    def build():
        ddpm = ddpm_setup(profile, device, R)
        sample = ddpm.sample
        ddpm.sample = lambda n, generator: sample(n, generator, steps=steps)
        return ddpm

    weighting = f"Min-SNR {R.min_snr_gamma:g}" if R.min_snr_gamma else "plain loss"
    dtype = fast_dtype(device)
    precision = f"{str(dtype).replace('torch.', '')} autocast" if dtype else "float32"
    words = (f"lesson 4's U-Net {'/'.join(map(str, s.channels))}, {R.schedule} schedule T = {R.T}, {weighting}, "
             f"Adam {R.lr:g}, batch {batch_size}, EMA {R.ema_decay:g}, {precision}; DDIM {steps} steps")
    return R, batch_size, build, words


def diffusion_pair(profile: str, device: torch.device, settings: RaceSettings,
                   course_diffusion: str = "min_snr") -> tuple[Entrant, Entrant]:
    """The course's DDPM (`COURSE_DIFFUSION[course_diffusion]`) vs the HF course's diffusers recipe, both sampled
    with DDIM in `settings.ddim_steps` steps."""
    import_diffusers()  # fail before any training when diffusers is missing
    steps = settings.ddim_steps
    R, batch_size, course_build, words = _course_diffusion(profile, course_diffusion, steps, device)
    train = load_dataset("mnist", "train", n=R.settings(profile).n_train)
    course = Entrant(f"course DDPM ({course_diffusion})", words, course_build, train, batch_size)
    channels = settings.diffusers_channels
    peer = Entrant("diffusers UNet2DModel",
                   f"HF diffusion course unit 2: UNet2DModel {'/'.join(map(str, channels))} with attention at 14 and "
                   f"7 px, DDPMScheduler squaredcos_cap_v2 T = 1000, MSE on the noise, "
                   f"Adam {peer_models.DIFFUSERS_LR:g}, batch {peer_models.DIFFUSERS_BATCH_SIZE}, float32; "
                   f"diffusers DDIMScheduler {steps} steps",
                   lambda: peer_models.diffusers_setup(device, channels, steps), train,
                   peer_models.DIFFUSERS_BATCH_SIZE)
    return course, peer


def diffusion_same_size_pair(profile: str, device: torch.device, settings: RaceSettings,
                             course_diffusion: str = "min_snr") -> tuple[Entrant, Entrant]:
    """The course's DDPM vs a diffusers UNet2DModel of the same size trained the usual way
    (`peer_models.diffusers_same_size_setup`): diffusers' DDPMScheduler with the course's schedule, the plain MSE on
    the noise, float32, no EMA; Adam at the course side's learning rate and batch size (lesson 4's 1e-3 is also the
    HF course's), so that what differs is the course's Min-SNR weighting, bfloat16 and EMA (lesson 4 has no
    augmentation). Both are sampled with the course's DDIM in `settings.ddim_steps` steps."""
    peer_models.import_diffusers_without_middle_block()  # fail before any training when diffusers cannot build it
    steps = settings.ddim_steps
    R, batch_size, course_build, words = _course_diffusion(profile, course_diffusion, steps, device)
    s = R.settings(profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    course = Entrant(f"course DDPM ({course_diffusion})", words, course_build, train, batch_size)
    unet = R.build(s)  # the course's network, for its widths and time embedding
    channels, time_dim, lr = unet.channels, unet.time_dim, R.lr
    peer = Entrant("diffusers UNet2DModel, same size",
                   f"UNet2DModel {'/'.join(map(str, channels))}, DownBlock2D/UpBlock2D, 1 layer per block, no "
                   f"attention, no middle block, time embedding {time_dim}; DDPMScheduler {R.schedule} T = {R.T}, MSE "
                   f"on the noise, t ~ randint(0, {R.T}), Adam {lr:g}, batch {batch_size}, float32, no EMA; the "
                   f"course's DDIM {steps} steps",
                   lambda: peer_models.diffusers_same_size_setup(device, channels, time_dim, lr, R.T, R.schedule,
                                                                 steps),
                   train, batch_size)
    return course, peer


def dcgan_width(gan: nn.Module) -> int:
    """The width of lesson 3's DCGAN (`DCGANGenerator(width=...)`): the channels of G's 14 x 14 layer."""
    return gan.generator.upsample[0].out_channels


def gan_same_size_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 3's DCGAN vs the PyTorch examples' DCGAN cut to 28 x 28 at the course's width
    (`peer_models.PyTorchExamplesDCGAN28`), with the example's settings: Adam 2e-4 (0.5, 0.999), BCE, N(0, 0.02)
    init, batch 64, no augmentation."""
    course = gan_pair_course(profile, device)
    width = dcgan_width(recipes.DCGAN.build(recipes.DCGAN.settings(profile)))
    x, y = course.data.tensors
    small = TensorDataset(peer_models.to_dcgan28_range(x), y)  # once, untimed
    peer = Entrant("pytorch/examples DCGAN at 28 x 28", f"pytorch/examples dcgan/main.py cut to 28 x 28 (7 -> 14 -> "
                   f"28), nz 100, ngf = ndf = {width}, BatchNorm, N(0, 0.02) init, BCE, Adam "
                   f"{peer_models.DCGAN_LR:g} ({peer_models.DCGAN_BETA1:g}, 0.999), "
                   f"batch {peer_models.DCGAN_BATCH_SIZE}",
                   lambda: peer_models.pytorch_examples_dcgan28_setup(device, width), small,
                   peer_models.DCGAN_BATCH_SIZE)
    return course, peer


PAIR_BUILDERS = {"diffusion": diffusion_pair, "vae": vae_pair, "gan": gan_pair,
                 "diffusion_same_size": diffusion_same_size_pair, "gan_same_size": gan_same_size_pair}
# Targets for ratio = course FD / peer FD: at most half for diffusion, below 1 (the course better) for the others
TARGETS = {"diffusion": 0.5, "vae": 1.0, "gan": 1.0, "diffusion_same_size": 1.0, "gan_same_size": 1.0}


def meets_target(name: str, ratio: float) -> bool:
    """ratio = course FD / peer FD: at most `TARGETS[name]` when that is below 1, below 1 otherwise."""
    return ratio <= TARGETS[name] if TARGETS[name] < 1 else ratio < 1


def machine(device: torch.device) -> dict:
    """What the race ran on: torch, threads, device, processor, the fast path, and the diffusers version."""
    try:
        diffusers_version = import_diffusers().__version__
    except ImportError:  # the diffusion pair is skipped then
        diffusers_version = None
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "machine": describe_machine(device), "fast_path": describe_fast_path(device),
            "python": platform.python_version(), "diffusers": diffusers_version}


def run(profile: str, out: Path, only: list[str] | None = None, budget_scale: float = 1.0,
        course_diffusion: str = "min_snr") -> dict:
    """Race the pairs in `only` (default: all) and write peers.json and peers.png into `out`."""
    unknown = [name for name in only or [] if name not in PAIRS]
    if unknown:
        raise SystemExit(f"Unknown pair name(s) {', '.join(unknown)}. Valid names: {', '.join(PAIRS)}.")
    if profile not in PROFILES:
        raise SystemExit(f"Unknown profile {profile!r}. Use one of {', '.join(PROFILES)}.")
    if budget_scale <= 0:
        raise SystemExit(f"--budget-scale multiplies the budgets and must be positive, got {budget_scale}.")
    if course_diffusion not in COURSE_DIFFUSION:
        raise SystemExit(f"Unknown course diffusion recipe {course_diffusion!r}. Use one of {', '.join(COURSE_DIFFUSION)}.")
    out.mkdir(parents=True, exist_ok=True)
    device, settings = pick_device(), SETTINGS[profile]
    report = {"profile": profile, "n_scored": settings.n_scored, "course_diffusion": course_diffusion,
              "machine": machine(device), **{k: round(v, 2) for k, v in reference_points(settings.n_scored).items()},
              "pairs": {}}
    previous = out / "peers.json"
    if only and previous.exists() and json.loads(previous.read_text()).get("profile") == profile:
        # racing some pairs again keeps the other pairs' results
        report["pairs"] = {k: v for k, v in json.loads(previous.read_text())["pairs"].items() if k not in only}
    for name in only or PAIRS:
        budget = settings.budgets[name] * budget_scale
        print(f"{name}: {budget:g} s of training for each model")
        try:
            course, peer = PAIR_BUILDERS[name](profile, device, settings, course_diffusion=course_diffusion)
        except ImportError as err:
            print(f"{name}: skipped. {err}")
            report["pairs"][name] = {"status": "skipped", "reason": str(err)}
            continue
        checkpoints = settings.checkpoints_of(name)
        try:
            pair = {"status": "ok", "budget_s": budget,
                    "course": race(course, budget, settings, device, checkpoints),
                    "peer": race(peer, budget, settings, device, checkpoints)}
        except KeyboardInterrupt:
            _write(report | {"pairs": report["pairs"] | {name: {"status": "interrupted", "reason": "Ctrl-C"}}}, out)
            raise
        threshold = settings.thresholds[name]
        pair["fd_threshold"] = threshold
        for side in ("course", "peer"):
            pair[side]["seconds_to_threshold"] = seconds_to_reach(pair[side]["curve"], threshold)
        early = "; ".join(f"{side}: {pair[side]['stopped']}" for side in ("course", "peer")
                          if pair[side]["stopped"] not in (None, "budget"))
        if early:  # a side that stopped before its budget (NaN, D won) has no comparable score
            pair.update(status="stopped", reason=f"training stopped before the budget ({early})")
        else:
            pair["ratio"] = round(pair["course"]["fd"] / max(pair["peer"]["fd"], 1e-9), 4)
            pair["target_ratio"] = TARGETS[name]
            pair["meets_target"] = meets_target(name, pair["ratio"])
            pair["time_ratio"] = time_ratio(pair["course"]["seconds_to_threshold"],
                                            pair["peer"]["seconds_to_threshold"])
        report["pairs"][name] = pair
        _write(report, out)
    _write(report, out)
    print(f"wrote {out / 'peers.json'} and {out / 'peers.png'}\n")
    print(table(report))
    return report


def _write(report: dict, out: Path) -> None:  # after each pair: an interrupted race keeps the pairs before it
    (out / "peers.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "peers.png")


# ---------------------------------------------------------------- the plot and the README table


def not_raced_because(pair: dict) -> str:
    """Why a pair has no result, in a few words: the install command when diffusers is missing, else the reason."""
    reason = pair.get("reason", "")
    return INSTALL_DIFFUSERS if pair["status"] == "skipped" and INSTALL_DIFFUSERS in reason else reason


def plot(report: dict, path: Path) -> None:
    """Frechet distance (log scale) against training seconds, course and peer, one panel per pair."""
    from matplotlib.figure import Figure  # no pyplot: works with any backend, and without a display

    pairs = report["pairs"]
    fig = Figure(figsize=(5 * max(len(pairs), 1), 4.2), layout="constrained")
    axes = fig.subplots(1, max(len(pairs), 1), squeeze=False)[0]
    for ax, (name, pair) in zip(axes, pairs.items()):
        if pair["status"] != "ok":
            why = not_raced_because(pair)
            ax.text(0.5, 0.5, f"{name}: {pair['status']}\n{why}", ha="center", va="center",
                    transform=ax.transAxes, wrap=True)
            ax.set_axis_off()
            continue
        for side, style in (("course", "o-"), ("peer", "s--")):
            seconds, fds = zip(*pair[side]["curve"])
            lines = ax.plot(seconds, fds, style, label=f"{pair[side]['name']} ({pair[side]['images_per_s']:,.0f} "
                                                       f"img/s)")
            reached = pair[side].get("seconds_to_threshold")
            if reached is not None:
                ax.axvline(reached, color=lines[0].get_color(), linestyle=":", alpha=0.7)
        ax.axhline(report["fd_real"], color="grey", linestyle=":", label="held-out real digits")
        if "fd_threshold" in pair:
            ax.axhline(pair["fd_threshold"], color="black", linestyle="-.", linewidth=0.8,
                       label=f"threshold {pair['fd_threshold']:,g}: {threshold_text(pair)}")
        ax.set(yscale="log", xlabel="training seconds", ylabel="Frechet distance (lower is better)",
               title=f"{name}: {pair['budget_s']:g} s each, ratio {pair['ratio']:.3g}")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Same digits, machine and training time ({report['machine']['device']}, torch threads: "
                 f"{report['machine']['threads']}; {report['n_scored']} images scored at each point)")
    fig.savefig(path, dpi=110)


START, END = "<!-- peers:start -->", "<!-- peers:end -->"


def threshold_text(pair: dict) -> str:
    """Seconds to the pair's threshold, course / peer, and their ratio: "62 s / > 150 s (< 0.41)"; a side that never
    reached it shows "> budget", and the ratio is then a bound (course reached it: below course s / budget)."""

    def seconds(side):
        s = pair[side].get("seconds_to_threshold")
        return f"{s:,.0f} s" if s is not None else f"> {pair['budget_s']:g} s"

    course_s, peer_s = pair["course"].get("seconds_to_threshold"), pair["peer"].get("seconds_to_threshold")
    if course_s is not None and peer_s is not None:
        ratio = f"{time_ratio(course_s, peer_s):.2f}"
    elif course_s is not None:
        ratio = f"< {course_s / pair['budget_s']:.2f}"
    elif peer_s is not None:
        ratio = f"> {pair['budget_s'] / max(peer_s, 1e-9):.2f}"
    else:
        ratio = "neither"
    return f"{seconds('course')} / {seconds('peer')} ({ratio})"


def table(report: dict) -> str:
    """The README's markdown table: one row per pair (put between `START` and `END` by
    `python -m course_lib.tools.results_table runs/peers/peers.json --readme README.md`). "time to FD" is each
    side's training seconds to the pair's threshold and their ratio course / peer (`seconds_to_reach`)."""
    rows = [
        "| pair | budget s | course model (parameters) | Frechet distance | images/s | peer model (parameters) "
        "| Frechet distance | images/s | ratio course / peer (target) | time to FD <= threshold: course / peer "
        "(ratio) | test NELBO course / peer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, pair in report["pairs"].items():
        if pair["status"] != "ok":
            why = not_raced_because(pair)
            rows.append(f"| {name} | {pair['status']}: {why} |  |  |  |  |  |  |  |  |  |")
            continue
        course, peer = pair["course"], pair["peer"]
        target = f"<= {pair['target_ratio']:g}" if pair["target_ratio"] < 1 else "< 1"
        verdict = "yes" if pair["meets_target"] else "no"
        nelbo = f"{course['nelbo_test']:.1f} / {peer['nelbo_test']:.1f}" if "nelbo_test" in course else "-"
        timed = f"{pair['fd_threshold']:,g}: {threshold_text(pair)}" if "fd_threshold" in pair else "-"
        rows.append(
            f"| {name} | {pair['budget_s']:g} | {course['name']} ({course['n_params']:,}) | {fd_text(course)} "
            f"| {course['images_per_s']:,.0f} | {peer['name']} ({peer['n_params']:,}) | {fd_text(peer)} "
            f"| {peer['images_per_s']:,.0f} | {pair['ratio']:.3f} ({target}: {verdict}) | {timed} | {nelbo} |"
        )
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course_lib.tools.peers",
                                     description="Train the course's models and their peers for the same time, "
                                                 "and score both with the course's Frechet distance.")
    parser.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--out", type=Path, required=True, help="folder for peers.json and peers.png")
    parser.add_argument("--only", nargs="+", metavar="PAIR", help=f"some of: {', '.join(PAIRS)}")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiplies every training budget")
    parser.add_argument("--course-diffusion", default="min_snr", choices=list(COURSE_DIFFUSION),
                        help="the course's diffusion recipe (default: min_snr, the faster to quality)")
    args = parser.parse_args(argv)
    try:
        report = run(args.profile, args.out, args.only, args.budget_scale, args.course_diffusion)
    except KeyboardInterrupt:
        print(f"race interrupted: {args.out / 'peers.json'} keeps the pairs raced before it.", file=sys.stderr)
        return 130
    stopped = [name for name, pair in report["pairs"].items() if pair["status"] not in ("ok", "skipped")]
    if stopped:
        print(f"not results, a training stopped before its budget: {', '.join(stopped)}", file=sys.stderr)
    return 1 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
