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


def _policy(monkeypatch, load: float, policy: str, why: str):
    monkeypatch.setattr(doctor_module.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(doctor_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr("course_lib.config.WAIT_POLICY", policy)
    monkeypatch.setattr("course_lib.config.WAIT_POLICY_WHY", why)
    return doctor_module.check_cpu()


def test_doctor_says_how_to_stop_threads_spinning_on_a_busy_cpu(monkeypatch):
    status, detail = _policy(monkeypatch, 3.9, "spin (OpenMP's default)", "the cores were idle when the course started")
    assert status == doctor_module.WARN and "restart the kernel" in detail and "OMP_WAIT_POLICY=PASSIVE" in detail
    status, detail = _policy(monkeypatch, 3.9, "PASSIVE", "other programs kept 1.2 cores busy when the course started")
    assert status == doctor_module.WARN and "Close other programs" in detail and "restart the kernel" not in detail


def test_doctor_accepts_either_policy_on_an_idle_cpu_and_says_when_a_restart_would_be_faster(monkeypatch):
    status, detail = _policy(monkeypatch, 0.1, "spin (OpenMP's default)", "the cores were idle when the course started")
    assert status == doctor_module.OK and "spin while they wait" in detail and "idle when the course" in detail
    status, detail = _policy(monkeypatch, 0.1, "PASSIVE", "other programs kept 1.2 cores busy when the course started")
    assert status == doctor_module.OK and "restarting the kernel lets them spin" in detail
    status, detail = _policy(monkeypatch, 0.1, "PASSIVE", "OMP_WAIT_POLICY was set in the environment")
    assert status == doctor_module.OK and "sleep while they wait" in detail and "restarting" not in detail


def test_doctor_checks_the_classroom_mirror_when_one_is_set(monkeypatch, tmp_path):
    reached = []
    monkeypatch.setattr(doctor_module, "_can_reach", lambda host, timeout=3.0: reached.append(host) or False)
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_DATA_MIRROR", "http://127.0.0.1:8765")
    status, detail = doctor_module.check_data(check_network=True)
    assert reached == [("127.0.0.1", 8765)]
    assert status == doctor_module.WARN and "COURSE_DATA_MIRROR=http://127.0.0.1:8765/" in detail
