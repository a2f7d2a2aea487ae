"""The extractive answerer's refusal: answer-type checks, coverage, per-embedder policies."""

from dataclasses import replace

import pytest

from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.refusal import (CATALOG_EPISODES, DEFAULT_POLICY, MINILM_POLICY, PODCAST_CATALOG_POLICY,
                                PODCAST_POLICY, RefusalPolicy, answer_types, confidence, features, policy_for,
                                type_mismatch)
from rag.types import Chunk, Evidence, Exchange, Hit, Question, Sentence, Signals


def hit(text: str, sim: float = 0.6, coverage: float = 1.0, local: float | None = None,
        ranks: tuple[int, int] = (1, 1)) -> Hit:
    s = Sentence(text=text, speaker="Guest", start_s=61.0, estimated=False)
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Guest",), start_s=60.0, end_s=90.0,
                  sentences=(s,))
    return Hit(chunk=chunk, score=0.05, rank=1, matched=(0,), scores={
        "dense": sim, "sentence": sim, "coverage": coverage, "sentence_scores": {0: sim},
        "local_coverage": coverage if local is None else local,
        "dense_rank": ranks[0], "bm25_rank": ranks[1]})


def spoken(pid: str, start: float, text: str, sim: float) -> Hit:
    """A passage of one sentence the guest says a second into it, at similarity ``sim``."""
    s = Sentence(text=text, speaker="Guest", start_s=start + 1.0, estimated=False)
    chunk = Chunk(id=pid, episode="e", chapter=None, speakers=("Guest",), start_s=start,
                  end_s=start + 30.0, sentences=(s,))
    return Hit(chunk=chunk, score=0.05, rank=1, matched=(0,), scores={
        "dense": 0.6, "sentence": sim, "coverage": 1.0, "local_coverage": 1.0, "dense_rank": 1,
        "bm25_rank": 1, "sentence_scores": {0: sim}})


def evidence(question, hits, previous: Exchange | None = None, across: bool = False) -> Evidence:
    """What retrieval would hand over: the question and its hits, the signals as the top hit says."""
    if not isinstance(question, Question):
        question = Question(question, previous=previous, across=across)
    top = hits[0].scores if hits else {}
    signals = Signals(coverage=top.get("coverage", 1.0), local_coverage=top.get("local_coverage", 1.0),
                      semantic_coverage=top.get("coverage", 1.0), answer=None)
    return Evidence.of(question, hits, signals)


def asked(question, hits, **kw) -> tuple[Question, Evidence]:
    e = evidence(question, hits, **kw)
    return e.question, e


def test_number_questions_need_a_number():
    assert type_mismatch("How much does the subscription cost?", [hit("It is a great product for artists.")])
    assert not type_mismatch("How much does it cost?", [hit("It costs $12 a month for creators.")])
    assert not type_mismatch("In what year did it launch?", [hit("We launched it in 2018 with artists.")])
    assert not type_mismatch("What did they build?", [hit("A tool for artists.")])
    # "how much ... matter" asks for a degree, not an amount
    assert not type_mismatch("How much does their history matter to them?", [hit("It matters a lot to us.")])
    # a number the question itself names is no answer: "Gen-2" does not say how long training took
    assert type_mismatch("How long did it take to train Gen-2?", [hit("We trained Gen-2 on video.")])
    assert not type_mismatch("How long did it take to train Gen-2?", [hit("Training Gen-2 took three weeks.")])
    # a follow-up asks for what its own words ask for, on the topic its standalone form carries
    asked = "What is Gen-2? (following up on: When was it founded?)"
    assert type_mismatch(asked, [hit("Gen-2 is a text to video model.")])
    assert not type_mismatch(asked, [hit("Gen-2 is a text to video model.")], asks="What is Gen-2?")
    assert type_mismatch("When? (following up on: What is Gen-2?)", [hit("Gen-2 is a text to video model.")],
                         asks="When was it released?")


