"""Install Ladon 1.0.7 into the Python that runs this script, on any Python 3.

    python3.13 scripts/install_ladon.py

Ladon's sdist reads its version with ``imp`` (removed in Python 3.12), so on 3.12+ it is
built without build isolation, with a stand-in ``imp`` on PYTHONPATH. On 3.11 and older
this is a plain ``pip install ladon==1.0.7``.
"""

import os
import subprocess
import sys

LADON = "ladon==1.0.7"
HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if sys.version_info < (3, 12):
        return subprocess.call(pip + [LADON])
    subprocess.check_call(pip + ["setuptools", "wheel"])
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "build_shims"))
    return subprocess.call(pip + ["--no-build-isolation", LADON], env=env)


if __name__ == "__main__":
    sys.exit(main())
