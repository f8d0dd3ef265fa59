"""dlcourse.host_memory: ``import dlcourse`` keeps freed host memory for the next step.

Measured, not read back: ``mallopt`` has no getter, so a fresh process (the policy is
process-wide and cannot be undone) allocates, touches and frees a 64 MiB block five
times, as a training step does with its temporaries, and counts its minor page faults.
Under glibc's defaults each round maps fresh pages (16,384 of 4 KiB, fewer with huge
pages); under the policy the block is reused and the rounds after the first fault
almost never.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

import dlcourse as dl
from dlcourse import host_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

_ROUNDS = r"""
import ctypes, json, resource, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import dlcourse
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
n = 64 << 20
faults = []
for _ in range(5):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(json.dumps({"policy": dlcourse.host_memory.host_memory_policy(), "faults": faults,
                  "warnings": [str(w.message) for w in caught]}))
"""


def _run(policy: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != host_memory.ENV_VAR}
    if policy is not None:
        env[host_memory.ENV_VAR] = policy
    done = subprocess.run([sys.executable, "-c", _ROUNDS], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the policy is glibc's mallopt")
def test_import_keeps_freed_memory_and_system_opts_out():
    kept, system = _run(None), _run("system")
    assert kept["policy"]["applied"] is True
    assert kept["policy"]["mmap_threshold"] == 1 << 30
    assert system["policy"] == {"applied": False, "reason": "DLCOURSE_HOST_MEMORY=system"}
    # the rounds after the first: a few faults at most when kept (observed 0), a page
    # fault per page or per huge page under glibc's defaults (observed 16,385 each)
    assert max(kept["faults"][1:]) <= 8, kept["faults"]
    assert min(system["faults"][1:]) >= 32, system["faults"]
    assert sum(system["faults"][1:]) > 100 * max(1, sum(kept["faults"][1:]))


def test_unknown_setting_warns_and_leaves_malloc_alone():
    got = _run("sytem")
    assert got["policy"]["applied"] is False
    assert any("DLCOURSE_HOST_MEMORY='sytem'" in w and "'system'" in w
               for w in got["warnings"]), got["warnings"]


@pytest.mark.parametrize("kwargs", [
    {"mmap_threshold": -1},
    {"trim_threshold": 2**31},  # does not fit mallopt's C int
    {"top_pad": 1.5},
    {"top_pad": True},
])
def test_bad_sizes_name_the_argument(kwargs):
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=f"keep_host_memory: {name}={value!r}"):
        host_memory.keep_host_memory(**kwargs)


def test_this_process_reports_its_policy():
    policy = dl.host_memory.host_memory_policy()
    assert policy["applied"] is GLIBC or os.environ.get(host_memory.ENV_VAR) == "system"
    assert isinstance(policy["reason"], str) and policy["reason"]


def test_without_glibc_nothing_is_set(monkeypatch):
    monkeypatch.setattr(host_memory, "_policy", {})  # this process's record stays as it is
    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("", ""))
    assert host_memory.keep_host_memory() is False
    assert host_memory.host_memory_policy()["applied"] is False
    assert "no glibc" in host_memory.host_memory_policy()["reason"]
