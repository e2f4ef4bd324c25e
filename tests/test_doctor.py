"""The doctor runs headless, prints every item, and says what to do about a problem."""

import importlib

import course_lib
from course_lib import pretrained

doctor_module = importlib.import_module("course_lib.tools.doctor")

ITEMS = ("course_lib", "torch", "device", "cpu", "colab", "ipywidgets", "data", "bundled weights")


def test_doctor_prints_every_item(capsys):
    report = course_lib.doctor(check_network=False)
    printed = capsys.readouterr().out
    assert set(report) == set(ITEMS)
    for item in ITEMS:
        assert item in printed
    assert report["bundled weights"][0] == doctor_module.OK, report["bundled weights"]
    assert "sha256" in report["bundled weights"][1]
    assert "torch " in report["torch"][1] and "ipywidgets" in report["ipywidgets"][1]


def test_command_line_exits_zero_when_all_is_well(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert doctor_module.main() == 0
    assert "Everything the lessons need is here." in capsys.readouterr().out


def test_colab_without_a_gpu_names_the_menu_path(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    monkeypatch.setattr(doctor_module.torch.cuda, "is_available", lambda: False)
    status, detail = doctor_module.check_colab()
    assert status == doctor_module.WARN and "Runtime > Change runtime type" in detail


def test_damaged_weights_fail_and_the_exit_code_says_so(monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "verify", lambda: ["gan/dcgan.safetensors: sha256 0000, the manifest expects 1111"])
    assert doctor_module.main() == 1
    out = capsys.readouterr().out
    assert "gan/dcgan.safetensors" in out and "Fix first: bundled weights" in out


def test_a_check_that_crashes_is_reported_not_raised(monkeypatch):
    def broken():
        raise OSError("disk gone")

    monkeypatch.setattr(doctor_module, "check_weights", broken)
    report = doctor_module.doctor(quiet=True, check_network=False)
    assert report["bundled weights"][0] == doctor_module.FAIL and "disk gone" in report["bundled weights"][1]


def test_doctor_says_when_the_cpu_is_busy(monkeypatch):
    monkeypatch.setattr(doctor_module.os, "getloadavg", lambda: (3.9, 3.0, 2.0))
    monkeypatch.setattr(doctor_module.os, "cpu_count", lambda: 2)
    status, detail = doctor_module.check_cpu()
    assert status == doctor_module.WARN and "busy: load 3.9 on 2 cores" in detail and "Close other programs" in detail


def test_doctor_says_how_to_stop_threads_spinning(monkeypatch):
    monkeypatch.setattr(doctor_module.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr("course_lib.config.WAIT_POLICY", "spin (OpenMP's default)")
    status, detail = doctor_module.check_cpu()
    assert status == doctor_module.WARN and "import course_lib` before `import torch`" in detail


def test_doctor_suggests_spinning_on_an_idle_machine_and_accepts_it_when_chosen(monkeypatch):
    monkeypatch.setattr(doctor_module.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr("course_lib.config.WAIT_POLICY", "PASSIVE")
    status, detail = doctor_module.check_cpu()
    assert status == doctor_module.OK and "OMP_WAIT_POLICY=ACTIVE trains" in detail
    monkeypatch.setattr("course_lib.config.WAIT_POLICY", "ACTIVE")
    status, detail = doctor_module.check_cpu()
    assert status == doctor_module.OK and "set by you" in detail
    monkeypatch.setattr(doctor_module.os, "getloadavg", lambda: (3.9, 3.0, 2.0))
    status, detail = doctor_module.check_cpu()
    assert status == doctor_module.WARN and "Close other programs" in detail


def test_doctor_checks_the_classroom_mirror_when_one_is_set(monkeypatch, tmp_path):
    reached = []
    monkeypatch.setattr(doctor_module, "_can_reach", lambda host, timeout=3.0: reached.append(host) or False)
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_DATA_MIRROR", "http://127.0.0.1:8765")
    status, detail = doctor_module.check_data(check_network=True)
    assert reached == [("127.0.0.1", 8765)]
    assert status == doctor_module.WARN and "COURSE_DATA_MIRROR=http://127.0.0.1:8765/" in detail
