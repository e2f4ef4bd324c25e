"""The tool that runs lessons as a Run-All does (python -m course_lib.tools.run_lessons): what it reads from an
executed notebook, and the mistakes it refuses."""

import nbformat
import pytest

from course_lib.tools import run_lessons


def executed_cell(outputs, start="2026-12-04T10:00:00.000000Z", end="2026-12-04T10:01:02.500000Z"):
    cell = nbformat.v4.new_code_cell("train()\nmore()", outputs=outputs)
    cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    return cell


def test_a_cell_takes_the_seconds_the_kernel_recorded():
    assert run_lessons.cell_seconds(executed_cell([])) == 62.5
    assert run_lessons.cell_seconds(nbformat.v4.new_code_cell("never run")) == 0.0


def test_a_cells_text_is_its_prints_results_and_error_but_not_its_figures():
    cell = executed_cell([
        nbformat.v4.new_output("stream", name="stdout", text="loss 0.3\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
        nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>", "image/png": "iVBOR"}),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="the loss should fall", traceback=[]),
    ])
    assert run_lessons.cell_text(cell) == "loss 0.3\n42\nAssertionError: the loss should fall\n"


@pytest.mark.parametrize("argv, said", [(["--only", "lesson11"], "unknown lesson(s) lesson11"),
                                        (["--jobs", "0"], "--jobs must be 1 or more")])
def test_mistakes_are_refused_with_what_to_type(argv, said, capsys):
    with pytest.raises(SystemExit):
        run_lessons.main(argv)
    assert said in capsys.readouterr().err
