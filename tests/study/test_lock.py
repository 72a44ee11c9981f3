"""One writer per study folder: a second run is refused at once, naming the holder; a lock
left by a killed run is taken over (issue 14 §2). Real processes, synchronised through a pipe
(the holder says when it holds the lock), never through sleeps."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from robustlens.errors import StoreError
from robustlens.study import lock as lock_module
from robustlens.study.lock import INFO_NAME, holder, study_lock
from tests.study.tiny_studies import DIGITS_ACTIVATIONS

# The holder imports the lock module alone: robustlens.study's __init__ would load torch,
# seconds per process that this test does not need.
HOLDER = textwrap.dedent(
    f"""
    import sys, types

    package = types.ModuleType("robustlens.study")
    package.__path__ = [{str(Path(lock_module.__file__).parent)!r}]
    sys.modules["robustlens.study"] = package
    from robustlens.study.lock import study_lock

    with study_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()  # hold until the test closes our stdin (or kills us)
    print("released", flush=True)
    """
)

STUDY = DIGITS_ACTIVATIONS


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


class Holder:
    """Another process holding ``folder``'s lock until :meth:`release` or :meth:`kill`."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env(),
        )
        line = self.proc.stdout.readline()  # blocks until the lock is held
        assert line == "held\n", line

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        self.proc.stdin.close()
        assert self.proc.stdout.readline() == "released\n"
        assert self.proc.wait(timeout=60) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.mark.timing
def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path):
    folder = tmp_path / "study"
    other = Holder(folder)
    try:
        assert holder(folder)["pid"] == other.pid
        with pytest.raises(StoreError) as err, study_lock(folder):
            pytest.fail("took a lock another process holds")
        message = str(err.value)
        assert f"study folder {folder} is in use by process {other.pid} (started " in message
        assert "--out" in message  # what to do about it
    finally:
        other.release()
    with study_lock(folder):  # free again once the holder has finished
        assert holder(folder)["pid"] == os.getpid()
    assert not (folder / INFO_NAME).exists()


@pytest.mark.timing
def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    folder = tmp_path / "study"
    other = Holder(folder)
    other.kill()
    assert holder(folder)["pid"] == other.pid  # its note is left behind, stale ...
    with study_lock(folder):  # ... but the OS released the lock itself
        assert holder(folder)["pid"] == os.getpid()
        again = subprocess.run(
            [sys.executable, "-c", HOLDER, str(folder)],
            capture_output=True,
            text=True,
            env=env(),
            timeout=120,
        )
        assert again.returncode != 0
        assert f"in use by process {os.getpid()}" in again.stderr


def test_a_stale_note_never_names_a_dead_process(tmp_path):
    folder = tmp_path / "study"
    other = Holder(folder)
    other.kill()
    with study_lock(folder):
        # The note of the killed run, as if read before the new holder rewrote it.
        (folder / INFO_NAME).write_text(json.dumps({**holder(folder), "pid": other.pid}))
        again = subprocess.run(
            [sys.executable, "-c", HOLDER, str(folder)],
            capture_output=True,
            text=True,
            env=env(),
            timeout=120,
        )
        message = again.stderr.strip().splitlines()[-1]
        assert message.startswith("robustlens.errors.StoreError: ")
        assert "in use by another process" in message and str(other.pid) not in message


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    folder = tmp_path / "study"
    with study_lock(folder), study_lock(folder):
        pass
    other = Holder(folder)  # fully released after the outer block
    other.release()


def test_an_unusable_folder_is_one_clear_error(tmp_path, monkeypatch):
    afile = tmp_path / "results.txt"
    afile.write_text("mine")
    with pytest.raises(StoreError, match="is a file, not a folder"), study_lock(afile):
        pass
    assert afile.read_text() == "mine"
    folder = tmp_path / "readonly"
    folder.mkdir()
    real_open = os.open

    def refuse(path, *args, **kwargs):  # as the kernel does in a read-only folder
        if Path(path).parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(lock_module.os, "open", refuse)
    with (
        pytest.raises(StoreError, match="cannot write into study folder") as err,
        study_lock(folder),
    ):
        pass
    assert "Permission denied" in str(err.value) and "--out" in str(err.value)


@pytest.mark.timing
def test_a_second_study_run_on_the_same_folder_exits_at_once(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(STUDY)
    out = tmp_path / "out"
    other = Holder(out)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "robustlens", "study", "run", str(spec), "--out", str(out)],
            capture_output=True,
            text=True,
            env=env(),
            timeout=300,
        )
    finally:
        other.release()
    assert result.returncode == 1, result.stderr  # StoreError: the run's folder, not bad input
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"study folder {out} is in use by process {other.pid} (started" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == [".robustlens.lock"]  # nothing was written