def test_each_answer_type_needs_its_own_evidence():
    assert answer_types("How many researchers were on the first team?") == ["amount"]
    assert answer_types("When did they release the first model?") == ["date"]
    assert answer_types("When did his career and his art come together?") == []  # an event, not a date
    assert answer_types("What does he think about video?") == []
    assert answer_types("How much does the guest's company charge per seat?") == ["amount"]
    assert answer_types("How much does their history matter?") == []
    # "a few months" and "one of the things" say nothing about how many people
    assert type_mismatch("How many researchers were on the first team?",
                         [hit("In the first few months it was one of the things we did.")])
    assert not type_mismatch("How many researchers were on the first team?",
                             [hit("We were twelve researchers on that first team.")])
    # a duration is not an amount
    assert type_mismatch("How many employees do they have?", [hit("The vision stayed the same for five years.")])
    assert not type_mismatch("How much money did they raise?", [hit("We raised $50 million last year.")])
    # a release date needs a date ("last year", "2023", a month), not just an event
    assert type_mismatch("When did they release the first model?", [hit("We released it after a long wait.")])
    assert not type_mismatch("When did they release the first model?", [hit("We released it last year.")])
    assert not type_mismatch("How old was he when he started?", [hit("He was 25 when he started it.")])
    # an employer, a place or a named thing of a kind: a name must be there
    for asks_name in ("Where does Chris work?", "Where is Runway based?",
                      "What is the guest's favourite programming language?", "Which company makes it?"):
        assert answer_types(asks_name) == ["name"], asks_name
    for asks_none in ("What does the company do?", "What is the company's mission?",
                      "Where did the idea come from?", "What is his favourite part of the job?"):
        assert answer_types(asks_none) == [], asks_none
    # the evidence must be about the question's topic: speech is full of numbers
    assert type_mismatch("How many people have used the app?", [hit("We trained it for two weeks on 8 GPUs.")])
    assert not type_mismatch("How many people have used the app?", [hit("About 300 people used the app daily.")])
    # ... in the sentence or a neighbour (a sentence is matched with its neighbours)
    told = hit("The app spread fast after launch.")
    told = replace(told, chunk=replace(told.chunk, sentences=told.chunk.sentences + (
        Sentence(text="About 300 of them came daily.", speaker="Guest", start_s=64.0, estimated=False),)),
        scores={**told.scores, "sentence_scores": {1: 0.6}})
    assert not type_mismatch("How many people have used the app?", [told])
    # the price of that strictness: an answer that shares no word with the question counts as none
    assert type_mismatch("How much does the subscription cost?", [hit("It is $12 a month.")])
    assert type_mismatch("Where does Chris work?", [hit("Chris can probably guess what I think about that.")])
    assert not type_mismatch("Where does Chris work?", [hit("Chris is a strategist at Lockheed Martin.")])


def test_name_questions_need_a_name_the_question_does_not_already_hold():
    asked = "Which company released the model behind their drawing tool?"
    assert not type_mismatch(asked, [hit("There was this model that Nvidia released for car research.")])
    assert type_mismatch(asked, [hit("There was this model released for self-driving car research.")])
    named = "What is the name of the Nvidia model they built on?"
    assert type_mismatch(named, [hit("There was this model that Nvidia released for car research.")])
    assert not type_mismatch(named, [hit("We built on the model that Nvidia called GauGAN back then.")])
    # the speakers' own names are not an answer to "which company"
    assert type_mismatch("Which company does he work for?", [hit("Thanks for joining, said Guest today.")])


def test_confidence_uses_coverage_and_answer_type():
    covered = [hit("The subscription costs $12 a month for creators.", coverage=1.0)]
    uncovered = [hit("It is a great product for artists.", coverage=0.1)]
    q = "How much does the subscription cost?"
    assert confidence(evidence(q, covered)) > MINILM_POLICY.threshold > confidence(evidence(q, uncovered))
    assert features(evidence(q, [])) == {"answer": 0.0, "sentence": 0.0, "dense": 0.0, "coverage": 0.0, "local_coverage": 0.0,
                               "semantic_coverage": 0.0, "agreement": 0.0, "mismatch": 1.0, "prior": 0.0}
    assert confidence(evidence(q, [])) == 0.0


def test_local_coverage_and_signal_agreement_raise_confidence():
    q = "Which film won the top prize at the festival?"
    text = "We have a film festival where we show films."
    specific = hit(text, local=0.9)
    vague = hit(text, local=0.3)  # the topic words are in the transcript, not in the top passages
    assert features(evidence(q, [specific]))["local_coverage"] == 0.9
    assert confidence(evidence(q, [specific])) > confidence(evidence(q, [vague]))
    agreeing, disagreeing = hit(text, ranks=(2, 1)), hit(text, ranks=(1, 9))
    assert features(evidence(q, [agreeing]))["agreement"] == 1.0 and features(evidence(q, [disagreeing]))["agreement"] == 0.0
    assert confidence(evidence(q, [agreeing])) - confidence(evidence(q, [disagreeing])) == \
        pytest.approx(MINILM_POLICY.agreement_weight)
    # ... but agreement on a passage that shares few of the question's words is little evidence
    weak = hit(text, local=0.2, ranks=(1, 1))
    assert features(evidence(q, [weak]))["agreement"] == pytest.approx(0.2)


