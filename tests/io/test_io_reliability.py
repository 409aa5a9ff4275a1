"""Output paths, atomic writes under write failures, HDF5 on a full disk, output locks, and pool
workers that do not outlive their parent (dingo_gw.io.atomic, .lock, .workers)."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from dingo_gw.errors import DataError
from dingo_gw.io.atomic import atomic_write, check_output_path, h5_writer
from dingo_gw.io.lock import lock_path, output_lock


def test_outputs_must_be_regular_files_or_absent(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "null").symlink_to("/dev/null")
    for name, kind in (("fifo", "a FIFO"), ("dir", "a folder"), ("null", "a character device")):
        with pytest.raises(DataError, match=kind):
            with atomic_write(tmp_path / name) as tmp:
                tmp.write_text("x")
    assert (tmp_path / "null").is_symlink() and (tmp_path / "null").is_char_device()  # not replaced
    assert check_output_path(tmp_path / "new.h5") == tmp_path / "new.h5"
    assert check_output_path(tmp_path / "dir", folder=True) == tmp_path / "dir"
    with pytest.raises(DataError, match="output folder"):
        check_output_path(tmp_path / "fifo", folder=True)


def test_a_failed_write_is_one_error_and_leaves_nothing(tmp_path):
    out = tmp_path / "out.txt"
    with pytest.raises(DataError, match=r"writing .*out.txt failed: disk full"):
        with atomic_write(out) as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_hdf5_on_a_full_disk_raises_instead_of_crashing(tmp_path):
    # RLIMIT_FSIZE makes every write past 100 kB fail with EFBIG, like a full disk; plain h5py
    # segfaults when it flushes then (exit 139).
    script = textwrap.dedent("""
        import resource, signal, sys, numpy as np
        from dingo_gw.io.atomic import h5_writer
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            with h5_writer(sys.argv[1]) as f:
                f.create_dataset("a", data=np.ones((100, 1000)))
                f.flush()
        except OSError as e:
            print("OSError", e.errno)
    """)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.h5")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"OSError {errno.EFBIG}"


def test_h5_writer_writes_ordinary_files(tmp_path):
    import h5py

    with h5_writer(tmp_path / "x.h5") as f:
        f["a"] = np.arange(5)
    with h5_writer(tmp_path / "x.h5", "r+") as f:
        f["b"] = np.arange(3)
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert list(f["a"][()]) == [0, 1, 2, 3, 4] and list(f["b"][()]) == [0, 1, 2]


def test_an_output_is_locked_against_a_second_writer(tmp_path):
    out = tmp_path / "bank.h5"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from dingo_gw.io.lock import output_lock
        with output_lock({str(out)!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DataError, match=rf"bank.h5 is being written by another process \(pid {holder.pid}\)"):
            with output_lock(out):
                pass
        holder.kill()  # SIGKILL: the OS releases the lock, the stale lock file is simply reused
        holder.wait(10)
        assert lock_path(out).exists()
        with output_lock(out) as path:
            assert path.read_text().strip() == str(os.getpid())
        assert not lock_path(out).exists()  # removed on a clean exit
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    # the parent starts a spawn-context pool worker (dingo_gw's initializer) and is killed with SIGKILL
    script = textwrap.dedent("""
        import multiprocessing, os, time
        from concurrent.futures import ProcessPoolExecutor
        from dingo_gw.io.workers import init_worker
        if __name__ == "__main__":
            ex = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker)
            print(ex.submit(os.getpid).result(), flush=True)
            time.sleep(60)
    """)
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        t0 = time.monotonic()
        while _alive(worker) and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        assert not _alive(worker), "the pool worker outlived its parent"
        assert time.monotonic() - t0 < 5
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
