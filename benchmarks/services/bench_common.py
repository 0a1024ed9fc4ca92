"""Task bodies shared by every benchmark service (no Ladon here)."""

import time


def progress_loop(update_progress, calls):
    """Call ``update_progress`` ``calls`` times; return the calls per second (at least 1).

    The values are distinct floats in [0, 1) so no reporter can skip a repeated value.
    """
    step = 1.0 / calls
    started = time.perf_counter()
    for i in range(calls):
        update_progress(i * step)
    elapsed = time.perf_counter() - started
    return max(1, int(calls / elapsed))
