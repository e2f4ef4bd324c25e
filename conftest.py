"""Settings for every test run, the notebooks' included: nbval starts each notebook's kernel from this process, so
the kernel inherits these variables. Tests use the tiny `smoke` profile, never the network, and draw no live plots."""

import os

os.environ["COURSE_PROFILE"] = "smoke"
os.environ["COURSE_OFFLINE"] = "1"
os.environ["COURSE_HEADLESS"] = "1"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's threads sleep while they wait (course_lib/__init__)
