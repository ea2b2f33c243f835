"""Embedding cosine, BERTScore and the semantic parts of the report, with the real MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from textnlp.validation import Embedder, bert_score, similarity, validate_dataset


def test_bertscore_known_answers(embedder: Embedder) -> None:
    (same,) = bert_score(
        ["The cat sat on the mat."], ["The cat sat on the mat."], embedder=embedder
    )
    assert same == pytest.approx((1.0, 1.0, 1.0), abs=1e-5)
    # A candidate that is a prefix of the reference: every candidate token has a close match
    # (high precision), many reference tokens do not (lower recall).
    ((p, r, f),) = bert_score(
        ["The cat sat."],
        ["The cat sat on the mat while the dog barked at the mailman."],
        embedder=embedder,
    )
    assert p > r and min(p, r) <= f <= max(p, r)
    (empty,) = bert_score([""], ["anything"], embedder=embedder)
    assert empty == (0.0, 0.0, 0.0)


def test_bertscore_matches_manual_greedy_matching(embedder: Embedder) -> None:
    cand, ref = "A quick brown fox.", "The fast brown fox jumps."
    c, r = embedder.token_embeddings([cand, ref])
    sim = c @ r.T
    expected_p, expected_r = sim.max(axis=1).mean(), sim.max(axis=0).mean()
    ((p, rec, f),) = bert_score([cand], [ref], embedder=embedder)
    assert (p, rec) == pytest.approx((expected_p, expected_r), abs=1e-6)
    assert f == pytest.approx(2 * p * rec / (p + rec))


def test_similarity_with_embeddings(embedder: Embedder) -> None:
    report = similarity(
        ["The battery lasts all day.", "I hated the tent."],
        ["Battery life is a full day.", "Quantum chromodynamics describes quarks."],
        embedder=embedder,
    )
    close, far = report.pairs
    assert close.cosine is not None and far.cosine is not None and close.cosine > far.cosine
    assert close.bertscore_f1 is not None and far.bertscore_f1 is not None
    assert close.bertscore_f1 > far.bertscore_f1
    assert report.corpus.cosine == pytest.approx(np.mean([close.cosine, far.cosine]))


def test_encode_is_unit_length(embedder: Embedder) -> None:
    vectors = embedder.encode(["hello", "world", ""])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_report_semantic_diversity_and_embedding_leakage(embedder: Embedder) -> None:
    texts = [
        "The wireless earbuds have great sound and a long battery life.",
        "This coffee grinder is noisy but produces an even grind.",
        "Our tent stayed dry during a night of heavy rain.",
        "The mystery novel had a surprising ending.",
    ]
    reference = ["The wireless earbuds have great sound and a long battery life!"]
    report = validate_dataset(texts, reference=reference, embedder=embedder)
    assert report.diversity.semantic is not None and report.diversity.semantic > 0.5
    assert report.diversity.semantic_clusters == 4
    assert report.leakage is not None and [m.index for m in report.leakage.matches] == [0]
    assert report.leakage.matches[0].cosine is not None and report.leakage.matches[0].cosine > 0.95
    same = validate_dataset(["The same sentence here."] * 5, embedder=embedder)
    assert same.diversity.semantic == pytest.approx(0.0, abs=1e-5)
