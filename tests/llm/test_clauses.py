"""``motiongpt.llm.tasks.split_clauses`` on the connectors people write.

* ``legacy_split`` is the splitter as it was before the connectors were widened (``then`` only),
  copied verbatim: every template caption of the synthetic corpus must split exactly as it did,
  so the t2m_next records (and the embedded demo's metrics) do not change.
* ``WRITTEN_FIRST``: everyday wordings written before the splitter was, with the clauses a reader
  takes from them. ``HELD_OUT``: more wordings written after it was done (see that list's note).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from types import SimpleNamespace

from motiongpt.data.synthetic.captions import CONNECTORS, SUBJECTS, _segment_grid, make_captions, segment_phrases
from motiongpt.llm.tasks import split_clauses

# ---------------------------------------------------------------------------------------- legacy

_LEGACY_RE = re.compile(r",?\s+(?:and\s+)?then\s+", re.IGNORECASE)


def legacy_split(text: str) -> list[str]:
    """split_clauses before the wider connectors (verbatim copy, the reference for template captions)."""
    body = " ".join(str(text).split()).rstrip(".").strip()
    parts = [p.strip(" ,") for p in _LEGACY_RE.split(body)]
    return [p for p in parts if p]


# ------------------------------------------------------------------------------ written first

WRITTEN_FIRST: list[tuple[str, list[str]]] = [
    ("a man walks forward, then jumps twice.", ["a man walks forward", "jumps twice"]),
    ("A person walks forward. He then jumps.", ["A person walks forward", "He jumps"]),
    ("someone waves their right hand and after that sits down", ["someone waves their right hand", "sits down"]),
    ("a woman runs forward, afterwards she stops and looks around",
     ["a woman runs forward", "she stops and looks around"]),
    ("a man walks forward followed by a jump", ["a man walks forward", "a jump"]),
    ("the person squats down, followed by standing back up and waving",
     ["the person squats down", "standing back up and waving"]),
    ("a person walks in a circle; then sits down", ["a person walks in a circle", "sits down"]),
    ("a man jogs forward; he stops; he turns around", ["a man jogs forward", "he stops", "he turns around"]),
    ("a person walks forward before jumping", ["a person walks forward", "jumping"]),
    ("a man jumps after walking forward", ["walking forward", "a man jumps"]),
    ("before sitting down, the person waves", ["the person waves", "sitting down"]),
    ("After turning around, a man walks back", ["turning around", "a man walks back"]),
    ("someone steps to the left after turning", ["turning", "someone steps to the left"]),
    ("a person stands next to the wall and waves", ["a person stands next to the wall and waves"]),
    ("a man walks forward, next he jumps up and down", ["a man walks forward", "he jumps up and down"]),
    ("First, the person kicks with the left leg, then waves.", ["the person kicks with the left leg", "waves"]),
    ("a person walks foward, and finally sits donw", ["a person walks foward", "sits donw"]),
    ("a man picks up a box, then carries it forward, and finally puts it down",
     ["a man picks up a box", "carries it forward", "puts it down"]),
    ("A PERSON WALKS FORWARD AFTER THAT JUMPS", ["A PERSON WALKS FORWARD", "JUMPS"]),
    ("a person  walks ,  then   jumps ,,  and then waves", ["a person walks", "jumps", "waves"]),
    ("a person waves and jumps later", ["a person waves and jumps later"]),
    ("someone raises both arms, subsequently lowers them and claps",
     ["someone raises both arms", "lowers them and claps"]),
    ("a man crouches, once done he stands up again", ["a man crouches", "he stands up again"]),
    ("the man walks forward. Then he turns left. Finally, he sits down.",
     ["the man walks forward", "he turns left", "he sits down"]),
    ("a person walks backward, after which they jump", ["a person walks backward", "they jump"]),
    ("a person backs up and then stands back up", ["a person backs up", "stands back up"]),
    ("a person turns back around, later walks away", ["a person turns back around", "walks away"]),
    ("a person runs after the dog", ["a person runs after the dog"]),  # chasing, not an order
    ("a woman dances, then later she bows", ["a woman dances", "she bows"]),
    ("a man waves before he leaves", ["a man waves", "he leaves"]),
    ("the figure claps once, then jumps up and down", ["the figure claps once", "jumps up and down"]),
    ("a man does a cartwheel. after that, he does a handstand. next, he bows",
     ["a man does a cartwheel", "he does a handstand", "he bows"]),
    ("someone walks forward then turns right then walks forward again then sits",
     ["someone walks forward", "turns right", "walks forward again", "sits"]),
    ("a person lifts a cup to their mouth and drinks, afterward puts it back",
     ["a person lifts a cup to their mouth and drinks", "puts it back"]),
    ("a person stretches their arms. Next they jog in place.", ["a person stretches their arms", "they jog in place"]),
    ("a person kneels down after he waves", ["he waves", "a person kneels down"]),
    ("After a jump, the person spins around", ["a jump", "the person spins around"]),
    ("a man walks to the chair and sits, later he gets up", ["a man walks to the chair and sits", "he gets up"]),
    ("a persn walks slowly then rns", ["a persn walks slowly", "rns"]),
    ("the person raises their hand above their head, and then, after that, lowers it",
     ["the person raises their hand above their head", "lowers it"]),
    ("a person jumps first, then squats", ["a person jumps first", "squats"]),
    ("a man stands up from the chair followed by walking to the door",
     ["a man stands up from the chair", "walking to the door"]),
    ("a man sits down on the floor", ["a man sits down on the floor"]),
    ("someone walks forward and then, finally, sits down.", ["someone walks forward", "sits down"]),
    ("Before jumping, the man crouches, then he lands softly", ["the man crouches", "jumping", "he lands softly"]),
    ("a man turns after walking, then jumps", ["walking", "a man turns", "jumps"]),
]


@pytest.mark.parametrize("text, clauses", WRITTEN_FIRST, ids=[t for t, _ in WRITTEN_FIRST])
def test_written_first(text, clauses):
    assert split_clauses(text) == clauses


# ------------------------------------------------------------------- template captions: unchanged


def _all_phrases() -> list[str]:
    seen: dict[str, None] = {}
    for seg in _segment_grid():
        for _, pos, _w in SUBJECTS:
            for ph in segment_phrases(seg, pos):
                seen.setdefault(ph, None)
    return list(seen)


def test_template_phrases_split_as_before():
    """Every template phrase, first and later, after every subject, with every connector (and the
    optional "first " and " and " of make_captions): exactly the legacy clauses."""
    phrases = _all_phrases()
    assert len(phrases) > 150
    conns = CONNECTORS + (" and ",)
    n = 0
    for i, ph in enumerate(phrases):
        subj = SUBJECTS[i % len(SUBJECTS)][0]
        other = phrases[(7 * i + 3) % len(phrases)]
        third = phrases[(13 * i + 5) % len(phrases)]
        for c1 in conns:
            c2 = conns[(i + len(c1)) % len(conns)]
            for first in ("", "first "):
                for text in (f"{subj} {first}{ph}{c1}{other}{c2}{third}.", f"{subj} {first}{other}{c1}{ph}.",
                             f"{subj} {ph}."):
                    assert split_clauses(text) == legacy_split(text), text
                    n += 1
    assert n > 5000


@pytest.mark.parametrize("n_segments", [1, 2, 3, 4])
def test_make_captions_split_as_before(n_segments):
    """Captions drawn by make_captions from many label grids and seeds: exactly the legacy clauses
    (and, for captions stating every segment with a connector, one clause per segment)."""
    grid = _segment_grid()
    n = 0
    for seed in range(150):
        rng = np.random.default_rng(1000 * n_segments + seed)
        segs = [grid[int(k)] for k in rng.integers(len(grid), size=n_segments)]
        for text, _tokens in make_captions(segs, rng, 6):
            got = split_clauses(text)
            assert got == legacy_split(text), text
            if n_segments == 1:
                assert len(got) == 1
            n += 1
    assert n > 500


# ----------------------------------------------------------------------------------- held out

# Written after the splitter was done (by its author, so not blind to its rules), saved, then run
# once: all 22 passed on that first run; nothing was changed for them.
HELD_OUT: list[tuple[str, list[str]]] = [
    ("a guy jogs in place for a bit and then does some push-ups",
     ["a guy jogs in place for a bit", "does some push-ups"]),
    ("The woman bends down to pick something up. Afterwards, she stands up straight.",
     ["The woman bends down to pick something up", "she stands up straight"]),
    ("a person throws a ball, after that they catch it, and finally they bow",
     ["a person throws a ball", "they catch it", "they bow"]),
    ("someone sits on the chair after walking to it", ["walking to it", "someone sits on the chair"]),
    ("a man walks up the stairs; then he walks back down", ["a man walks up the stairs", "he walks back down"]),
    ("a person lies down on the ground before rolling over", ["a person lies down on the ground", "rolling over"]),
    ("Prior to jumping, the person swings their arms", ["the person swings their arms", "jumping"]),
    ("a person waves hello, next they turn around and leave", ["a person waves hello", "they turn around and leave"]),
    ("a man kicks the ball then runs after it", ["a man kicks the ball", "runs after it"]),
    ("the person raises his left arm, THEN lowers it, Then raises the right one",
     ["the person raises his left arm", "lowers it", "raises the right one"]),
    ("a person stands still for a moment, later on starts walking",
     ["a person stands still for a moment", "starts walking"]),
    ("a woman claps her hands twice followed by a spin", ["a woman claps her hands twice", "a spin"]),
    ("A man walks forward slowly. A few seconds later he trips and falls.",
     ["A man walks forward slowly", "he trips and falls"]),
    ("someone does jumping jacks, and subsequently stretches their leggs",
     ["someone does jumping jacks", "stretches their leggs"]),
    ("a person walks in a straight line and turns left at the end",
     ["a person walks in a straight line and turns left at the end"]),
    ("a man crawls under a table. once finished, he gets up.", ["a man crawls under a table", "he gets up"]),
    ("a figure punches forward, before that it steps forward", ["it steps forward", "a figure punches forward"]),
    ("a man dances the salsa, after which he takes a bow, then leaves the stage",
     ["a man dances the salsa", "he takes a bow", "leaves the stage"]),
    ("after he waves, the man sits", ["he waves", "the man sits"]),
    ("a person steps next to the table, then picks up the cup", ["a person steps next to the table", "picks up the cup"]),
    ("the person squats, then jumps, then squats again, then jumps again",
     ["the person squats", "jumps", "squats again", "jumps again"]),
    ("a man walks towards the door and opens it, and eventually walks through",
     ["a man walks towards the door and opens it", "walks through"]),
]


@pytest.mark.parametrize("text, clauses", HELD_OUT, ids=[t for t, _ in HELD_OUT])
def test_held_out(text, clauses):
    assert split_clauses(text) == clauses


# Found by probing after the held-out run (each failed then and was fixed).
PROBED: list[tuple[str, list[str]]] = [
    ("first of all, the man stretches. Then he runs.", ["the man stretches", "he runs"]),
    ("then", ["then"]),  # connector words alone: the text as written (one clause), as before
    ("and then then then", ["and then then then"]),
    ("a person runs, and after a while sits down", ["a person runs", "sits down"]),
]


@pytest.mark.parametrize("text, clauses", PROBED, ids=[t for t, _ in PROBED])
def test_probed(text, clauses):
    assert split_clauses(text) == clauses


@pytest.mark.parametrize("text", ["", "   ", ".", " , "])
def test_empty(text):
    assert split_clauses(text) == legacy_split(text) == []


# ------------------------------------------------------------------------- composed decoding


class _FakeGenerator:
    """Records the requests generate_composed makes; every clause writes 2 codes."""

    trained_tasks = ("t2m", "t2m_next")
    next_context_codes = 0
    guided_clauses = False
    max_motion_tokens = 60

    def __init__(self):
        self.calls: list[list] = []

    def generate(self, reqs, sampling, **_kw):
        self.calls.append(list(reqs))
        return [SimpleNamespace(generated_codes=[1, 2], prompt=r.caption, raw_text="", problems=[], num_new_tokens=2,
                                request=r) for r in reqs]

    def attach_motion(self, results, fix_foot=False):
        pass


def test_generate_composed_writes_user_clauses_in_time_order():
    from motiongpt.generate import GenerationRequest, SamplingConfig
    from motiongpt.generate.compose import generate_composed, supports_composition

    gen = _FakeGenerator()
    assert supports_composition(gen)
    caption = "A man jumps after walking forward. Finally he waves."
    res = generate_composed(gen, [GenerationRequest("t2m", caption, seed=1),
                                  GenerationRequest("t2m", "a person sits down next to the wall", seed=2)],
                            SamplingConfig(seed=0))
    assert len(res) == 2
    # the one-clause caption ("next to" does not split) is an ordinary t2m request
    single = [r for call in gen.calls for r in call if r.task == "t2m"]
    assert [r.caption for r in single] == ["a person sits down next to the wall"]
    clauses = [r.caption for call in gen.calls for r in call if r.task == "t2m_next"]
    assert clauses == ["walking forward", "A man jumps", "he waves"] == split_clauses(caption)
    assert res[0].codes == [1, 2] * 3 and res[0].request.caption == caption
