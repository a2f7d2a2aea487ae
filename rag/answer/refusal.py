"""When the offline answer says the interview does not cover a question: the refusal policy.

A ``RefusalPolicy`` weighs what retrieval found (``features``: the answer head's probability, the
best passage and sentence similarities, how much of the question's topic the transcript and the
top passages use, whether dense and BM25 agree, and whether the answer type the question asks
for, a number, a date, a name, is there at all) into one ``confidence``; below its threshold the
answer refuses. The policies are calibrated per embedding model (and for a catalog) on dev
questions; ``policy_for`` picks one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..query import asked_for, keywords
from ..types import Evidence, Hit

__all__ = ["RefusalPolicy", "DEFAULT_POLICY", "MINILM_POLICY", "PODCAST_POLICY", "PODCAST_CATALOG_POLICY",
           "POLICIES", "CATALOG_EPISODES", "policy_for", "answer_types", "type_mismatch", "features",
           "confidence"]


@dataclass(frozen=True)
class RefusalPolicy:
    """When to say "not covered": refuse when ``confidence`` falls below ``threshold``.

    ``confidence`` is a weighted sum of the features (see ``features``): best sentence similarity,
    best passage similarity, the share of the question's (IDF-weighted) content words found anywhere
    in the transcript and in the top passages, the same share where a word the transcript never
    uses counts by how near its nearest transcript word comes (semantic coverage), whether BM25 and
    dense retrieval agree on the top passage; minus ``type_weight`` when the question asks for an
    amount, a duration, a measure, a date or a name and the best sentences hold none (see
    ``type_mismatch``); minus ``prior_weight`` times how far the question prior puts the odds that a
    question of its kind is covered below the base rate (``adapters.QuestionPrior.distrust``; 0
    without a prior, and never a gain: no question is answered for its kind). Similarities are on the
    embedder's own scale, so the weights and threshold belong to one model: see ``POLICIES`` and
    ``policy_for``.
    """

    threshold: float = 0.0
    sentence_weight: float = 0.0
    dense_weight: float = 0.0
    coverage_weight: float = 1.0
    local_coverage_weight: float = 0.0
    semantic_coverage_weight: float = 0.0
    agreement_weight: float = 0.0
    type_weight: float = 0.3
    answer_weight: float = 0.0   # the adapter's answer head: calibrated P(the answer is among the passages)
    prior_weight: float = 0.0    # the question prior's distrust of its kind (counts against confidence)

    def weights(self) -> dict[str, float]:
        """Feature name -> signed weight (the mismatch penalty counts against confidence)."""
        return {"answer": self.answer_weight, "sentence": self.sentence_weight, "dense": self.dense_weight,
                "coverage": self.coverage_weight, "local_coverage": self.local_coverage_weight,
                "semantic_coverage": self.semantic_coverage_weight,
                "agreement": self.agreement_weight, "mismatch": -self.type_weight, "prior": -self.prior_weight}


# Fitted on the dev split only (python -m rag.evaluation.calibrate --split dev --fit): an L2-regularised
# logistic regression (C=1, signs constrained) of "unanswerable" on the seven features; the confidence
# weights are its negated coefficients scaled so the positive ones sum to 1, and the threshold is the
# lowest one reaching the highest refusal recall with false refusals <= 0.10 on dev (128 items, 32
# of them unanswerable).
MINILM_POLICY = RefusalPolicy(threshold=0.382, sentence_weight=0.0, dense_weight=0.041,
                              coverage_weight=0.399, local_coverage_weight=0.0,
                              semantic_coverage_weight=0.267, agreement_weight=0.293, type_weight=1.441)

# The same fit for MiniLM with the shipped podcast adapter, which adds the adapter's answer head
# (training/head.py: the calibrated probability that the answer is among the passages, fitted on
# mined validation searches with near misses) as a feature; the fit gives it the largest positive
# weight. The threshold is the lowest reaching the highest dev refusal recall at false refusals
# <= 0.08 (`python -m rag.evaluation.calibrate --split dev --fit --max-false-refusals 0.08`).
# Refitted for int8 passages with pooled sentence windows: recall 0.594 at 1.0% false refusals
# (the fp32 policy on these vectors: 0.562 at 1.0%; the plain model's policy: 0.625 at 6.2%).
# Beside the shipped adapter, answering.json's policy is this one plus the question prior's weight
# (rag/training/prior.py), and rag uses that.
PODCAST_POLICY = RefusalPolicy(threshold=0.291, answer_weight=0.348, sentence_weight=0.07, dense_weight=0.196,
                               coverage_weight=0.224, local_coverage_weight=0.0,
                               semantic_coverage_weight=0.163, agreement_weight=0.0, type_weight=1.159)

# Other embedders (e.g. the tests' hashing "fake-64") have no calibrated similarity scale: their
# default ignores similarities and refuses only when the question's words are mostly absent from the
# transcript (coverage is lexical, so it means the same under any model).
DEFAULT_POLICY = RefusalPolicy(threshold=0.2, sentence_weight=0.0, dense_weight=0.0,
                               coverage_weight=1.0, type_weight=0.3)

# An index of this many episodes or more is a catalog: its policies (named "...@catalog") are fitted
# on questions searched across the whole archive, where every passage has far more rivals and
# nearly every word of a question is used somewhere, so the one-episode policies refuse nothing
# (0 of 16 dev unanswerables, 0 of 10 test, on the 2,062-episode index).
CATALOG_EPISODES = 50

# The same fit on the whole archive (`python -m rag.evaluation.calibrate --catalog --index catalog
# --split dev --fit --max-false-refusals 0.08`): the dev split of eval/catalog_questions.jsonl (30
# items, 16 unanswerable) and 100 mined host questions from held-out episodes, refitted for the
# listeners' adapter on 2026-12-06 (the fit for the hosts' adapter refused 2 of dev's 14 answerable
# questions under it). On dev it refuses 16 of 16 unanswerables and no answerable question; on test
# 9 of 10 and none of 114 answerable, as the earlier fit did. Every unanswerable there names something
# no transcript holds, so the fit learns nothing about the type of answer (its weight is 0).
PODCAST_CATALOG_POLICY = RefusalPolicy(threshold=0.5584, answer_weight=0.037, sentence_weight=0.095,
                                       dense_weight=0.052, coverage_weight=0.258, local_coverage_weight=0.341,
                                       semantic_coverage_weight=0.051, agreement_weight=0.166, type_weight=0.0)

POLICIES = {"all-MiniLM-L6-v2": MINILM_POLICY, "sentence-transformers/all-MiniLM-L6-v2": MINILM_POLICY,
            "all-MiniLM-L6-v2+podcast": PODCAST_POLICY, "all-MiniLM-L6-v2+podcast@catalog": PODCAST_CATALOG_POLICY}


def policy_for(embedder_name: str | None, reranked: bool = False, episodes: int = 1) -> RefusalPolicy:
    """The refusal policy calibrated for this embedder (and its reranker, when ``reranked``; and
    for a catalog, when the index holds ``CATALOG_EPISODES`` or more), else the model-independent
    default."""
    if not embedder_name:
        return DEFAULT_POLICY
    name = str(embedder_name).rstrip("/").split("@", 1)[0]  # "@int8-passages": the same scale
    if "+" in name:  # a tuned model, "base+adapter-<digest>": policies are per adapter name
        name = name.rsplit("-", 1)[0]
    names = [name, name.rsplit("/", 1)[-1]]
    if reranked:
        names = [n + "+rerank" for n in names] + names
    if episodes >= CATALOG_EPISODES:
        names = [n + "@catalog" for n in names] + names
    return next((POLICIES[n] for n in names if n in POLICIES), DEFAULT_POLICY)


# Answer types: what a question asks for, and what a sentence must hold to answer it. "How many
# researchers" is not answered by a sentence whose only number is "five years"; "when did they
# release it" by one with no date; "which company" by one naming none. "How much does it matter"
# asks for a degree, not an amount, so "how much" counts only before money words or "cost".
# ("one" and "a few" are left out: speakers say "one of the things" and "a few months" all the time.)
_NUMBER_WORDS = (r"\d|\$|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
                 r"forty|fifty|hundreds?|thousands?|millions?|billions?|dozens?|percent|half)\b")
_NAMED_KINDS = (r"(?:company|companies|studios?|brands?|products?|programming languages?|countr(?:y|ies)|city|"
                r"cities|universit(?:y|ies)|employer)(?!')")  # "the company's mission" asks for no name
_PERSON = r"who (?:wrote|founded|invented)"   # a name type that asks for a person
_ANSWER_TYPES = (
    # An amount is not a duration: "five years" does not say how many employees there are.
    ("amount", re.compile(r"\b(?:how many|how much (?:money|funding|revenue|(?:does|do|did|will|would) (?:\S+ ){1,4}"
                          r"(?:cost|charge|pay|raise|earn|make|spend|sell for))|what (?:percentage|share)|cost|costs|"
                          r"price|prices|pricing|revenue|salary|headcount|valuation)\b", re.I),
     re.compile(r"(?:" + _NUMBER_WORDS + r")(?![\w.,]*\s+(?:or so\s+)?(?:seconds?|minutes?|hours?|days?|weeks?|months?|"
                r"years?|decades?)\b)", re.I)),
    ("duration", re.compile(r"\b(?:how (?:long|old|often)|what age|at what age)\b", re.I),
     re.compile(_NUMBER_WORDS + r"|\b(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|"
                r"daily|weekly|monthly|yearly)\b", re.I)),
    ("measure", re.compile(r"\b(?:what (?:resolution|frame rate|size|length)|maximum length|how (?:big|large|fast))\b",
                           re.I),
     re.compile(_NUMBER_WORDS + r"|\b(?:seconds?|minutes?|frames?|pixels?|resolution|hd|4k)\b", re.I)),
    ("date", re.compile(r"\b(?:what year|in what year|what date|when (?:did|was|were|will|is|does) \S+(?: \S+){0,3} "
                        r"(?:release[sd]?|launch(?:e[sd])?|found(?:ed)?|announce[sd]?|come out|came out|ship(?:ped)?|"
                        r"debut(?:ed)?|raise[sd]?|held))\b", re.I),
     re.compile(r"\b(?:1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|october|"
                r"november|december|last year|this year|next year|ago|years?|months?|weeks?)\b", re.I)),
    ("name", re.compile(r"\b(?:what(?: is|'s| was) the name|what(?: is|'s| was| were) (?:\S+ ){1,6}called|full name|"
                        r"which (?:\S+ (?:or \S+ )?){0,2}" + _NAMED_KINDS + r"|"
                        # "what is the guest's favourite programming language": only determiners,
                        # possessives and a few adjectives between, so "what does the company do" is not.
                        r"what(?:'s| is| was| are| were)? (?:(?:the|his|her|their|its|a|an|[\w-]+'s?|favou?rite|main|"
                        r"first|new|current|previous) ){0,3}" + _NAMED_KINDS + r"|"
                        + _PERSON + r"|"
                        # "where does Chris work" asks for an employer or a place, which have names.
                        r"where (?:does|did|do|is|was|were|are) (?:\S+ ){1,3}(?:work(?:s|ed)?|live[sd]?|stud(?:y|ied)|"
                        r"grow up|grew up|based|located|headquartered|teach(?:es)?)|"
                        r"where (?:is|was|are|were) (?:\S+ ){1,2}from)\b", re.I),
     None),  # a name: see _names
)
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][\w-]+")  # a capitalised word after a lower-case one
_WHO = re.compile(r"\b" + _PERSON + r"\b", re.I)   # a name that may be a speaker's


def _names(text: str, speakers: set[str]) -> list[str]:
    return [w for w in _NAME.findall(text) if w.lower() not in speakers and w not in ("I", "AI")]


def answer_types(question: str) -> list[str]:
    """What the question asks for: any of amount, duration, measure, date, name (often none)."""
    return [name for name, asks, _ in _ANSWER_TYPES if asks.search(question)]


# Words that ask for an answer type rather than name the topic: "what does it cost" is answered by
# "$20 a month", which need not say "cost".
_ASKING_WORDS = set(keywords(
    "many much long old often age size length big large fast resolution frame rate percentage share "
    "cost costs price prices pricing money revenue salary headcount valuation charge pay earn spend "
    "year date name named called full company companies city cities country countries employer "
    "university universities work works worked live lives lived based located headquartered study "
    "studied grow grew up teach teaches"))  # "where does Chris work" names Chris, who is left out


def _share_a_word(a: set[str], b: set[str]) -> bool:
    """A word in both, where one stem may extend the other: the light stemmer keeps "raise" but
    cuts "raised" to "rais"."""
    return bool(a & b) or any(x.startswith(y) or y.startswith(x)
                              for x in a for y in b if min(len(x), len(y)) >= 4)


def type_mismatch(question: str, hits: Sequence[Hit], sentences: int = 4, asks: str | None = None) -> bool:
    """The question asks for an amount, a duration, a measure, a date or a name, and none of the
    ``sentences`` best-matching sentences holds one where it is about the question's topic.
    ``asks``: the words that say what is asked for, where they are not all of ``question`` (a
    follow-up asks for what its own words do, on the topic its standalone form carries: "What is
    Gen-2?" after "When was it founded?" wants no date).

    Four sentences, from the dev split's typed questions: with three, 3 of the 5 answerable ones
    were refused; with four, 1, while 13 of the 19 unanswerable ones still were. "Who founded (wrote,
    invented)" reads eight for a name, and the speakers' names count there (below). "About the topic":
    the sentence or its neighbours share a content word with the question, once the words that
    ask for the type ("how many", "price", "what is the name of") and the question's own names are
    taken out. Speech is full of numbers and names, so without it "How many people have used it?" was
    answered by any sentence with a number. (#260's dev and test splits refuse the same items either
    way; the held-out #84 set refuses 2 more of its 9 unanswerable items and 1 of its 31 answerable.)
    """
    wanted = [evidence for _, wants, evidence in _ANSWER_TYPES if wants.search(asks or question)]
    if not wanted:
        return False
    # Speakers' names are everywhere in talk ("Thanks, Chris"), so they answer no "what is the name"
    # question; but "who founded it" is often answered by one of them, where the host introduces
    # them: "I'd like to introduce Anastasis Germanidis, who is the co-founder and CTO at Runway"
    # (#260's "Who founded Runway?", refused before; it is the eighth best sentence). Such a name
    # is looked for in twice as many sentences, the speakers' names counted.
    person = bool(_WHO.search(asks or question))
    best = sorted(((sim, h, int(si)) for h in hits[:5] for si, sim in h.scores.get("sentence_scores", {}).items()),
                  key=lambda t: -t[0])
    # Names and numbers the question itself uses are no answer to it: "Gen-2" holds a digit but does
    # not say how long Gen-2 took to train, "Nvidia" does not name the Nvidia model asked about.
    named = [w for w in re.findall(r"[\w-]+", question)[1:] if w[0].isupper() or any(ch.isdigit() for ch in w)]
    asked = re.compile(r"\b(?:%s)\b" % "|".join(map(re.escape, named)) if named else "(?!)", re.I)
    speakers = {part.lower() for h in hits[:5] for s in h.chunk.sentences for part in s.speaker.split()}
    topic = set(keywords(asked.sub(" ", question))) - _ASKING_WORDS
    for evidence in wanted:
        found = False
        person_name = person and evidence is None
        for _, hit, si in best[:sentences * 2 if person_name else sentences]:
            text = asked.sub(" ", hit.chunk.sentences[si].text)
            if not (any(_names(text, set() if person_name else speakers)) if evidence is None
                    else evidence.search(text)):
                continue
            around = " ".join(s.text for s in hit.chunk.sentences[max(si - 1, 0):si + 2])
            if not topic or _share_a_word(topic, set(keywords(around))):
                found = True
                break
        if not found:
            return True
    return False


def features(evidence: Evidence, answer: float | None = None) -> dict[str, float]:
    """The refusal features (see ``RefusalPolicy``) of what retrieval found: its signals, computed
    once for the question, and the top passages' own scores. ``answer``: the reranker's calibrated
    probability that its best stretch answers, which then stands in for the adapter's answer head."""
    hits = evidence.hits
    if not hits:
        return {"answer": 0.0, "sentence": 0.0, "dense": 0.0, "coverage": 0.0, "local_coverage": 0.0,
                "semantic_coverage": 0.0, "agreement": 0.0, "mismatch": 1.0, "prior": 0.0}
    signals = evidence.signals
    top = hits[0].scores
    head = signals.answer if answer is None else answer
    # The question's own best similarities where it is judged on other words than were searched.
    sentence = max(h.scores["sentence"] for h in hits[:5]) if signals.sentence is None else signals.sentence
    dense = max(h.scores["dense"] for h in hits[:5]) if signals.dense is None else signals.dense
    return {"answer": float(head or 0.0),
            "sentence": sentence,
            "dense": dense,
            "coverage": signals.coverage,
            "local_coverage": signals.local_coverage,
            "semantic_coverage": signals.semantic_coverage,
            # Agreement counts as much as the words behind it: BM25 ranking a passage first
            # for one common word ("good") is no evidence, however dense retrieval ranks it.
            "agreement": float(top["dense_rank"] <= 3 and top["bm25_rank"] <= 3) * signals.local_coverage,
            "mismatch": float(type_mismatch(evidence.question.standalone, hits, asks=asked_for(evidence.question))),
            "prior": signals.distrust}


def confidence(evidence: Evidence, policy: RefusalPolicy = MINILM_POLICY, answer: float | None = None) -> float:
    if not evidence.hits:
        return 0.0
    f = features(evidence, answer)
    return sum(w * f[name] for name, w in policy.weights().items())
