"""Memory of a process as the bench sums it: proportional (PSS), so shared pages count once overall."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sensorpipe.stack.process import pss_bytes, rss_bytes


def test_pss_is_resident_memory_with_shared_pages_split() -> None:
    pss, rss = pss_bytes(os.getpid()), rss_bytes(os.getpid())
    assert 0 < pss <= rss


def test_a_forked_child_shares_its_parents_pages() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            time.sleep(1.0)  # both interpreters loaded: the same libraries mapped twice
            assert pss_bytes(child.pid) < rss_bytes(child.pid)
        finally:
            sibling.kill()
            sibling.wait()
    finally:
        child.kill()
        child.wait()


def test_a_process_that_is_gone_holds_nothing() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert pss_bytes(gone.pid) == 0
