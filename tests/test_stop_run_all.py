"""Pressing Jupyter's stop button during Run All stops the lesson (issue 21.1): in a real kernel, an interrupt that
arrives while `fit` trains ends that cell with a one-line TrainingInterrupted, and the cells queued after it are not
run, exactly as JupyterLab's Run All queues them (execute requests with stop_on_error)."""

import time

import pytest
from jupyter_client.manager import start_new_kernel

TRAINING_CELL = """
import time, torch
from course_lib.training import Callback, fit

class Slow(Callback):
    def on_step_end(self, state):
        if state.step == 1:
            print("training", flush=True)
        time.sleep(0.05)

model = torch.nn.Linear(1, 1)
batches = [(torch.randn(8, 1),) for _ in range(10)]
fit(model, batches, lambda m, b: m(b[0]).pow(2).mean(), torch.optim.SGD(model.parameters(), lr=0.01), 1000,
    callbacks=[Slow()], progress=False)
"""


def reply_to(client, msg_id, timeout=120):
    while True:
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


@pytest.fixture
def kernel():
    manager, client = start_new_kernel(startup_timeout=120)
    yield manager, client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def test_stop_during_run_all_ends_the_training_cell_and_the_queued_cells_do_not_run(kernel):
    manager, client = kernel
    training = client.execute(TRAINING_CELL, stop_on_error=True)
    queued = client.execute("after_the_training = True", stop_on_error=True)  # the next cell of Run All
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the training loop runs, then press stop
        msg = client.get_iopub_msg(timeout=120)
        if msg["msg_type"] == "stream" and "training" in msg["content"]["text"]:
            break
    manager.interrupt_kernel()

    first = reply_to(client, training)
    assert first["status"] == "error" and first["ename"] == "TrainingInterrupted"
    assert len(first["traceback"]) == 1 and "Run All stops here" in first["traceback"][0]  # a message, not a trace
    assert reply_to(client, queued)["status"] == "aborted"

    check = client.execute("from course_lib.training import last_history\n"
                           "print(last_history().stopped, 'after_the_training' in globals())")
    reply_to(client, check)
    outputs = []
    while not outputs:
        msg = client.get_iopub_msg(timeout=60)
        if msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == check:
            outputs.append(msg["content"]["text"])
    assert outputs[0].split() == ["interrupted", "False"]  # the run is kept; the queued cell never ran
