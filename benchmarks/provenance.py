"""What a stored result says about where it came from, as benchmarks/provenance.mjs writes it for the Node
benchmarks: when it ran (ISO, UTC, milliseconds) and the engine's commit: DLLM_COMMIT where set (a device
machine's copy has no .git: benchmarks/device-run.sh's header), else `git describe --always --dirty` in this
repository, else None."""

import datetime
import os
import subprocess

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def provenance():
    commit = os.environ.get("DLLM_COMMIT") or None
    if commit is None:
        try:
            commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=_root, capture_output=True, text=True,
                                    check=True).stdout.strip() or None
        except (OSError, subprocess.CalledProcessError):
            commit = None
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"date": date, "commit": commit}
