"""Run a reader built on a C library in a child process, with a time limit and a memory limit.

h5py (libhdf5) parses a file's metadata in C: on a corrupt file it can allocate what the file
claims (one flipped byte in a 170 KB tf_model.h5 made it take 3 GB and 4 s), crash, or loop, and
while it is inside C code Ctrl-C does nothing. So `tf_h5` reads in a child process and this module
is the parent's side: it starts the child once (`python -c`, the parent's sys.path, one BLAS
thread), sends it one request per file, and receives the arrays through the child's stdout. A
read that overruns its time limit, or a child that dies, costs only the child: it is killed, the
error is a `CheckpointError`, and the next read starts a new child. The child lowers its own
address-space limit (RLIMIT_AS, where the OS has one) before each file, so an allocation the file
cannot justify fails inside it instead of swapping the machine.

Nothing from the child is unpickled. Frames are [8-byte little-endian length][JSON header] and,
for an array, [nbytes raw bytes]; the parent checks each header (a str key, a dtype from a fixed
list, a shape whose size matches nbytes) and allocates no more than the file's size in total.
The child stays up between reads (starting it costs ~0.3 s) and exits when the parent does, or
at `close()`.
"""

import atexit
import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import CheckpointError

__all__ = ["read_in_child", "close", "serve", "STARTUP_LIMIT_S"]

STARTUP_LIMIT_S = 120.0  # python + numpy + h5py on a loaded machine take well under 5 s
_MAX_HEADER = 2**20
_DTYPES = {"<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"}
_LOCK = threading.Lock()
_CHILD = None  # the running child, or None


# -- the child's side -----------------------------------------------------------------------------
def _send(out, header, array=None):
    raw = json.dumps(header).encode("utf-8")
    out.write(len(raw).to_bytes(8, "little") + raw)
    if array is not None:
        out.write(array.reshape(-1).view(np.uint8).data)  # C-contiguous, little-endian: raw bytes
    out.flush()


