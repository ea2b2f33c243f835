"""Similarity of candidates to references: BLEU, chrF, ROUGE-1/2/L, embedding cosine, BERTScore.

Pairwise scores compare candidate i with reference i; corpus scores are sacrebleu's corpus BLEU
and chrF (statistics summed over the corpus, not averaged) and the mean of the pairwise ROUGE,
cosine and BERTScore values. BLEU tokenises with sacrebleu's 13a, which splits words at spaces:
a Chinese, Japanese or Thai sentence was one token, and one character changed scored 0. A pair
holding Chinese characters is tokenised with sacrebleu's ``zh`` (each character a token, other
text as 13a), one holding kana, Thai, Lao, Khmer or Myanmar with ``char`` (every character);
the corpus BLEU sums the statistics of each pair tokenised so (``bleu_tokenizer``).

ROUGE uses the package's Unicode tokeniser (rouge-score's default drops every non-ASCII
character). BERTScore is computed here with the local MiniLM model (greedy matching of
contextual token embeddings, Zhang et al. 2020, last layer, no idf weighting and no baseline
rescaling), so it needs no download. A pair with a text the model cannot read
(``Embedder.readable``: Thai, emoji only...) gets no cosine and no BERTScore: such texts embed
as ``[UNK]`` alone, so unrelated ones scored 1.0.

ROUGE-L is rouge-score's definition (the F-measure of the longest common token subsequence),
computed here with a bit-parallel LCS (Hyyrö 2004): rouge-score fills an m x n table in Python,
so two texts of 16,000 words took 84 s and 6 GB; this takes O(m / 64) machine words of memory
and O(n) big-integer steps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from textnlp.errors import InvalidInput
from textnlp.validation.embedding import Embedder, Vectors
from textnlp.validation.inputs import checked_texts
from textnlp.validation.text import words

if TYPE_CHECKING:
    from sacrebleu.tokenizers.tokenizer_base import BaseTokenizer

#: Chinese characters (sacrebleu's ``zh`` splits these, and CJK punctuation, one by one).
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
#: Other scripts written without spaces between words: kana, Thai, Lao, Myanmar, Khmer.
_UNSPACED = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]"
)


class PairScores(BaseModel):
    """Scores of one candidate against its reference."""

    model_config = ConfigDict(extra="forbid")

    #: sacrebleu sentence BLEU, 0-100 (100 = identical n-grams).
    bleu: float
    #: sacrebleu chrF (character n-gram F-score), 0-100.
    chrf: float
    #: ROUGE F-measures, 0-1.
    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815 - the metric's usual name
    #: Cosine of the MiniLM sentence embeddings, -1..1 (about 0-1 for text); None without
    #: embeddings or when the model cannot read the candidate or the reference.
    cosine: float | None = None
    #: BERTScore precision/recall/F1 with MiniLM token embeddings, -1..1 (about 0.2-1 for text).
    bertscore_precision: float | None = None
    bertscore_recall: float | None = None
    bertscore_f1: float | None = None


class CorpusScores(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bleu: float
    chrf: float
    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815
    cosine: float | None = None
    bertscore_f1: float | None = None


class SimilarityReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int
    pairs: list[PairScores]
    corpus: CorpusScores
    #: Pairs left out of cosine and BERTScore because the embedding model cannot read one of
    #: their texts; None when neither was asked for.
    embedding_unreadable: int | None = None


class _Tokenizer:
    """rouge-score tokenizer protocol: lower-cased Unicode words."""

    def tokenize(self, text: str) -> list[str]:
        return words(text)


def similarity(
    candidates: Sequence[str],
    references: Sequence[str],
    *,
    embeddings: bool = True,
    bertscore: bool = True,
    embedder: Embedder | None = None,
) -> SimilarityReport:
    """Pairwise and corpus similarity of ``candidates[i]`` to ``references[i]``."""
    _check_pairs("similarity", candidates, references)
    if not candidates:
        raise InvalidInput("similarity needs at least one candidate")
    import sacrebleu
    from rouge_score import rouge_scorer

    tokenizer = _Tokenizer()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], tokenizer=tokenizer)
    cosines: list[float | None] = [None] * len(candidates)
    berts: list[tuple[float, float, float] | None] = [None] * len(candidates)
    unreadable = None
    if embeddings or bertscore:
        embedder = embedder or Embedder.shared()
        read = embedder.readable(candidates) & embedder.readable(references)
        kept = [i for i in range(len(candidates)) if read[i]]
        unreadable = len(candidates) - len(kept)
        cands, refs = [candidates[i] for i in kept], [references[i] for i in kept]
        if embeddings and kept:
            scored = cosine_pairs(embedder.encode(cands), embedder.encode(refs))
            for i, cosine in zip(kept, scored, strict=True):
                cosines[i] = cosine
        if bertscore and kept:
            for i, triple in zip(kept, bert_score(cands, refs, embedder=embedder), strict=True):
                berts[i] = triple
    pairs: list[PairScores] = []
    for i, (cand, ref) in enumerate(zip(candidates, references, strict=True)):
        rouge = scorer.score(ref, cand)
        bert = berts[i]
        pairs.append(
            PairScores(
                bleu=_percent(
                    sacrebleu.sentence_bleu(cand, [ref], tokenize=bleu_tokenizer(cand, ref)).score
                ),
                chrf=_percent(sacrebleu.sentence_chrf(cand, [ref]).score),
                rouge1=rouge["rouge1"].fmeasure,
                rouge2=rouge["rouge2"].fmeasure,
                rougeL=rouge_l(tokenizer.tokenize(ref), tokenizer.tokenize(cand)),
                cosine=cosines[i],
                bertscore_precision=bert[0] if bert else None,
                bertscore_recall=bert[1] if bert else None,
                bertscore_f1=bert[2] if bert else None,
            )
        )
    corpus = CorpusScores(
        bleu=_percent(_corpus_bleu(candidates, references)),
        chrf=_percent(sacrebleu.corpus_chrf(list(candidates), [list(references)]).score),
        rouge1=_mean([p.rouge1 for p in pairs]),
        rouge2=_mean([p.rouge2 for p in pairs]),
        rougeL=_mean([p.rougeL for p in pairs]),
        cosine=_mean_or_none([c for c in cosines if c is not None]),
        bertscore_f1=_mean_or_none([b[2] for b in berts if b is not None]),
    )
    return SimilarityReport(
        count=len(pairs), pairs=pairs, corpus=corpus, embedding_unreadable=unreadable
    )


def bleu_tokenizer(candidate: str, reference: str) -> str:
    """sacrebleu's tokeniser for a pair: ``char`` where either text holds kana, Thai, Lao,
    Khmer or Myanmar, ``zh`` where it holds Chinese characters, else the standard ``13a``."""
    if _UNSPACED.search(candidate) or _UNSPACED.search(reference):
        return "char"
    if _HAN.search(candidate) or _HAN.search(reference):
        return "zh"
    return "13a"


def _corpus_bleu(candidates: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU of the pairs, each tokenised by ``bleu_tokenizer``: the texts
    are tokenised here and scored with ``tokenize="none"`` (for all-13a pairs, the same n-gram
    statistics, so the same score, as ``corpus_bleu`` with 13a)."""
    import sacrebleu

    cands: list[str] = []
    refs: list[str] = []
    for cand, ref in zip(candidates, references, strict=True):
        tokenize = _bleu_tokenizer(bleu_tokenizer(cand, ref))
        # sacrebleu strips trailing whitespace before it tokenises; so does this.
        cands.append(tokenize(cand.rstrip()))
        refs.append(tokenize(ref.rstrip()))
    # force: the texts are tokenised on purpose (no "forgot to detokenize" warning).
    return float(sacrebleu.corpus_bleu(cands, [refs], tokenize="none", force=True).score)


