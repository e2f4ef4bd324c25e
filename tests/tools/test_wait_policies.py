"""The wait-policy measurement (`python -m course_lib.tools.wait_policies`): what each fresh Python reports."""

import course_lib.tools.wait_policies as tool


def test_measure_reports_every_step_rate_and_the_cpu_spent_in_a_pause(monkeypatch):
    monkeypatch.setattr(tool.time, "sleep", lambda seconds: None)  # the 3-second pause, skipped
    result = tool.measure(seconds=0.05)
    assert set(result) == {"text U-Net", "code prior", "StyleGAN", "DCGAN", "CPU s in a 3 s pause"}
    assert all(result[name] > 0 for name in ("text U-Net", "code prior", "StyleGAN", "DCGAN"))
    assert result["CPU s in a 3 s pause"] >= 0