def test_answerer_refuses_below_threshold_and_answers_above():
    answerer = ExtractiveAnswerer(policy=MINILM_POLICY)
    refused = answerer.answer(*asked("What is their annual revenue?",
                                     [hit("We love making films with artists.", sim=0.3, coverage=0.1)]))
    assert refused.refused and refused.text.startswith("The interview doesn't cover that.")
    ok = answerer.answer(*asked("What do they make films with?", [hit("We love making films with artists.")]))
    assert not ok.refused and "[01:01]" in ok.text and ok.citations


def test_policies_are_per_embedder():
    assert policy_for("all-MiniLM-L6-v2") is MINILM_POLICY
    assert policy_for("sentence-transformers/all-MiniLM-L6-v2") is MINILM_POLICY
    assert policy_for("fake-64") is DEFAULT_POLICY and policy_for(None) is DEFAULT_POLICY
    # the default ignores similarity scales: low fake-embedder similarities do not refuse
    low_sim = [hit("We love making films with artists.", sim=0.02, coverage=0.9)]
    assert not ExtractiveAnswerer(policy=DEFAULT_POLICY).answer(*asked("What films?", low_sim)).refused
    assert ExtractiveAnswerer(policy=MINILM_POLICY).answer(
        *asked("What films?", [hit("x y z w.", sim=0.02, coverage=0.2, ranks=(9, 9))])).refused
    assert isinstance(RefusalPolicy(), RefusalPolicy)


def test_a_catalog_index_refuses_by_the_policy_fitted_across_the_archive():
    tuned = "all-MiniLM-L6-v2+podcast-0386890acbdc@int8-passages"  # as an index records the adapter
    assert policy_for(tuned) is PODCAST_POLICY
    assert policy_for(tuned, episodes=CATALOG_EPISODES - 1) is PODCAST_POLICY
    assert policy_for(tuned, episodes=CATALOG_EPISODES) is PODCAST_CATALOG_POLICY
    # a model with no catalog fit keeps its own policy, and an uncalibrated one the default
    assert policy_for("all-MiniLM-L6-v2", episodes=2062) is MINILM_POLICY
    assert policy_for("fake-64", episodes=2062) is DEFAULT_POLICY
    # across the archive every word is said somewhere: a question naming something the top passage
    # lacks (coverage 0.6, local 0.3) is refused there, where the one-episode policy answers it
    absent = [hit("We shipped the new compiler last year.", sim=0.5, coverage=0.6, local=0.3)]
    assert ExtractiveAnswerer(policy=PODCAST_CATALOG_POLICY).answer(*asked("When did Zorblax ship?", absent)).refused
    assert not ExtractiveAnswerer(policy=PODCAST_POLICY).answer(*asked("When did Zorblax ship?", absent)).refused
    found = [hit("We shipped the new compiler last year.", sim=0.6, coverage=1.0, local=0.9)]
    assert not ExtractiveAnswerer(policy=PODCAST_CATALOG_POLICY).answer(*asked("When did the compiler ship?", found)).refused


def test_a_follow_up_gets_new_sentences_unless_a_quoted_one_answers_clearly_better():
    first = Sentence(text="We started Runway at art school in New York.", speaker="Guest", start_s=61.0,
                     estimated=False)
    second = Sentence(text="Because we wanted to make tools for artists ourselves.", speaker="Guest",
                      start_s=70.0, estimated=False)
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Guest",), start_s=60.0, end_s=90.0,
                  sentences=(first, second))

    def passage(sims):
        return Hit(chunk=chunk, score=0.05, rank=1, matched=(0, 1), scores={
            "dense": 0.6, "sentence": 0.6, "coverage": 1.0, "local_coverage": 1.0, "dense_rank": 1,
            "bm25_rank": 1, "sentence_scores": dict(enumerate(sims))})

    answerer = ExtractiveAnswerer(policy=MINILM_POLICY, margin=0.0)
    q = "What was the reason behind it?"          # none of the sentences' words: similarity decides
    said = Exchange("Q", first.text)
    # The new sentence answers nearly as well (0.65 against 0.7): it alone is quoted.
    close = passage([0.7, 0.65])
    assert first.text in answerer.answer(*asked(q, [close])).text
    follow = answerer.answer(*asked(q, [close], previous=said))
    assert first.text not in follow.text and second.text in follow.text
    # The quoted sentence answers clearly better (0.9 against 0.3): it is quoted again, with the
    # new one after it; shutting it out quoted the new sentence alone (SAID_AGAIN).
    clear = passage([0.9, 0.3])
    follow = answerer.answer(*asked(q, [clear], previous=said))
    assert first.text in follow.text and second.text in follow.text
    # ...but not to a question that asks to go on: that gets what comes after the last answer.
    more = answerer.answer(*asked("Can you say more?", [clear], previous=said))
    assert first.text not in more.text and second.text in more.text
    # when everything relevant was already said, repeating beats an empty answer
    again = answerer.answer(*asked(q, [clear], previous=Exchange("Q", first.text + " " + second.text)))
    assert not again.refused and again.citations


