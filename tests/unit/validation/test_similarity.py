"""BLEU/chrF/ROUGE known answers (no model: embeddings and BERTScore are integration tests)."""

from __future__ import annotations

import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from textnlp.errors import InvalidInput
from textnlp.validation import similarity
from textnlp.validation.similarity import _Tokenizer, lcs_length, rouge_l

CANDIDATES = [
    "The cat is sitting on the mat.",
    "Quarterly revenue rose by four percent, beating expectations.",
    "I would not buy this grinder again.",
]
REFERENCES = [
    "The cat sat on the mat.",
    "Revenue rose four percent in the quarter, above expectations.",
    "I will never buy this coffee grinder again.",
]


def _sacrebleu_cli(tmp_path: Path, metric: str) -> float:
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("\n".join(CANDIDATES) + "\n", encoding="utf-8")
    ref.write_text("\n".join(REFERENCES) + "\n", encoding="utf-8")
    exe = Path(sys.executable).with_name("sacrebleu")
    out = subprocess.run(
        [str(exe), str(ref), "-i", str(hyp), "-m", metric, "-b", "-w", "4"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def test_corpus_bleu_and_chrf_match_sacrebleu_cli(tmp_path: Path) -> None:
    report = similarity(CANDIDATES, REFERENCES, embeddings=False, bertscore=False)
    assert report.corpus.bleu == pytest.approx(_sacrebleu_cli(tmp_path, "bleu"), abs=1e-4)
    assert report.corpus.chrf == pytest.approx(_sacrebleu_cli(tmp_path, "chrf"), abs=1e-4)


def test_identical_texts_score_maximum() -> None:
    report = similarity(["a b c d e"], ["a b c d e"], embeddings=False, bertscore=False)
    pair = report.pairs[0]
    assert pair.bleu == pytest.approx(100.0)
    assert pair.chrf == pytest.approx(100.0)
    assert (pair.rouge1, pair.rouge2, pair.rougeL) == (1.0, 1.0, 1.0)
    assert pair.cosine is None and pair.bertscore_f1 is None


def test_rouge_hand_computed() -> None:
    # cand "the cat sat", ref "the cat ran away": unigram overlap 2 -> P 2/3, R 2/4, F 4/7;
    # bigram overlap 1 ("the cat") -> P 1/2, R 1/3, F 0.4; LCS 2 -> as ROUGE-1.
    pair = similarity(
        ["the cat sat"], ["the cat ran away"], embeddings=False, bertscore=False
    ).pairs[0]
    assert pair.rouge1 == pytest.approx(4 / 7)
    assert pair.rouge2 == pytest.approx(0.4)
    assert pair.rougeL == pytest.approx(4 / 7)


def test_rouge_handles_non_latin_scripts() -> None:
    pair = similarity(["привет мир"], ["привет мир"], embeddings=False, bertscore=False).pairs[0]
    assert pair.rouge1 == 1.0


def test_mismatched_lengths_rejected() -> None:
    with pytest.raises(InvalidInput):
        similarity(["a"], ["a", "b"], embeddings=False, bertscore=False)


def _lcs_table(left: list[str], right: list[str]) -> int:
    previous = [0] * (len(right) + 1)
    for token in left:
        row = [0]
        for j, other in enumerate(right):
            row.append(previous[j] + 1 if token == other else max(previous[j + 1], row[j]))
        previous = row
    return previous[-1]


def test_the_bit_parallel_lcs_is_the_tables() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        left = [rng.choice("abcd") for _ in range(rng.randint(0, 30))]
        right = [rng.choice("abcd") for _ in range(rng.randint(0, 30))]
        assert lcs_length(left, right) == _lcs_table(left, right), (left, right)


def test_rouge_l_is_rouge_scores_on_unicode_words() -> None:
    from rouge_score import rouge_scorer

    tokenizer = _Tokenizer()
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizer)
    vocabulary = ["the", "a", "cat", "dog", "sat", "on", "mat", "réseau", "東京", "Ünïcode"]
    rng = random.Random(4)
    for _ in range(300):
        ref = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 40)))
        cand = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 40)))
        expected = scorer.score(ref, cand)["rougeL"].fmeasure
        assert rouge_l(tokenizer.tokenize(ref), tokenizer.tokenize(cand)) == pytest.approx(
            expected, abs=1e-12
        )


def test_long_texts_score_in_linear_memory() -> None:
    """Two texts of 16,000 words: rouge-score's table took 84 s and 6 GB of a server's memory
    (one validate/similarity request); the bit-parallel row is 2 KB."""
    rng = random.Random(5)
    ref = " ".join(rng.choice("abcdefghij") for _ in range(16_000))
    cand = " ".join(rng.choice("abcdefghij") for _ in range(16_000))
    tracemalloc.start()
    try:
        report = similarity([cand], [ref], embeddings=False, bertscore=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0 < report.pairs[0].rougeL < 1
    assert peak < 100 * 2**20


#: One character (热 -> 冷) changed in a sentence without spaces, and its English equivalent.
ZH_REFERENCE = "今天天气很好，我们一起去公园散步吧，然后在湖边的咖啡馆喝一杯热茶。"
EN_REFERENCE = (
    "The weather is nice today, let us take a walk in the park and then drink a cup of hot tea "
    "at the lakeside cafe."
)


def test_bleu_tokenises_text_without_spaces_by_character() -> None:
    zh = similarity(
        [ZH_REFERENCE.replace("热茶", "冷茶")], [ZH_REFERENCE], embeddings=False, bertscore=False
    )
    # 13a made the sentence two tokens, both changed: BLEU 0.
    assert zh.pairs[0].bleu == pytest.approx(92.72, abs=0.01)
    th_reference = "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"
    th = similarity(
        [th_reference.replace("ไทย", "ลาว")], [th_reference], embeddings=False, bertscore=False
    )
    assert th.pairs[0].bleu > 80
    en = similarity(
        [EN_REFERENCE.replace("hot tea", "cold tea")],
        [EN_REFERENCE],
        embeddings=False,
        bertscore=False,
    )
    assert en.pairs[0].bleu == pytest.approx(89.85, abs=0.01)  # 13a, as before


def test_corpus_bleu_sums_each_pairs_tokenisation() -> None:
    import sacrebleu

    zh_cands = [ZH_REFERENCE.replace("热茶", "冷茶"), "我的猫整天睡在沙发上。"]
    zh_refs = [ZH_REFERENCE, "我的猫每天都睡在沙发上。"]
    alone = similarity(zh_cands, zh_refs, embeddings=False, bertscore=False).corpus.bleu
    assert alone == pytest.approx(sacrebleu.corpus_bleu(zh_cands, [zh_refs], tokenize="zh").score)
    both = similarity(
        [*zh_cands, *CANDIDATES], [*zh_refs, *REFERENCES], embeddings=False, bertscore=False
    )
    english = sacrebleu.corpus_bleu(CANDIDATES, [REFERENCES]).score
    assert min(alone, english) < both.corpus.bleu < max(alone, english)
