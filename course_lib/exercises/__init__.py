"""Self-checking exercises: `check(name, answer)` says whether an answer is right and, if not, gives a hint.
`solution(name)` prints a reference answer for when you are stuck.

    >>> check("ae_params", 784 * 512 + 512 + 512 * 256 + 256 + 256 * 2 + 2)
    Correct! The encoder has 533,762 parameters; most of them sit in the first layer.
    Verdict(right=True)

One file per lesson registers that lesson's exercises; graders take the expected numbers from the library
(`course_lib.vae.kl_to_standard_normal`, `course_lib.diffusion.q_sample`, ...), so a formula lives in one place.
"""

from ._base import EXERCISES, Exercise, check, passed, register, solution
from . import (  # noqa: F401  (imported to register their exercises, in lesson order)
    lesson1_autoencoders,
    lesson2_vae,
    lesson3_gans,
    lesson4_diffusion,
    lesson5_conditional,
    lesson6_latent_diffusion,
    lesson7_gan_architectures,
    lesson8_restoration,
    lesson9_score_and_flow,
    lesson10_text_to_image,
)

__all__ = ["EXERCISES", "Exercise", "check", "passed", "register", "solution"]
