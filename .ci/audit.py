"""pip-audit over the environment the suite runs in: a known vulnerability fails the run.

`pip-audit --strict` would also fail when the vulnerability service cannot be reached at
all (every package "not found"), which says nothing about the packages. So: any known
vulnerability fails; some packages audited and others skipped fails (strict); every
package skipped means the service did not answer: that is said loudly and fails only where
an audit is required (`AMI_REQUIRE_AUDIT=1`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit did not run: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return 1
    deps = report["dependencies"]
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"pip-audit: {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    if vulnerable:
        return 1
    if skipped and len(skipped) == len(deps):
        print(
            f"pip-audit: NOT AUDITED: the vulnerability service answered for none of the "
            f"{len(deps)} packages ({skipped[0]['skip_reason']})"
        )
        return 1 if os.environ.get("AMI_REQUIRE_AUDIT") == "1" else 0
    if skipped:
        for dep in skipped:
            print(
                f"pip-audit: could not audit {dep['name']} {dep['version']}: {dep['skip_reason']}"
            )
        return 1
    print(f"pip-audit: {len(deps)} packages, no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