def _limit_memory(allowance):
    """Cap this process's address space at its current size plus `allowance` bytes (Linux)."""
    try:
        import resource
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return  # no RLIMIT_AS or no /proc: the time limit still holds
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = current + allowance if hard == resource.RLIM_INFINITY else min(current + allowance, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def serve(read):
    """The child's loop: for each request line {"path", "size", "memory"}, send every
    (key, array) that `read(path, size)` yields, then {"done": true} or {"error": message}."""
    out = sys.stdout.buffer
    _send(out, {"ready": True})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        path = request["path"]
        _limit_memory(request["memory"])
        try:
            for key, array in read(path, request["size"]):
                array = np.require(array, array.dtype.newbyteorder("<"), "C")
                _send(out, {"key": key, "dtype": array.dtype.str, "shape": list(array.shape),
                            "nbytes": array.nbytes}, array)
            reply = {"done": True}
        except CheckpointError as e:
            reply = {"error": str(e)}
        except MemoryError:
            reply = {"error": f"{path}: reading it needed more than {request['memory']} bytes of "
                              f"memory, more than a file of {request['size']} bytes can justify; "
                              f"the file is corrupt"}
        except Exception as e:  # noqa: BLE001 - h5py raises OSError, RuntimeError, KeyError,
            # ValueError, UnicodeError... for corrupt files; all mean the same to the caller
            reply = {"error": f"{path}: not a readable HDF5 file ({type(e).__name__}: "
                              f"{str(e)[:300]})"}
        _send(out, reply)


# -- the parent's side ----------------------------------------------------------------------------
def _read_exact(stream, n):
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the child closed its output")
    return data


class _Child:
    """One child process; a thread moves its frames into a queue, so waits can have deadlines."""

    def __init__(self, entry):
        root = str(Path(__file__).resolve().parents[2])  # the folder holding the xlmr_np package
        code = f"import json, sys; sys.path[:0] = json.loads(sys.stdin.buffer.readline()); {entry}"
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.frames, self.budget = queue.Queue(), 0
        threading.Thread(target=self._pump, daemon=True).start()
        self._write([root] + [p for p in sys.path if isinstance(p, str)])
        header, _ = self.next(time.monotonic() + STARTUP_LIMIT_S, "starting the reader process")
        if not header.get("ready"):
            raise ImportError(header.get("error", "the reader process did not start"))

    def _write(self, obj):
        self.proc.stdin.write(json.dumps(obj).encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def _pump(self):
        stream = self.proc.stdout
        try:
            while True:
                n = int.from_bytes(_read_exact(stream, 8), "little")
                if n > _MAX_HEADER:
                    raise ValueError(f"a frame header of {n} bytes")
                header = json.loads(_read_exact(stream, n))
                payload = None
                if isinstance(header, dict) and "nbytes" in header:
                    nbytes = header["nbytes"]
                    if type(nbytes) is not int or not 0 <= nbytes <= self.budget:
                        raise ValueError(f"an array of {nbytes!r:.40} bytes, over the file's size")
                    self.budget -= nbytes
                    payload = np.empty(nbytes, np.uint8)
                    view, got = memoryview(payload), 0
                    while got < nbytes:
                        n = stream.readinto(view[got:])
                        if not n:
                            raise EOFError("the child closed its output")
                        got += n
                self.frames.put((header, payload))
        except (OSError, ValueError, EOFError) as e:
            self.frames.put((None, e))

    def next(self, deadline, doing):
        """The next frame; on a timeout, a dead child or a broken frame, kill it and raise."""
        try:
            header, payload = self.frames.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            self.kill()
            raise TimeoutError(doing) from None
        if header is None or not isinstance(header, dict):
            self.proc.kill()
            self.proc.wait()
            self.stderr.seek(0)
            tail = self.stderr.read()[-300:].decode("utf-8", "replace").strip()
            self.stderr.close()
            raise ChildProcessError(f"{doing}: the reader process stopped (exit status "
                                    f"{self.proc.returncode}; {payload}){': ' + tail if tail else ''}")
        return header, payload

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.stderr.close()


def _array(header, payload, path):
    key, dtype, shape = header.get("key"), header.get("dtype"), header.get("shape")
    if (not isinstance(key, str) or dtype not in _DTYPES or not isinstance(shape, list)
            or len(shape) > 64 or not all(type(d) is int and d >= 0 for d in shape)
            or math.prod(shape) * np.dtype(dtype).itemsize != payload.size):
        raise ChildProcessError(f"{path}: the reader process sent a malformed array record")
    return key, payload.view(dtype).reshape(shape)  # [nbytes] -> shape, no copy


def read_in_child(entry, path, size, time_limit, memory):
    """[(key, array)] from `serve(read)` in the child that the code `entry` starts, for `path`
    (of `size` bytes): within `time_limit` seconds, the child's memory growing by at most `memory`."""
    global _CHILD
    with _LOCK:
        if _CHILD is None or _CHILD.proc.poll() is not None:
            try:
                _CHILD = _Child(entry)
            except OSError as e:  # TimeoutError, ChildProcessError: this machine's problem
                raise RuntimeError(f"cannot start the process that reads {path}: {e}") from None
        child = _CHILD
        child.budget = size  # every array together fits in the file (Keras stores them uncompressed)
        arrays, deadline = [], time.monotonic() + time_limit
        try:
            child._write({"path": path, "size": size, "memory": memory})
            while True:
                header, payload = child.next(deadline, f"reading {path}")
                if "error" in header or header.get("done"):
                    break
                arrays.append(_array(header, payload, path))
        except TimeoutError:
            _CHILD = None
            raise CheckpointError(
                f"{path}: reading it did not finish within {round(time_limit, 2):g} s, so the reader process "
                f"was stopped. libhdf5 can loop or allocate without end on a corrupt file; if the "
                f"file is sound and the machine slow, pass a larger time_limit") from None
        except (ChildProcessError, OSError) as e:
            _CHILD = None
            if child.proc.poll() is None:
                child.kill()
            raise CheckpointError(f"{path}: not a readable HDF5 file ({e})") from None
    if "error" in header:
        raise CheckpointError(str(header["error"]))
    return arrays


def close():
    """Stop the child process, if one is running (it is also stopped when this process exits)."""
    global _CHILD
    with _LOCK:
        if _CHILD is not None:
            _CHILD.close()
            _CHILD = None


atexit.register(close)