def test_a_follow_up_about_the_last_answer_is_answered_soon_after_it():
    """"Why would that help?" is most often answered right after the answer it asks about: a
    stretch starting soon after a time the last answer cited beats one a little more like the
    question elsewhere in the episode. A new question, or a follow-up without that answer's times,
    is judged on similarity alone."""
    far = spoken("far", 900.0, "Eating habits are hard to change for almost everyone we see.", 0.62)
    soon = spoken("soon", 130.0, "It makes the other option less desirable, so you skip it.", 0.58)
    answerer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-99.0), margin=0.0)
    said = Exchange("What does she ask patients to do?", "Guest [02:00]: \u201cPut the snacks away.\u201d",
                    times=(120.0,))
    follow = Question("Why would that help?", standalone="Why would that help? (following up on: ...)",
                      previous=said)
    assert follow.follows_up
    assert [c.passage_id for c in answerer.answer(follow, evidence(follow, [far, soon])).citations] == ["soon"]
    # the same question on its own, and a follow-up whose last answer cited nothing
    alone = Question("Why would that help?")
    assert [c.passage_id for c in answerer.answer(alone, evidence(alone, [far, soon])).citations] == ["far"]
    untimed = replace(follow, previous=replace(said, times=()))
    assert [c.passage_id for c in answerer.answer(untimed, evidence(untimed, [far, soon])).citations] == ["far"]
    # Across episodes, a time says where only in the episode the last answer quoted.
    catalog = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-99.0), margin=0.0, episode_labels=True)
    quoted = spoken("quoted", 115.0, "Put the snacks away.", 0.1)
    assert catalog.answer(follow, evidence(follow, [far, soon, quoted])).citations[0].passage_id == "soon"
    elsewhere = replace(soon, chunk=replace(soon.chunk, episode="other"))
    assert catalog.answer(follow, evidence(follow, [far, elsewhere, quoted])).citations[0].passage_id == "far"


def test_a_refusal_shows_each_near_passages_best_sentence_with_its_time():
    sentences = (Sentence(text="Yeah.", speaker="Guest", start_s=61.0, estimated=False),
                 Sentence(text="Thanks so much for having me on.", speaker="Guest", start_s=62.0, estimated=False),
                 Sentence(text="Gen-2 turns a short text prompt into a video clip.", speaker="Guest",
                          start_s=66.0, estimated=False))
    chunk = Chunk(id="c1", episode="e", chapter="Runway today", speakers=("Guest",), start_s=60.0,
                  end_s=90.0, sentences=sentences)
    near = Hit(chunk=chunk, score=0.01, rank=1, matched=(0, 1, 2), scores={
        "dense": 0.1, "sentence": 0.1, "dense_rank": 1, "bm25_rank": 1,
        "sentence_scores": {0: 0.1, 1: 0.1, 2: 0.1}})
    answer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=99.0)).answer(*asked("How big is the team?", [near]))
    assert answer.refused
    assert answer.text.splitlines()[-1] == ("- [01:06] Runway today (Guest): Gen-2 turns a short text "
                                            "prompt into a video clip.")


def test_the_guests_words_answer_unless_the_question_is_about_the_host():
    said = (Sentence(text="We have many young artists listening, so what is your advice for them?",
                     speaker="Chris Benson", start_s=61.0, estimated=False),
            Sentence(text="Keep experimenting without worrying about a commercial outcome.",
                     speaker="Anastasis Germanidis", start_s=70.0, estimated=False))
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Chris Benson", "Anastasis Germanidis"),
                  start_s=60.0, end_s=90.0, sentences=said)
    near = Hit(chunk=chunk, score=0.05, rank=1, matched=(0, 1), scores={
        "dense": 0.6, "sentence": 0.7, "coverage": 1.0, "local_coverage": 1.0, "sentence_scores": {0: 0.9, 1: 0.3},
        "dense_rank": 1, "bm25_rank": 1})
    answerer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-99.0), hosts=("Chris Benson",))
    guest = answerer.answer(*asked("What advice does he give young artists?", [near]))
    # the host's echo of the question is never quoted, however close it matches
    assert [c.speaker for c in guest.citations] == ["Anastasis Germanidis"]
    for about_host in ("What did the host ask young artists?", "What did Chris ask young artists?"):
        assert answerer.answer(*asked(about_host, [near])).citations[0].speaker == "Chris Benson", about_host
    plain = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-99.0))  # no hosts known
    assert plain.answer(*asked("What advice does he give young artists?", [near])).citations[0].speaker == "Chris Benson"