@cache
def _bleu_tokenizer(name: str) -> BaseTokenizer:
    from sacrebleu.metrics.bleu import BLEU

    tokenizer: BaseTokenizer = BLEU(tokenize=name).tokenizer
    return tokenizer


def lcs_length(left: Sequence[str], right: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences, bit-parallel: bit i of
    ``row`` is 0 where the LCS so far could end at ``left[i]`` (Hyyrö 2004, after Allison and
    Dix); each token of ``right`` updates the whole row with a few big-integer operations."""
    if not left or not right:
        return 0
    positions: dict[str, int] = {}
    for index, token in enumerate(left):
        positions[token] = positions.get(token, 0) | (1 << index)
    full = (1 << len(left)) - 1
    row = full
    for token in right:
        matches = row & positions.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(left) - row.bit_count()


def rouge_l(reference: Sequence[str], candidate: Sequence[str]) -> float:
    """ROUGE-L F-measure of ``candidate`` against ``reference`` (rouge-score's definition)."""
    lcs = lcs_length(reference, candidate)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


def cosine_pairs(left: Vectors, right: Vectors) -> list[float]:
    """Row-wise cosine of two matrices of unit vectors, in [-1, 1] (float32 rounding put
    identical texts at 1.0000002)."""
    return [float(x) for x in np.clip(np.einsum("ij,ij->i", left, right), -1.0, 1.0)]


def _check_pairs(function: str, candidates: Sequence[str], references: Sequence[str]) -> None:
    """Two lists of texts, paired one to one."""
    checked_texts(candidates, "candidates")
    checked_texts(references, "references")
    if len(candidates) != len(references):
        raise InvalidInput(
            f"{function} needs as many references as candidates "
            f"({len(candidates)} candidates, {len(references)} references)"
        )


def _percent(score: float) -> float:
    """sacrebleu's 0-100 score kept in its range (identical texts scored 100.00000000000004)."""
    return min(max(score, 0.0), 100.0)


def bert_score(
    candidates: Sequence[str], references: Sequence[str], *, embedder: Embedder | None = None
) -> list[tuple[float, float, float]]:
    """(precision, recall, F1) per pair: each token matched to its most similar token.

    Precision averages, over candidate tokens, the best cosine with a reference token; recall
    the reverse; F1 is their harmonic mean. A pair with an empty side scores 0. Texts the model
    cannot read score as their ``[UNK]`` tokens (1.0 for any two Thai texts): ``similarity``
    leaves them out with ``Embedder.readable``.
    """
    _check_pairs("bert_score", candidates, references)
    embedder = embedder or Embedder.shared()
    cand_tokens = embedder.token_embeddings(candidates)
    ref_tokens = embedder.token_embeddings(references)
    scores: list[tuple[float, float, float]] = []
    for cand, ref in zip(cand_tokens, ref_tokens, strict=True):
        if len(cand) == 0 or len(ref) == 0:
            scores.append((0.0, 0.0, 0.0))
            continue
        sim = np.clip(cand @ ref.T, -1.0, 1.0)  # cosines of unit vectors, float32-rounded
        precision = float(sim.max(axis=1).mean())
        recall = float(sim.max(axis=0).mean())
        total = precision + recall
        f1 = 2 * precision * recall / total if total > 0 else 0.0
        scores.append((precision, recall, f1))
    return scores


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _mean_or_none(values: Sequence[float]) -> float | None:
    """The mean of the pairs scored (None: none was, the metric off or no text read)."""
    return float(np.mean(values)) if values else None
