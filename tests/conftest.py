"""Fixtures shared by several test files."""

import socket

import pytest

from course_lib import data


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """Every connection attempt fails at once, as on a machine with no internet."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(data, "_download_failed", False)  # module state: a fresh session
    monkeypatch.setattr(data, "_told", set())