def test_a_host_who_answers_is_quoted_but_never_a_hosts_question():
    # A panel show: the regulars answer each other. Mat (a host) hands over with a question, then
    # Jon (also a host) answers it: Jon's answer is the quote, Mat's question never is.
    said = (Sentence(text="So what do you use for testing the HTTP handlers in your own code?",
                     speaker="Mat Ryer", start_s=61.0, estimated=False),
            Sentence(text="I use the httptest package from the standard library for every handler.",
                     speaker="Jon Calhoun", start_s=66.0, estimated=False),
            Sentence(text="It records the response so the test can check the status and the body.",
                     speaker="Jon Calhoun", start_s=70.0, estimated=False))
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Mat Ryer", "Jon Calhoun"),
                  start_s=60.0, end_s=90.0, sentences=said)
    hit = Hit(chunk=chunk, score=0.05, rank=1, matched=(0, 1), scores={
        "dense": 0.6, "sentence": 0.7, "coverage": 1.0, "local_coverage": 1.0,
        "sentence_scores": {0: 0.95, 1: 0.5, 2: 0.4}, "dense_rank": 1, "bm25_rank": 1})
    answerer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-99.0), hosts=("Mat Ryer", "Jon Calhoun"))
    answer = answerer.answer(*asked("what tool tests the http handlers", [hit]))
    assert {c.speaker for c in answer.citations} == {"Jon Calhoun"}


def _reply(*texts_and_sims, speaker="Guest", host_first: str | None = None):
    """A passage: an optional host question, then the guest's sentences with their similarities."""
    sentences, scores = [], {}
    if host_first:
        sentences.append(Sentence(text=host_first, speaker="Host", start_s=50.0, estimated=False))
        scores[0] = 0.95
    for text, sim in texts_and_sims:
        scores[len(sentences)] = sim
        sentences.append(Sentence(text=text, speaker=speaker, start_s=60.0 + 5 * len(sentences),
                                  estimated=False))
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Host", speaker), start_s=50.0,
                  end_s=120.0, sentences=tuple(sentences))
    return Hit(chunk=chunk, score=0.05, rank=1, matched=tuple(range(len(sentences))), scores={
        "dense": 0.6, "sentence": 0.6, "coverage": 1.0, "local_coverage": 1.0, "dense_rank": 1,
        "bm25_rank": 1, "sentence_scores": scores})


def test_the_answer_is_one_stretch_of_the_reply_in_order_without_the_hosts_question_or_filler():
    h = _reply(("Yeah.", 0.9),
               ("We started Runway at art school in New York.", 0.8),
               ("Art school gave us time to explore models freely.", 0.5),
               ("Then we raised a seed round and hired researchers.", 0.6),
               ("Pricing is another topic entirely for us today.", 0.1),
               host_first="Why did you start Runway at art school, of all places?")
    answer = ExtractiveAnswerer(policy=DEFAULT_POLICY, hosts=("Host",), max_sentences=3).answer(
        *asked("Why did they start Runway at art school?", [h]))
    quotes = [c.quote for c in answer.citations]
    assert quotes == ["We started Runway at art school in New York.",
                      "Art school gave us time to explore models freely.",
                      "Then we raised a seed round and hired researchers."]
    assert [c.start_s for c in answer.citations] == sorted(c.start_s for c in answer.citations)


def test_a_stretch_that_answers_about_as_well_as_the_best_is_quoted_with_it_even_right_after_it():
    # The sentence that matches the question best sets the topic; the answer is often the stretch
    # after it (listeners' "What got him through the math class?"). Where that stretch scores
    # within the margin, both are quoted, in the order they were said; where it scores far less,
    # only the best.
    def reply(sim: float) -> Hit:
        return _reply(("Calculus was really hard for me in that math class.", 0.8),
                      ("I had not taken college algebra or any of the prerequisites.", 0.6),
                      ("So I struggled with it for most of the term.", 0.5),
                      ("Thankfully, WolframAlpha helped me through that math class.", sim),
                      ("It explained every step of the harder problems to me.", 0.45),
                      ("That got me a passing grade in the end, somehow.", 0.4),
                      host_first="What was the math class like?")

    def quotes(sim: float) -> list[str]:
        answerer = ExtractiveAnswerer(policy=DEFAULT_POLICY, hosts=("Host",))
        return [c.quote for c in answerer.answer(*asked("What got him through the math class?", [reply(sim)])).citations]

    close = quotes(0.72)
    assert close[0] == "Calculus was really hard for me in that math class."
    assert "Thankfully, WolframAlpha helped me through that math class." in close
    assert len(close) == len(set(close)) == 6
    assert quotes(0.3) == ["Calculus was really hard for me in that math class.",
                           "I had not taken college algebra or any of the prerequisites.",
                           "So I struggled with it for most of the term."]


