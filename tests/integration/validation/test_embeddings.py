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


#: Unrelated Thai sentences (no spaces): the model reads each as one [UNK], cosine 1.0.
THAI_RECORDS = [
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทยและเป็นศูนย์กลางทางเศรษฐกิจ",
    "ฉันชอบกินข้าวผัดกับไข่ดาวตอนเช้าก่อนไปทำงาน",
    "รถไฟฟ้าขบวนนี้ไปสนามบินสุวรรณภูมิทุกสิบห้านาที",
    "แมวของฉันนอนหลับบนโซฟาทั้งวันโดยไม่สนใจใคร",
    "ราคาทองคำวันนี้ปรับตัวสูงขึ้นมากเมื่อเทียบกับเมื่อวาน",
]
THAI_REFERENCES = [
    "ภูเขาไฟฟูจิเป็นภูเขาที่สูงที่สุดในประเทศญี่ปุ่น",
    "การออกกำลังกายสม่ำเสมอช่วยให้สุขภาพแข็งแรง",
]
EMOJI_ONLY = ["😀🎉🔥", "🐱💤🛋️", "🌧️☔🌈", "🍣🍜🍵", "🚗💨🏁", "📚✏️🎓"]


def test_readable_tells_texts_the_model_sees_as_unknown(embedder: Embedder) -> None:
    texts = [
        THAI_RECORDS[0],
        "ភ្នំពេញគឺជារាជធានីនៃប្រទេសកម្ពុជា",  # Khmer
        "አዲስ አበባ የኢትዮጵያ ዋና ከተማ ናት",  # Amharic
        EMOJI_ONLY[0],
        "The battery lasts all day.",
        "Great product 😀 would buy again",  # one unknown emoji among known words
        "Москва является столицей России",
        "東京は日本の首都です",
        "",
    ]
    assert embedder.readable(texts).tolist() == [False] * 4 + [True] * 5


def test_unreadable_texts_neither_leak_nor_collapse_diversity(embedder: Embedder) -> None:
    report = validate_dataset(THAI_RECORDS, reference=THAI_REFERENCES, embedder=embedder)
    assert report.leakage is not None and report.leakage.rate == 0.0
    assert report.leakage.embedding_unreadable == 5
    assert report.leakage.reference_embedding_unreadable == 2
    assert report.diversity.semantic is None and report.diversity.embedding_unreadable == 5
    assert report.metrics()["embedding_unreadable_rate"] == 1.0
    assert report.passed

    emoji = validate_dataset(EMOJI_ONLY, embedder=embedder)
    assert emoji.diversity.semantic is None and emoji.diversity.semantic_clusters is None
    assert emoji.diversity.embedding_unreadable == 6
    rule = {r.rule: r for r in emoji.gate.rules}["min_semantic_diversity"]
    assert rule.status == "skipped"

    # Beside readable records, the unreadable ones are left out, not counted as one sentence.
    english = [
        "The wireless earbuds have great sound and a long battery life.",
        "This coffee grinder is noisy but produces an even grind.",
        "Our tent stayed dry during a night of heavy rain.",
    ]
    mixed = validate_dataset(english + EMOJI_ONLY, embedder=embedder)
    alone = validate_dataset(english, embedder=embedder)
    assert mixed.diversity.semantic == pytest.approx(alone.diversity.semantic)
    assert mixed.diversity.semantic_clusters == 3
    assert mixed.metrics()["embedding_unreadable_rate"] == pytest.approx(6 / 9)
    assert alone.metrics()["embedding_unreadable_rate"] == 0.0


def test_unreadable_leakage_keeps_readable_matches(embedder: Embedder) -> None:
    record = "The wireless earbuds have great sound and a long battery life."
    report = validate_dataset(
        [record, *THAI_RECORDS],
        reference=[*THAI_REFERENCES, record.replace(".", "!")],
        leakage_ngram_threshold=1.0,
        leakage_containment_threshold=1.0,
        embedder=embedder,
    )
    assert report.leakage is not None
    ((match,),) = [report.leakage.matches]
    assert (match.index, match.reference_index) == (0, 2)
    assert match.cosine is not None and match.cosine > 0.95


def test_similarity_leaves_unreadable_pairs_out_of_embedding_scores(embedder: Embedder) -> None:
    report = similarity(
        [THAI_RECORDS[1], "The battery lasts all day."],
        [THAI_RECORDS[0], "Battery life is a full day."],
        embedder=embedder,
    )
    thai, english = report.pairs
    assert thai.cosine is None and thai.bertscore_f1 is None
    assert english.cosine is not None and english.cosine > 0.5
    assert english.bertscore_f1 is not None
    assert report.corpus.cosine == pytest.approx(english.cosine)
    assert report.embedding_unreadable == 1
    only_thai = similarity([THAI_RECORDS[1]], [THAI_RECORDS[0]], embedder=embedder)
    assert only_thai.corpus.cosine is None and only_thai.corpus.bertscore_f1 is None
