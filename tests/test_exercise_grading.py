"""The exercise checker never marks a wrong answer right (issue 19, class 8): counts must be exact whole numbers,
a multiple-choice answer is one letter, and a string where a function is expected is told to pass the function."""

import pytest
import torch

from course_lib.exercises import check

ENCODER_PARAMS = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 2 + 2


@pytest.mark.parametrize("name, answer", [
    ("ae_params", ENCODER_PARAMS + 0.9), ("ae_params", ENCODER_PARAMS - 0.1), ("ae_params", True),
    ("guidance_cost", 100.5), ("guidance_cost", 99.9), ("guidance_cost", "100 or so"),
])
def test_a_count_off_by_a_fraction_is_not_the_count(name, answer, capsys):
    assert check(name, answer).right is False
    assert capsys.readouterr().out.startswith("Not yet")


@pytest.mark.parametrize("answer", [ENCODER_PARAMS, float(ENCODER_PARAMS), f"{ENCODER_PARAMS:,}",
                                    torch.tensor(ENCODER_PARAMS)])
def test_a_count_written_as_a_whole_number_in_any_form_is_right(answer, capsys):
    assert check("ae_params", answer).right is True


@pytest.mark.parametrize("name", ["linear_ae", "beta", "decode_when"])
@pytest.mark.parametrize("answer", ["bogus", "both a and c", "b and c", "bb", "ba", "", "b c"])
def test_a_multiple_choice_answer_is_judged_by_the_whole_answer_not_its_first_letter(name, answer, capsys):
    assert check(name, answer).right is False
    out = capsys.readouterr().out
    assert "one letter" in out or "answer 'a' or 'b'" in out


@pytest.mark.parametrize("answer", ["b", "B", " b ", "(b)", "b)", "'b'"])
def test_a_single_letter_in_the_usual_forms_is_read(answer):
    assert check("linear_ae", answer).right is True


@pytest.mark.parametrize("name", ["ae_loss", "kl", "q_sample", "guidance", "latent_scale"])
@pytest.mark.parametrize("answer", ["my_function", "lambda x: x", 3.0])
def test_a_value_where_a_function_is_expected_says_to_pass_the_function(name, answer, capsys):
    assert check(name, answer).right is False
    out = capsys.readouterr().out
    assert "wants your function itself" in out and f"exercises.check({name!r}, my_function)" in out


def test_a_function_where_a_value_is_expected_says_so(capsys):
    assert check("optimal_d", lambda p, q: p / (p + q)).right is False
    assert "wants a value, not a function" in capsys.readouterr().out


@pytest.mark.parametrize("name, answer", [("optimal_d", float("nan")), ("optimal_d", "0.75 probably"),
                                          ("signal_left", float("inf")), ("latent_factor", "four")])
def test_a_number_question_refuses_what_is_not_a_finite_number(name, answer, capsys):
    assert check(name, answer).right is False
    assert "give a number" in capsys.readouterr().out


def test_the_helpers():
    from course_lib.exercises._base import choice, number, whole_number

    assert whole_number("5_000") == 5000 and whole_number(2.5) is None and whole_number(torch.ones(2)) is None
    assert number(torch.tensor(0.5)) == 0.5 and number(False) is None and number(None) is None
    assert choice("c", "ab") is None and choice(" (A) ") == "a"
