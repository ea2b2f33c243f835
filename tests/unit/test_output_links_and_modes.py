"""What rewriting an output does to the file system around it: the file keeps its permissions
(and its journal takes them), a symbolic link the user made is written through, and a link,
hard link or FIFO planted at the name of the lock or the journal is refused, never written
through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.records import stored_record
from textnlp.errors import Conflict, OutputError
from textnlp.generation.journal import RunJournal, journal_path
from textnlp.generation.output_lock import OutputLock, lock_path
from textnlp.generation.sinks import FileSink
from textnlp.generation.writers import read_dataset, write_dataset

VICTIM = "the user's own file\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.parquet"])
def test_a_rewritten_output_keeps_its_permissions(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    write_dataset(out, [stored_record(0)])
    out.chmod(0o600)
    write_dataset(out, [stored_record(0), stored_record(1)])
    assert mode(out) == 0o600 and len(read_dataset(out)) == 2


def test_the_journal_of_a_private_output_is_private(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    write_dataset(out, [stored_record(0)])
    out.chmod(0o600)
    with FileSink(out) as sink:
        sink.start(fresh=True)
        sink.append(stored_record(0))
        assert mode(journal_path(out)) == 0o600
        sink.end(1, complete=True)
    assert mode(out) == 0o600


def test_an_output_that_is_a_symbolic_link_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    write_dataset(link, [stored_record(0)])
    assert link.is_symlink() and link.resolve() == real
    assert [r.index for r in read_dataset(real)] == [0]


@pytest.mark.parametrize("planted", ["symlink", "hardlink", "fifo"])
def test_a_lock_file_planted_at_the_lock_name_is_refused(tmp_path: Path, planted: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)
    lock = lock_path(tmp_path / "d.jsonl")
    {"symlink": lambda: lock.symlink_to(victim), "hardlink": lambda: lock.hardlink_to(victim),
     "fifo": lambda: os.mkfifo(lock)}[planted]()  # fmt: skip
    with pytest.raises(OutputError, match=r"d\.jsonl\.lock is .*remove it"):
        OutputLock(tmp_path / "d.jsonl").acquire()
    assert victim.read_text() == VICTIM


@pytest.mark.parametrize("fresh", [True, False])
def test_a_link_planted_at_the_journal_name_is_neither_written_nor_cut(
    tmp_path: Path, fresh: bool
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)  # not a record: a resume's scan would cut it to 0 bytes
    out = tmp_path / "d.jsonl"
    journal_path(out).symlink_to(victim)
    with FileSink(out) as sink, pytest.raises(OutputError, match="is a symbolic link"):
        if not fresh:
            list(sink.finished())
        sink.start(fresh=fresh)
    assert victim.read_text() == VICTIM


def test_a_fifo_at_the_journal_name_is_refused_not_waited_on(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    os.mkfifo(journal_path(out))
    with FileSink(out) as sink, pytest.raises(OutputError, match="not a regular file"):
        list(sink.finished())


@pytest.mark.filterwarnings("ignore:discarding")
def test_a_hard_link_at_the_journal_name_of_a_fresh_run_is_refused_before_it_is_cut(
    tmp_path: Path,
) -> None:
    """The journal was opened with O_TRUNC and only then found to be a hard link: the linked
    dataset was emptied by the run that refused it."""
    victim = tmp_path / "victim.jsonl"
    write_dataset(victim, [stored_record(0), stored_record(1)])
    kept = victim.read_bytes()
    out = tmp_path / "d.jsonl"
    journal_path(out).hardlink_to(victim)
    with FileSink(out) as sink, pytest.raises(OutputError, match="hard link"):
        sink.start(fresh=True)
    assert victim.read_bytes() == kept


def test_a_run_through_a_link_takes_the_lock_of_the_file_it_writes(tmp_path: Path) -> None:
    """Outputs are written through links, but the lock was taken on the name given: a run on
    ``lb.jsonl -> la.jsonl`` and one on ``la.jsonl`` wrote one file at once."""
    real = tmp_path / "la.jsonl"
    link = tmp_path / "lb.jsonl"
    link.symlink_to(real)
    with FileSink(real), pytest.raises(Conflict, match="another run is writing"), FileSink(link):
        pass


def test_the_journal_of_a_directory_output_is_no_executable(tmp_path: Path) -> None:
    out = tmp_path / "hfds"
    out.mkdir(mode=0o755)
    journal = RunJournal(journal_path(out), like=out)
    journal.open(fresh=True)
    journal.close()
    assert stat.S_IMODE(journal.path.stat().st_mode) & 0o111 == 0