def test_two_stretches_far_apart_are_read_best_first_and_near_ones_in_the_order_said():
    # "Who are Runway's customers?" read the guest's background [01:36] before the film studios
    # adopting Runway [29:24], its best stretch, because an answer was always read in time order.
    def passage(pid: str, start: float, texts_and_sims) -> Hit:
        sentences = tuple(Sentence(text=t, speaker="Guest", start_s=start + 6 * i, estimated=False)
                          for i, (t, _) in enumerate(texts_and_sims))
        chunk = Chunk(id=pid, episode="e", chapter=None, speakers=("Guest",), start_s=start,
                      end_s=start + 60, sentences=sentences)
        return Hit(chunk=chunk, score=0.05, rank=1, matched=tuple(range(len(sentences))), scores={
            "dense": 0.6, "sentence": 0.6, "coverage": 1.0, "local_coverage": 1.0, "dense_rank": 1,
            "bm25_rank": 1, "sentence_scores": {i: sim for i, (_, sim) in enumerate(texts_and_sims)}})

    customers = ("Film studios and ad agencies have been adopting Runway this year.", 0.8)
    background = ("Runway came out of my background, a hybrid of engineering and art.", 0.78)
    answerer = ExtractiveAnswerer(policy=DEFAULT_POLICY, max_sentences=1)

    def quotes(background_at: float) -> list[str]:
        hits = [passage("late", 1764.0, [customers]), passage("early", background_at, [background])]
        return [c.quote for c in answerer.answer(*asked("Who are Runway's customers?", hits)).citations]

    assert quotes(80.0) == [customers[0], background[0]]      # 28 minutes apart: the best first
    assert quotes(1740.0) == [background[0], customers[0]]    # 24 s apart: in the order said


def test_a_question_that_names_only_where_to_look_gets_a_stretch_that_says_something():
    # The end of an episode: a thanks, a reaction, the last thing said, more thanks.
    closing = _reply(("So thank you all for bearing with me, and Chris is back next week.", 0.9),
                     ("That was fantastic guidance, really.", 0.85),
                     ("Build things today and follow your curiosity, plan less and tinker more.", 0.4),
                     ("Thanks for coming on and talking about Runway today.", 0.8))
    sentences = closing.chunk.sentences
    speakers = ("Host", "Host", "Guest", "Host")
    closing = replace(closing, chunk=replace(closing.chunk, sentences=tuple(
        replace(s, speaker=who) for s, who in zip(sentences, speakers))))
    answerer = ExtractiveAnswerer(policy=DEFAULT_POLICY, max_sentences=2)
    signals = Signals(coverage=1.0, local_coverage=1.0, semantic_coverage=1.0, answer=None)
    question = Question("What did they discuss near the end?")
    answer = answerer.answer(question, Evidence.of(question, [closing], replace(signals, only_scope=True)))
    assert [c.quote for c in answer.citations] == [
        "Build things today and follow your curiosity, plan less and tinker more."]
    # A question with a topic is left to its words: a sentence that opens with thanks may answer it.
    question = Question("When is Chris back?")
    answer = answerer.answer(question, Evidence.of(question, [closing], signals))
    assert answer.citations[0].quote.startswith("So thank you all")
    # Where nothing says enough, the best stretch is still quoted rather than nothing.
    short = _reply(("Video models learn physics.", 0.5), ("They predict the next frame.", 0.6))
    question = Question("What did they say around the 20-minute mark?")
    answer = answerer.answer(question, Evidence.of(question, [short], replace(signals, only_scope=True)))
    assert not answer.refused and answer.citations


def test_a_stretch_of_a_few_words_is_a_reaction_not_an_answer():
    # Go Time: "What was Joe's non-tech hot take?" was answered "It sounds really hot."
    said = (Sentence(text="It sounds really hot.", speaker="Joe Davidson", start_s=61.0, estimated=False),
            Sentence(text="For casual footwear people are looking for peak breathability, so sandals win.",
                     speaker="Kris Brandow", start_s=64.0, estimated=False))
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Joe Davidson", "Kris Brandow"), start_s=60.0,
                  end_s=90.0, sentences=said)
    near = Hit(chunk=chunk, score=0.05, rank=1, matched=(0, 1), scores={
        "dense": 0.6, "sentence": 0.7, "coverage": 1.0, "local_coverage": 1.0, "sentence_scores": {0: 0.9, 1: 0.5},
        "dense_rank": 1, "bm25_rank": 1})
    answer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-99.0)).answer(*asked("What was the hot take?", [near]))
    assert [c.speaker for c in answer.citations] == ["Kris Brandow"]


