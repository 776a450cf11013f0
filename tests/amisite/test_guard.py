"""Children started through amisite.guard die with their parent, even on SIGKILL."""

import signal
import subprocess
import sys

from amisite.proctree import alive, cmdline, survivors, wait_until


def test_child_dies_when_parent_is_killed(tmp_path):
    pidfile = tmp_path / "child.pid"
    parent_code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-m', 'amisite.guard', sys.executable, '-c',"
        " 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    assert wait_until(lambda: pidfile.exists() and pidfile.read_text(), 10)
    child = int(pidfile.read_text())
    # The guard has set the death signal once it has exec'd the command (its own argv is gone).
    assert wait_until(lambda: cmdline(child).split()[1:2] == ["-c"], 10), cmdline(child)
    assert alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert not survivors([child], 5)
