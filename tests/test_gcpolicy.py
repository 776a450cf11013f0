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


def test_frozen_objects_are_not_walked_and_a_full_refreeze_frees_the_dead_among_them():
    out = run(
        """
        import gc, weakref
        from amisite import gcpolicy

        class Node: pass
        old = Node(); old.me = old                # cycles: only the collector frees them
        old_gone = weakref.ref(old)
        gcpolicy.refreeze()
        assert gc.get_freeze_count() > 0 and len(gc.get_objects(2)) < 100
        new = Node(); new.me = new
        new_gone = weakref.ref(new)
        del old, new
        gc.collect()
        print("frozen survives a full collection:", old_gone() is not None)
        done = gcpolicy.refreeze()
        print("a refreeze frees the dead made since, not the frozen:",
              new_gone() is None, old_gone() is not None, done["full"])
        done = gcpolicy.refreeze(full=True)
        print("a full refreeze frees it:", old_gone() is None, done["freed"] >= 1, done["full"])
        """
    )
    assert out.splitlines() == [
        "frozen survives a full collection: True",
        "a refreeze frees the dead made since, not the frozen: True True False",
        "a full refreeze frees it: True True True",
    ]


def test_the_thread_freezes_once_ready_then_every_interval():
    out = run(
        """
        import gc, threading, time, weakref
        from amisite import gcpolicy

        class Node: pass
        ready = threading.Event()
        gcpolicy.start(ready, every=0.1, full_every=0.3)
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
        print("freed by the next full refreeze:", gone() is None)
        """
    )
    assert out.splitlines() == [
        "before ready: 0",
        "after ready: True",
        "freed by the next full refreeze: True",
    ]


@pytest.mark.parametrize(
    "name, read, default",
    [
        ("AMI_GC_REFREEZE_SECONDS", gcpolicy.refreeze_seconds, 60),
        ("AMI_GC_FULL_SECONDS", gcpolicy.full_seconds, 600),
    ],
)
def test_intervals_from_the_environment(monkeypatch, name, read, default):
    monkeypatch.delenv(name, raising=False)
    assert read() == default
    monkeypatch.setenv(name, "0")
    assert read() == 0
    for bad in ("soon", "-5"):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ImproperlyConfigured, match=name):
            read()


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
