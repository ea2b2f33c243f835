"""BLEU/chrF/ROUGE known answers (no model: embeddings and BERTScore are integration tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from textnlp.errors import InvalidInput
from textnlp.validation import similarity

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
