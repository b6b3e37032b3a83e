"""`rechroma` run as users run it: a subprocess of this interpreter."""

import subprocess
import sys


def rechroma(*args: str, check: bool = False, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `rechroma --quiet ARGS...`, capturing its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "rechroma", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
