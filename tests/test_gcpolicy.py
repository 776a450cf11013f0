"""amisite.gcpolicy: a web worker freezes what it keeps, and frees what died since at each
refreeze. Each case runs in a Python of its own: freezing the test process would change
every other test's garbage collection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from amisite import gcpolicy

ROOT = Path(__file__).resolve().parent.parent


def run(code: str, **env) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_frozen_objects_are_not_walked_and_a_refreeze_frees_the_dead_among_them():
    out = run(
        """
        import gc, weakref
        from amisite import gcpolicy

        class Node: pass
        a = Node(); a.me = a                      # a cycle: only the collector frees it
        gone = weakref.ref(a)
        gcpolicy.refreeze()
        assert gc.get_freeze_count() > 0 and len(gc.get_objects(2)) < 100
        del a
        gc.collect()
        print("frozen survives a full collection:", gone() is not None)
        done = gcpolicy.refreeze()
        print("a refreeze frees it:", gone() is None, done["freed"] >= 1)
        """
    )
    assert out.splitlines() == [
        "frozen survives a full collection: True",
        "a refreeze frees it: True True",
    ]


def test_the_thread_freezes_once_ready_then_every_interval():
    out = run(
        """
        import gc, threading, time, weakref
        from amisite import gcpolicy

        class Node: pass
        ready = threading.Event()
        gcpolicy.start(ready, every=0.2)
        time.sleep(0.3)
        print("before ready:", gc.get_freeze_count())
        a = Node(); a.me = a
        gone = weakref.ref(a)
        ready.set()
        deadline = time.monotonic() + 10
        while not gc.get_freeze_count() and time.monotonic() < deadline:
            time.sleep(0.01)
        print("after ready:", gc.get_freeze_count() > 0)
        del a
        while gone() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        print("freed by the next refreeze:", gone() is None)
        """
    )
    assert out.splitlines() == [
        "before ready: 0",
        "after ready: True",
        "freed by the next refreeze: True",
    ]


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv("AMI_GC_REFREEZE_SECONDS", raising=False)
    assert gcpolicy.refreeze_seconds() == 60
    monkeypatch.setenv("AMI_GC_REFREEZE_SECONDS", "0")
    assert gcpolicy.refreeze_seconds() == 0
    for bad in ("soon", "-5"):
        monkeypatch.setenv("AMI_GC_REFREEZE_SECONDS", bad)
        with pytest.raises(ImproperlyConfigured, match="AMI_GC_REFREEZE_SECONDS"):
            gcpolicy.refreeze_seconds()


def test_a_web_worker_freezes_after_its_warm_up():
    out = run(
        """
        import gc, time
        from amisite import asgi, serve

        serve.application()                  # what uvicorn calls in each worker
        assert asgi.warmed_up.wait(60)
        deadline = time.monotonic() + 30
        while not gc.get_freeze_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        print("frozen:", gc.get_freeze_count() > 100_000)
        """,
        DJANGO_SETTINGS_MODULE="amisite.settings",
        SECRET_KEY="test-only-secret-key",
        AMI_SECRETS_KEY="dGVzdC1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q=",
        AMI_VAR_DIR="/tmp/ami-gcpolicy-test",
    )
    assert out == "frozen: True"
