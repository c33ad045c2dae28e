"""Shared by the benchmarks: peak memory of worker processes (Linux).

``WORKER_PEAK_SAMPLER`` is source text pasted into a benchmark's child script:
a daemon thread that keeps the largest ``VmHWM`` of the child's own children
(the decoding workers) in ``worker_peak[0]`` (KiB). The kernel's ru_maxrss
for children would also count pages a child shares with its parent between
fork and exec, so it is sampled from /proc instead.
"""

from __future__ import annotations

WORKER_PEAK_SAMPLER = r"""import glob, os, threading
worker_peak = [0]
def _sample_workers():  # Linux: largest VmHWM among child processes (worker peak RSS)
    while True:
        for children in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
            try:
                pids = open(children).read().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    for line in open(f"/proc/{pid}/status"):
                        if line.startswith("VmHWM:"):
                            worker_peak[0] = max(worker_peak[0], int(line.split()[1]))
                except OSError:
                    pass
        time.sleep(0.2)
threading.Thread(target=_sample_workers, daemon=True).start()
"""


def with_sampler(script: str) -> str:
    """``script`` with its ``@WORKER_PEAK_SAMPLER@`` line replaced by the sampler."""
    return script.replace("@WORKER_PEAK_SAMPLER@\n", WORKER_PEAK_SAMPLER)