def test_a_numbered_name_the_question_uses_wins_over_its_sibling():
    gen2 = _reply(("Gen-2 is a text to video model from Runway.", 0.8))
    gen1 = _reply(("We built editing tools long before we released Gen-1 to artists.", 0.75))
    gen1 = replace(gen1, chunk=replace(gen1.chunk, id="c2"), rank=2)
    answerer = ExtractiveAnswerer(policy=DEFAULT_POLICY)
    alone = answerer.answer(*asked("What about Gen-1?", [gen2, gen1]))
    assert [c.passage_id for c in alone.citations] == ["c2"]
    previous = Exchange("What is Gen-2?", "Guest [01:05]: \u201cGen-2 is a text to video model.\u201d")
    follow_up = Question("What about Gen-1?", "What about Gen-1? (following up on: What is Gen-2?)", previous)
    answer = answerer.answer(*asked(follow_up, [gen2, gen1]))
    assert [c.passage_id for c in answer.citations] == ["c2"]   # the numbered name it asks about, not the last one
    assert [c.passage_id for c in answerer.answer(*asked("What is Gen-2?", [gen2, gen1])).citations] == ["c1"]


def test_say_more_goes_on_from_where_the_last_answer_stopped():
    h = _reply(("Gen-2 turns a text prompt into a short video clip.", 0.9),
               ("It is the best known of the models at Runway.", 0.2),
               ("It was trained on licensed footage over many months.", 0.2),
               ("Gen-2 video generation is the year's big topic too.", 0.7))
    answerer = ExtractiveAnswerer(max_sentences=1, policy=DEFAULT_POLICY)
    first = answerer.answer(*asked("What is Gen-2?", [h]))
    assert [c.quote for c in first.citations] == ["Gen-2 turns a text prompt into a short video clip."]
    previous = Exchange("What is Gen-2?", first.text)
    more = answerer.answer(*asked(Question("Can you say more?", "Can you say more? (following up on: What is Gen-2?)",
                                           previous), [h]))
    assert [c.quote for c in more.citations] == ["It is the best known of the models at Runway."]
    other = answerer.answer(*asked(Question("What else about Gen-2?", "What else about Gen-2? (following up on: What is Gen-2?)",
                                            previous), [h]))
    assert [c.quote for c in other.citations] == ["Gen-2 video generation is the year's big topic too."]


def test_across_a_catalog_a_close_second_stretch_comes_from_another_episode():
    def hit_in(episode: str, text: str, sim: float, rank: int) -> Hit:
        s = Sentence(text=text, speaker="Guest", start_s=61.0, estimated=False)
        chunk = Chunk(id=f"{episode}-c", episode=episode, chapter=None, speakers=("Guest",), start_s=60.0,
                      end_s=90.0, sentences=(s,))
        return Hit(chunk=chunk, score=0.05, rank=rank, matched=(0,), scores={
            "dense": sim, "sentence": sim, "coverage": 1.0, "local_coverage": 1.0, "dense_rank": rank,
            "bm25_rank": rank, "sentence_scores": {0: sim}})

    hits = [hit_in("go-time-3", "We run Rust in production for our proxy servers.", 0.8, 1),
            hit_in("go-time-3", "Our proxy servers handle a lot of traffic every day.", 0.75, 2),
            hit_in("js-party-9", "Rust in production changed how our team ships tools.", 0.65, 3)]
    question = "What have guests said about Rust in production?"
    catalog = ExtractiveAnswerer(policy=DEFAULT_POLICY, episode_labels=True).answer(*asked(question, hits, across=True))
    assert [c.episode for c in catalog.citations] == ["go-time-3", "js-party-9"]
    assert "[js-party-9 01:01]" in catalog.text
    one = ExtractiveAnswerer(policy=DEFAULT_POLICY).answer(*asked(question, hits))
    assert {c.passage_id for c in one.citations} <= {"go-time-3-c"} and "[01:01]" in one.text


