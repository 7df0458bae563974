"""A sampling profile of a running server (py-spy, which reads the process from outside, so the server needs no
change) and its top frames: by own time (the frame on top of the stack) and by inclusive time (the frame
anywhere in the stack), as shares of the samples of its Python threads. onnxruntime's own pool threads have
no Python stack and are not sampled (the calling thread's ONNX call is); threads waiting on a lock may be
counted as busy (`Condition.wait`). The load benchmark's CPU columns are the measure of CPU; this says where
the Python side spends it."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 250
"""Samples per second: enough for a 20 s level to give thousands of samples, cheap enough not to starve the
server on 2 cores."""
_SAMPLE = re.compile(r"^(.*) (\d+)$")
_LINE = re.compile(r":\d+\)$")
_ABSOLUTE = re.compile(r"\((?:/.*/site-packages/|/.*?/(?=(?:bot|distill)/))")
"""An absolute path's prefix, up to the package (py-spy already shortens most paths to one)."""


def start(pid: int, out: Path) -> subprocess.Popen:
    """py-spy sampling `pid` and its worker processes until `stop`; collapsed stacks are written to `out`."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")  # the venv's, not on PATH
    cmd = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", str(RATE), "--format", "raw",
           "--output", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> None:
    """py-spy writes its file when interrupted."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _frame(raw: str) -> str:
    """`function (package/path/file.py:line)` without the line or an absolute path's prefix."""
    return _ABSOLUTE.sub("(", _LINE.sub(")", raw))


def summary(collapsed: Path, top: int = 25) -> str:
    """The top frames by own and by inclusive samples."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        match = _SAMPLE.match(line)
        if match is None:  # a stack cut off when py-spy was stopped
            continue
        stack, count = match.groups()
        frames = [_frame(f) for f in stack.split(";")[1:]]  # the first entry names the process
        if not frames:
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples; own time (top of stack):"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("inclusive time (anywhere in the stack):")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)
