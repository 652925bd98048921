"""Caption templates, a small POS lexicon, and HumanML3D-style token strings.

Captions are written from a clip's **labels** (after measuring the motion), never from the raw
sampling, so every side, speed, direction, angle and count word is faithful:

* a left-hand wave is always "left"; "quickly"/"slowly" appear only in the fast/slow speed bands;
  "jogs" only in the jog band and "runs" only in the run band;
* counts ("twice", "three times", "two squats") equal the labelled counts; step counts equal the
  labelled number of foot placements;
* turn words follow the angle band (45: "slightly", 90: "turns left"/"a quarter turn",
  180: "turns around"); a spin is a full circle, "counterclockwise" = to the left (seen from above).

Tokens follow HumanML3D's ``text_process.py``: alphabetic words only (no punctuation, numbers
spelled out), lowercase, ``word/POS`` with universal POS tags, nouns and verbs lemmatized; the few
ambiguous words are tagged by context (see :func:`tag_caption`).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "LEXICON",
    "SUBJECTS",
    "CONNECTORS",
    "segment_phrases",
    "make_captions",
    "tag_caption",
    "template_vocabulary",
]

COUNT_ADV = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"}
NUM_WORD = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
ANGLE_WORDS = {45: "forty five degrees", 90: "ninety degrees", 180: "a hundred and eighty degrees"}
BODY_PARTS = {"hand", "hands", "arm", "arms", "leg", "legs", "foot", "feet", "side"}

# (subject, possessive) pairs and their sampling weights.
SUBJECTS: tuple[tuple[str, str, float], ...] = (
    ("a person", "their", 0.4),
    ("someone", "their", 0.15),
    ("a man", "his", 0.18),
    ("a woman", "her", 0.12),
    ("the person", "their", 0.15),
)
CONNECTORS: tuple[str, ...] = (", then ", " and then ", ", and then ", " then ")

# word -> (lemma, universal POS). Verbs and nouns are lemmatized as HumanML3D does.
_LEX: dict[str, tuple[str, str]] = {}


def _add(pos: str, words: str) -> None:
    for w in words.split():
        _add_one(w, w, pos)


def _add_one(word: str, lemma: str, pos: str) -> None:
    _LEX[word] = (lemma, pos)


_add("DET", "a the both his her their its")
_add("PRON", "someone it them")
_add("NOUN", "person man woman figure place way pace side circle turn squat kick jump air head greeting")
for _w, _l in {
    "steps": "step", "hands": "hand", "arms": "arm", "legs": "leg", "knees": "knee", "times": "time",
    "degrees": "degree", "squats": "squat", "kicks": "kick", "jumps": "jump", "hand": "hand", "arm": "arm",
    "leg": "leg", "foot": "foot", "while": "while", "hundred": "hundred",
}.items():
    _add_one(_w, _l, "NOUN")
_add("NUM", "one two three four five six seven eight nine ten forty ninety eighty")
_add("ADV", "forward backward backwards ahead straight slowly quickly briskly fast leisurely around sideways "
     "slightly again still then first twice once high back counterclockwise clockwise together idle there "
     "far low all")
# forward / high / low / fast are ADV by default; templates tag their adjective uses (``fast``).
_add("ADJ", "slow steady normal full quarter half slight small big little long few single")
_add("ADP", "at to in into with above over up down for of out")
_add("CCONJ", "and")
for _w, _l in {
    "walks": "walk", "jogs": "jog", "runs": "run", "strolls": "stroll", "hurries": "hurry", "moves": "move",
    "takes": "take", "turns": "turn", "makes": "make", "does": "do", "spins": "spin", "jumps": "jump",
    "hops": "hop", "leaps": "leap", "squats": "squat", "crouches": "crouch", "stands": "stand",
    "bends": "bend", "kicks": "kick", "waves": "wave", "raises": "raise", "lifts": "lift", "puts": "put",
    "lowers": "lower", "claps": "clap", "waits": "wait", "stays": "stay", "remains": "remain",
    "shuffles": "shuffle", "backs": "back", "sidesteps": "sidestep", "steps": "step", "standing": "stand",
}.items():
    _add_one(_w, _l, "VERB")
# left / right: tagged by context (see tag_caption); listed so the vocabulary test covers them.
_add_one("left", "left", "ADV")
_add_one("right", "right", "ADV")
LEXICON: dict[str, tuple[str, str]] = dict(_LEX)


# ============================================================================ phrase templates
# Placeholders: {pos} possessive, {s} side word, {d} direction word, {n} number word,
# {c} count adverb, {clock} clockwise/counterclockwise, {angle} angle in words.

_WALK = {
    "slow": ["walks forward slowly", "slowly walks forward", "walks forward at a slow pace", "strolls forward",
             "walks slowly ahead", "walks leisurely forward"],
    "normal": ["walks forward", "walks straight ahead", "walks ahead", "walks forward at a steady pace",
               "moves forward", "walks straight forward"],
    "fast": ["walks forward quickly", "quickly walks forward", "walks briskly forward", "hurries forward",
             "walks fast ahead", "walks forward at a fast pace"],
}
_RUN = {
    "jog": ["jogs forward", "jogs ahead", "jogs straight ahead", "jogs forward at a steady pace"],
    "run": ["runs forward", "runs ahead", "runs forward quickly", "runs straight ahead fast"],
}
_BACK = {
    "slow": ["walks backward slowly", "slowly walks backwards", "steps backward slowly", "slowly backs up"],
    "normal": ["walks backward", "walks backwards", "steps backward", "backs up", "moves backward"],
}
_SIDE = ["sidesteps to the {d}", "steps sideways to the {d}", "shuffles sideways to the {d}", "moves sideways to the {d}",
         "sidesteps {d}"]
_TURN = {
    45: ["turns slightly to the {d}", "turns a little to the {d}", "turns {angle} to the {d}", "makes a slight turn to the {d}"],
    90: ["turns {d}", "turns to the {d}", "turns {angle} to the {d}", "makes a quarter turn to the {d}", "turns to {pos} {d}"],
    180: ["turns around", "turns back around", "turns around to the {d}", "turns {angle} to the {d}", "does a half turn to the {d}"],
}
_SPIN = ["spins around", "spins in a full circle", "spins around to the {d}", "turns a full circle to the {d}", "spins {clock}",
         "does a full turn to the {d}", "spins all the way around {clock}"]
_JUMP_PLACE = {
    "any": ["jumps", "jumps up", "jumps in place", "jumps straight up"],
    "low": ["hops in place", "does a small jump", "jumps up a little"],
    "high": ["jumps high", "jumps up high", "does a big jump", "leaps high into the air"],
    "many": ["jumps {c}", "jumps up and down {c}", "jumps in place {c}", "does {n} jumps"],
    "many_low": ["hops {c}", "hops in place {c}"],
}
_JUMP_FWD = {
    "any": ["jumps forward", "leaps forward", "jumps ahead", "does a forward jump"],
    "low": ["hops forward", "does a small jump forward"],
    "high": ["jumps high and forward", "does a big jump forward"],
    "many": ["jumps forward {c}", "does {n} jumps forward", "leaps forward {c}"],
    "many_low": ["hops forward {c}"],
}
_SQUAT = {
    "one": ["squats down", "squats", "does a squat", "squats down and stands back up", "crouches down and stands up again",
            "bends {pos} knees into a squat"],
    "many": ["squats {c}", "does {n} squats", "squats down {c}", "squats down and up {c}"],
}
_KICK = {
    "one": ["kicks with {pos} {s} leg", "kicks {pos} {s} leg forward", "kicks forward with {pos} {s} foot",
            "does a kick with {pos} {s} leg", "kicks with the {s} foot"],
    "high": ["kicks high with {pos} {s} leg", "does a high kick with {pos} {s} leg"],
    "low": ["does a low kick with {pos} {s} leg", "kicks low with {pos} {s} foot"],
    "many": ["kicks {c} with {pos} {s} leg", "kicks {pos} {s} leg forward {c}", "does {n} kicks with {pos} {s} leg"],
}
_WAVE = {
    "any": ["waves {pos} {s} hand", "waves with {pos} {s} hand", "raises {pos} {s} hand and waves", "lifts {pos} {s} hand and waves it"],
    "count": ["waves {pos} {s} hand {c}", "waves {c} with {pos} {s} hand", "waves {c} with the {s} hand"],
}
_RAISE = {
    "one": ["raises {pos} {s} arm", "lifts {pos} {s} arm up", "raises {pos} {s} arm above {pos} head",
            "puts {pos} {s} arm up in the air", "raises {pos} {s} arm and lowers it again", "raises {pos} {s} hand over {pos} head"],
    "both": ["raises both arms", "lifts both arms up", "raises both arms above {pos} head", "puts both hands up in the air",
             "raises {pos} arms over {pos} head", "lifts both hands up and lowers them again"],
    "sideways": ["raises {pos} {s} arm out to the side and up"],
    "forward": ["raises {pos} {s} arm forward and up"],
}
_CLAP = {
    "one": ["claps once", "claps {pos} hands once", "claps {pos} hands together once"],
    "many": ["claps {c}", "claps {pos} hands {c}", "claps {n} times", "claps {pos} hands together {c}"],
    "any": ["claps", "claps {pos} hands", "claps {pos} hands together"],
}
_IDLE = ["stands still", "stands in place", "stands idle", "waits", "stands there", "stays still", "remains standing"]

def _fmt(tpl: str, **kw: str) -> str:
    return tpl.format(**kw)


def segment_phrases(seg: dict, pos: str) -> list[str]:
    """All faithful verb phrases (third person, present) describing one labelled segment."""
    a, p = seg["action"], seg["params"]
    if a == "walk":
        out = list(_WALK[p["speed_band"]])
        if p.get("distance_band") == "short":
            out += ["takes a few steps forward", "walks forward a few steps"]
        if p.get("distance_band") == "long":
            out += ["walks a long way forward"]
        if 2 <= p.get("steps", 0) <= 8 and p["speed_band"] == "normal":
            out += [f"takes {NUM_WORD[p['steps']]} steps forward", f"walks forward {NUM_WORD[p['steps']]} steps"]
        return out
    if a == "run":
        out = list(_RUN[p["speed_band"]])
        if p.get("distance_band") == "long":
            out += ["runs a long way forward" if p["speed_band"] == "run" else "jogs a long way forward"]
        return out
    if a == "walk_backward":
        out = list(_BACK[p["speed_band"]])
        if 2 <= p.get("steps", 0) <= 8 and p["speed_band"] == "normal":
            out += [f"takes {NUM_WORD[p['steps']]} steps backward"]
        if p.get("distance_band") == "short":
            out += ["takes a few steps backward"]
        return out
    if a == "sidestep":
        out = [_fmt(t, d=p["direction"]) for t in _SIDE]
        if 2 <= p.get("steps", 0) <= 8:
            out += [f"takes {NUM_WORD[p['steps']]} steps to the {p['direction']}"]
        return out
    if a == "turn":
        return [_fmt(t, d=p["direction"], angle=ANGLE_WORDS[p["angle_nominal"]], pos=pos) for t in _TURN[p["angle_nominal"]]]
    if a == "spin":
        clock = "counterclockwise" if p["direction"] == "left" else "clockwise"
        return [_fmt(t, d=p["direction"], clock=clock) for t in _SPIN]
    if a == "jump":
        g = _JUMP_FWD if p["forward"] else _JUMP_PLACE
        if p["count"] == 1:
            out = g["any"] + g[p["height_band"]]
        else:
            out = [_fmt(t, c=COUNT_ADV[p["count"]], n=NUM_WORD[p["count"]]) for t in g["many"]]
            if p["height_band"] == "low":
                out += [_fmt(t, c=COUNT_ADV[p["count"]]) for t in g["many_low"]]
        return out
    if a == "squat":
        if p["count"] == 1:
            return [_fmt(t, pos=pos) for t in _SQUAT["one"]]
        return [_fmt(t, c=COUNT_ADV[p["count"]], n=NUM_WORD[p["count"]]) for t in _SQUAT["many"]]
    if a == "kick":
        kw = {"pos": pos, "s": p["side"], "c": COUNT_ADV[p["count"]], "n": NUM_WORD[p["count"]]}
        if p["count"] == 1:
            return [_fmt(t, **kw) for t in _KICK["one"] + _KICK[p["height_band"]]]
        return [_fmt(t, **kw) for t in _KICK["many"]]
    if a == "wave":
        kw = {"pos": pos, "s": p["side"], "c": COUNT_ADV[p["count"]]}
        # count-free paraphrases are faithful too; with several waves keep counts in the majority
        free = _WAVE["any"][:2] if p["count"] > 1 else _WAVE["any"]
        return [_fmt(t, **kw) for t in _WAVE["count"] + free]
    if a == "raise_arm":
        if p["side"] == "both":
            return [_fmt(t, pos=pos) for t in _RAISE["both"]]
        return [_fmt(t, pos=pos, s=p["side"]) for t in _RAISE["one"] + _RAISE[p["plane"]]]
    if a == "clap":
        if p["count"] == 1:
            return [_fmt(t, pos=pos) for t in _CLAP["one"]]
        return [_fmt(t, pos=pos, c=COUNT_ADV[p["count"]], n=NUM_WORD[p["count"]]) for t in _CLAP["many"]]
    if a == "idle":
        return list(_IDLE)
    raise ValueError(f"no caption templates for action {a!r}")


# Context rules for the few ambiguous template words (a function of the text alone, so tagging a
# caption read back from disk gives the same tokens).
_NOUN_AFTER = {"a", "quarter", "half", "full", "slight", "small", "big", "forward", "high", "low"}
_ACTION_NOUNS = {"turn", "jump", "kick", "squat"}


def tag_caption(text: str) -> list[str]:
    """HumanML3D tokens (``lemma/POS``) of a caption: alphabetic words only, lowercase.

    Context rules: ``left``/``right`` are ADJ before a body part, NOUN after a determiner, ADV
    otherwise; ``turn/jump/kick/squat`` are nouns after an article or adjective and their plurals
    after a number; ``steps`` is a noun after a number or "few"; ``fast/high/low/forward`` are
    adjectives before ``pace``/``kick``/``jump``.

    Raises:
        KeyError: for a word missing from :data:`LEXICON` (the template vocabulary test guards this).
    """
    words = re.findall(r"[a-z]+", text.lower())
    nums = set(NUM_WORD.values())
    tokens = []
    for i, word in enumerate(words):
        lemma, pos = LEXICON[word]
        prv = words[i - 1] if i > 0 else ""
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word in ("left", "right"):
            pos = "ADJ" if nxt in BODY_PARTS else ("NOUN" if prv in ("the", "his", "her", "their") else "ADV")
        elif word in _ACTION_NOUNS and prv in _NOUN_AFTER:
            pos = "NOUN"
        elif lemma in _ACTION_NOUNS and word.endswith("s") and prv in nums:
            pos = "NOUN"
        elif word == "steps" and (prv in nums or prv == "few"):
            pos = "NOUN"
        elif word in ("fast", "high", "low", "forward") and nxt in ("pace", "kick", "jump"):
            pos = "ADJ"
        tokens.append(f"{lemma}/{pos}")
    return tokens


def make_captions(segments: list[dict], rng: np.random.Generator, n_captions: int) -> list[tuple[str, list[str]]]:
    """``n_captions`` distinct captions (text, tokens) for a clip's labelled segments.

    Each caption picks a subject, one phrase per segment and connectors independently; duplicates
    are redrawn (a bounded number of times, so very constrained clips may get fewer captions).
    """
    names = [s[0] for s in SUBJECTS]
    weights = np.array([s[2] for s in SUBJECTS])
    weights = weights / weights.sum()
    out: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for _ in range(n_captions * 8):
        if len(out) >= n_captions:
            break
        k = int(rng.choice(len(names), p=weights))
        subj, pos = SUBJECTS[k][0], SUBJECTS[k][1]
        phrases = []
        for seg in segments:
            options = segment_phrases(seg, pos)
            phrases.append(options[int(rng.integers(len(options)))])
        body = phrases[0]
        for ph in phrases[1:]:
            conn = CONNECTORS[int(rng.integers(len(CONNECTORS)))]
            if len(phrases) == 2 and rng.uniform() < 0.15:
                conn = " and "
            body = body + conn + ph
        if len(phrases) > 1 and rng.uniform() < 0.15:
            body = "first " + body
        text = f"{subj} {body}."
        if text in seen:
            continue
        seen.add(text)
        out.append((text, tag_caption(text)))
    return out


def _segment_grid() -> list[dict]:
    """One labelled segment for every combination of caption-relevant parameters."""
    segs: list[dict] = []
    for band in _WALK:
        for dist in ("short", "medium", "long"):
            for steps in range(0, 10):
                segs.append({"action": "walk", "params": {"speed_band": band, "distance_band": dist, "steps": steps}})
                if band in _BACK:
                    segs.append({"action": "walk_backward", "params": {"speed_band": band, "distance_band": dist, "steps": steps}})
    for band in _RUN:
        for dist in ("short", "medium", "long"):
            segs.append({"action": "run", "params": {"speed_band": band, "distance_band": dist}})
    for d in ("left", "right"):
        for steps in range(0, 10):
            segs.append({"action": "sidestep", "params": {"direction": d, "steps": steps}})
        for ang in _TURN:
            segs.append({"action": "turn", "params": {"direction": d, "angle_nominal": ang}})
        segs.append({"action": "spin", "params": {"direction": d}})
        for count in (1, 2, 3):
            for band in ("low", "high"):
                segs.append({"action": "kick", "params": {"side": d, "count": count, "height_band": band}})
        for count in (1, 2, 3, 4):
            segs.append({"action": "wave", "params": {"side": d, "count": count}})
        for plane in ("forward", "sideways"):
            segs.append({"action": "raise_arm", "params": {"side": d, "plane": plane}})
    segs.append({"action": "raise_arm", "params": {"side": "both", "plane": "forward"}})
    for count in (1, 2, 3):
        for band in ("low", "high"):
            for fwd in (False, True):
                segs.append({"action": "jump", "params": {"forward": fwd, "count": count, "height_band": band}})
        segs.append({"action": "squat", "params": {"count": count}})
    for count in range(1, 6):
        segs.append({"action": "clap", "params": {"count": count}})
    segs.append({"action": "idle", "params": {}})
    return segs


def template_vocabulary() -> set[str]:
    """Every word any caption can contain: all phrases of all parameter combinations, subjects,
    possessives and connectors."""
    words: set[str] = set()
    for seg in _segment_grid():
        for _, pos, _w in SUBJECTS:
            for phrase in segment_phrases(seg, pos):
                words.update(re.findall(r"[a-z]+", phrase.lower()))
    for subj, pos, _ in SUBJECTS:
        words.update(subj.split() + [pos])
    for conn in CONNECTORS + (" and ", "first "):
        words.update(re.findall(r"[a-z]+", conn))
    return words