def test_a_question_asked_of_many_episodes_quotes_each_of_them():
    # "What have guests said about X?" across a catalog: the best stretch of each of the three
    # episodes that come near the best, best episode first; not two stretches of the first one.
    def hit_in(episode: str, text: str, sim: float, rank: int, start: float = 61.0) -> Hit:
        s = Sentence(text=text, speaker="Guest", start_s=start, estimated=False)
        chunk = Chunk(id=f"{episode}-{rank}", episode=episode, chapter=None, speakers=("Guest",),
                      start_s=start - 1, end_s=start + 30, sentences=(s,))
        return Hit(chunk=chunk, score=0.05, rank=rank, matched=(0,), scores={
            "dense": sim, "sentence": sim, "coverage": 1.0, "local_coverage": 1.0, "dense_rank": rank,
            "bm25_rank": rank, "sentence_scores": {0: sim}})

    hits = [hit_in("ship-it-104", "Pgvector lets us keep our embeddings in Postgres.", 0.8, 1),
            hit_in("ship-it-104", "We keep the embeddings beside the rows they describe.", 0.78, 2),
            hit_in("ship-it-104", "Postgres was already running, so that was an easy call.", 0.77, 3),
            hit_in("practical-ai-234", "Pgvector is a very young solution right now.", 0.7, 4),
            hit_in("go-time-1", "Someone asked about pgvector on the mailing list once.", 0.3, 5),
            hit_in("the-changelog-599", "Pgvector is the brainchild of Andrew Kane.", 0.72, 6, 30.0)]
    answerer = ExtractiveAnswerer(policy=DEFAULT_POLICY, episode_labels=True, max_sentences=1)
    across = answerer.answer(*asked("What have guests said about pgvector?", hits, across=True))
    assert [c.episode for c in across.citations] == ["ship-it-104", "practical-ai-234", "the-changelog-599"]
    one = answerer.answer(*asked("Which guest said pgvector keeps embeddings in Postgres?", hits))
    assert {c.episode for c in one.citations} <= {"ship-it-104", "practical-ai-234"}
    assert len({c.episode for c in one.citations}) <= 2


def test_who_the_guest_is_is_answered_where_the_host_introduces_her():
    # "Who is the guest?" quoted the guest's "Thanks so much for having me." A host's lead-in that
    # names a guest is the answer (not the question that hands over), even where the refusal would
    # refuse; without a guest's name in the passages it is a question like any other.
    def sentence(text, speaker, at):
        return Sentence(text=text, speaker=speaker, start_s=at, estimated=False)
    intro = (sentence("We have a great show for you this week, with a very special guest.", "Chris Benson", 10.0),
             sentence("With us is Jane Doe, who is the CTO and co-founder at Acme Video.", "Chris Benson", 15.0),
             sentence("Welcome to the show, how are you doing today?", "Chris Benson", 20.0),
             sentence("Thanks so much for having me on the show, Chris.", "Jane Doe", 25.0))
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Chris Benson", "Jane Doe"), start_s=10.0,
                  end_s=30.0, sentences=intro)
    opening = Hit(chunk=chunk, score=0.05, rank=1, matched=(0, 1, 2, 3), scores={
        "dense": 0.3, "sentence": 0.5, "coverage": 0.0, "local_coverage": 0.0, "dense_rank": 1, "bm25_rank": 1,
        "sentence_scores": {0: 0.5, 1: 0.2, 2: 0.4, 3: 0.5}})
    answerer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=0.5), hosts=("Chris Benson",), guests=("Jane Doe",))
    answerer.answer(*asked("What does the guest think of video models?", [opening]))
    assert "_guest_named" not in vars(answerer)   # a catalog's thousands of names: compiled only when asked
    for question in ("Who is the guest?", "Who's the guest this week, and what does she do?"):
        answer = answerer.answer(*asked(question, [opening]))
        assert not answer.refused, question
        assert answer.citations[0].quote.startswith("With us is Jane Doe"), question
        assert not any(c.quote.endswith("?") for c in answer.citations), question
    assert answerer.answer(*asked("What does the guest think of video models?", [opening])).refused
    assert ExtractiveAnswerer(policy=RefusalPolicy(threshold=0.5), hosts=("Chris Benson",)).answer(
        *asked("Who is the guest?", [opening])).refused


def test_a_follow_up_is_not_answered_with_only_what_the_last_answer_quoted():
    """"What was it supposed to tell people?" after an answer about a sign on a door quoted the same
    sentences about the sign again, word for word. They may still lead where they answer clearly
    best, but the best stretch that says something new comes with them."""
    sign = spoken("sign", 1940.0, "My old boss taped a sign to his door that said In Barbados.", 0.9)
    meant = spoken("meant", 1975.0, "You don't interrupt me, I need to get this thing done.", 0.55)
    answerer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-99.0), margin=0.0)
    said = Exchange("What did her boss hang on his door?", f"Guest [32:21]: \u201c{sign.chunk.sentences[0].text}\u201d",
                    times=(1941.0,))
    follow = Question("What was it supposed to tell people?",
                      standalone="What was it supposed to tell people? (following up on: ...)", previous=said)
    answer = answerer.answer(follow, evidence(follow, [sign, meant]))
    assert [c.passage_id for c in answer.citations] == ["sign", "meant"]
    # Asked alone, the best stretch alone (margin 0).
    alone = Question("What was it supposed to tell people?")
    assert [c.passage_id for c in answerer.answer(alone, evidence(alone, [sign, meant])).citations] == ["sign"]
    # With nothing new left, the repeat stands alone rather than no answer.
    assert [c.passage_id for c in answerer.answer(follow, evidence(follow, [sign])).citations] == ["sign"]
