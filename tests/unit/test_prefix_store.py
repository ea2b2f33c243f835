"""The prefix store's rules: longest shared prefix, what is worth saving, eviction, reopening."""

from __future__ import annotations

from pathlib import Path

from textnlp.backends.kv_store import BLOCK, PrefixStore, PrefixStoreConfig


def store(root: Path, max_bytes: int = 1 << 20) -> PrefixStore:
    return PrefixStore(PrefixStoreConfig(root, max_bytes))


def tokens(start: int, n: int) -> list[int]:
    return list(range(start, start + n))


def test_the_entry_sharing_the_longest_prefix_is_found(tmp_path: Path) -> None:
    kv = store(tmp_path)
    review = tokens(0, 3 * BLOCK)
    kv.save(review + tokens(1000, 40), b"short")
    kv.save(review + tokens(5000, BLOCK) + tokens(2000, 40), b"long")
    asked = review + tokens(5000, BLOCK) + tokens(9000, 10)
    name, shared = kv.match(asked) or ("", 0)
    assert shared == 4 * BLOCK and kv.read(name) == b"long"
    # Under one block in common: nothing to find.
    assert kv.match(tokens(0, BLOCK - 1) + [7] * 50) is None
    assert kv.match(tokens(7, 200)) is None
    kv.close()


def test_a_prompt_is_worth_saving_when_mostly_new_to_the_store(tmp_path: Path) -> None:
    kv = store(tmp_path)
    review = tokens(0, 6 * BLOCK)
    first = review + tokens(1000, 50)
    assert kv.worth_saving(first, 32)
    kv.save(first, b"x" * 10)
    # The same review under another criterion: 50 new tokens of 242, saved whole: not worth it.
    assert not kv.worth_saving(review + tokens(3000, 50), 32)
    assert not kv.worth_saving(tokens(0, 20), 32)  # too short to be worth a state
    assert kv.worth_saving(tokens(10_000, 64), 32)
    kv.close()


def test_the_least_recently_used_states_go_first_past_the_limit(tmp_path: Path) -> None:
    kv = store(tmp_path, max_bytes=250)
    a, b, c = tokens(0, BLOCK * 2), tokens(1000, BLOCK * 2), tokens(2000, BLOCK * 2)
    kv.save(a, b"a" * 100)
    kv.save(b, b"b" * 100)
    kv.read(kv.match(a)[0])  # type: ignore[index]  # a is used: b is now the oldest
    kv.save(c, b"c" * 100)
    assert kv.match(b) is None
    assert kv.match(a) is not None and kv.match(c) is not None
    kv.close()
    assert len(list(tmp_path.glob("*.kv"))) == 2  # b's files are gone too


def test_an_evicted_entry_does_not_hide_a_longer_one_on_the_same_prefix(tmp_path: Path) -> None:
    kv = store(tmp_path, max_bytes=250)
    shared = tokens(0, BLOCK)
    longer = shared + tokens(2000, BLOCK * 2)
    kv.save(longer, b"2" * 100)
    kv.save(shared + tokens(1000, BLOCK * 2), b"1" * 100)  # the shared block now names this one
    kv.read(kv.match(longer)[0])  # type: ignore[index]
    kv.save(tokens(9000, BLOCK), b"3" * 100)  # evicts the other, and the shared block's name
    name, length = kv.match(longer) or ("", 0)
    assert length == 3 * BLOCK and kv.read(name) == b"2" * 100
    kv.close()


def test_states_outlive_the_process_and_a_half_written_pair_is_ignored(tmp_path: Path) -> None:
    kv = store(tmp_path)
    prompt = tokens(0, BLOCK * 3)
    kv.save(prompt, b"state")
    kv.close()  # the writes handed over are finished
    (tmp_path / "orphan.tokens").write_text("[1, 2, 3]")  # its .kv never written
    (tmp_path / "broken.tokens").write_text("not json")
    (tmp_path / "broken.kv").write_bytes(b"?")
    again = store(tmp_path)
    name, shared = again.match(prompt + [1, 2]) or ("", 0)
    assert shared == len(prompt) and again.read(name) == b"state"
    assert again.match([1, 2, 3]) is None
    again.close()


def test_a_state_whose_file_is_gone_is_dropped(tmp_path: Path) -> None:
    kv = store(tmp_path)
    prompt = tokens(0, BLOCK * 2)
    kv.save(prompt, b"state")
    kv.close()
    again = store(tmp_path)
    name, _ = again.match(prompt) or ("", 0)
    (tmp_path / f"{name}.kv").unlink()
    assert again.read(name) is None
    assert again.match(prompt) is None
    again.close()
