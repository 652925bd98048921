"""Captions worded outside the caption templates: a test set for how the model reads a user's own sentence.

The corpus captions (:mod:`motiongpt.data.synthetic.captions`) use 128 words
(:func:`~motiongpt.data.synthetic.captions.template_vocabulary`); a model trained on them may have
learnt those words rather than what they mean. :func:`reworded_caption` writes a caption for a
clip from its **label**, faithful to it (the same actions in the same order, sides, counts,
speed, direction, turn angle, jump height where stated), in everyday English whose words are
*not* template words, except the few in :data:`ALLOWED_WORDS`: function words (articles,
possessives, prepositions, "and", "then") and the words that carry an exact fact no synonym
states as well ("left", "right", number and count words, "degrees"). "a man jumps twice"
becomes e.g. "a gentleman springs upward twice"; "walks forward slowly" becomes "ambles onward".
Inflections of template words count as template words too ("jumping", "steps", "knee"), so
the test is about new wording, not new endings.

Two styles:

* ``"synonyms"``: the clauses joined with the template connector ", then ";
* ``"connectors"``: the same clauses (the same random draws) joined with other everyday
  connectors ("after that", "afterwards", "next", ", followed by" + gerund, "and finally",
  sentence breaks ". then he ...", "X before Ying", "after Ying, X"). Every connector keeps the
  text order equal to the order of the actions, so the order stays recoverable. A one-action
  clip reads the same in both styles.

Each action has several phrasings (verbs, adverbs before or after the verb, with or without
the optional facts), so the set is not one fixed template either. The clauses' head verbs are
unique to their action (:data:`ACTION_VERBS`), which lets a test read the order back.

Files: :func:`write_caption_file` writes one ``<clip id>#<caption>`` line per clip of a split
(HumanML3D's ``id#caption`` shape; CLI ``scripts/make_rewordings.py``), read back by
:func:`read_caption_file`, and ``eval.py --captions FILE`` scores text-to-motion from them.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from motiongpt.data.synthetic.captions import COUNT_ADV, NUM_WORD, template_vocabulary
from motiongpt.utils.atomic import atomic_write_text
from motiongpt.utils.files import read_json

__all__ = [
    "ALLOWED_WORDS",
    "ACTION_VERBS",
    "STYLES",
    "SUBJECTS",
    "segment_rewordings",
    "gerund",
    "reworded_caption",
    "content_words",
    "check_outside_templates",
    "write_caption_file",
    "read_caption_file",
]

STYLES: tuple[str, ...] = ("synonyms", "connectors")
"""Caption styles of :func:`reworded_caption`."""

ALLOWED_WORDS: frozenset[str] = frozenset(
    "a an the his her their it them he she and then to in into at with over above of "
    "left right once twice times degrees "
    "one two three four five six seven eight nine ten forty ninety eighty hundred".split()
)
"""Words a reworded caption may share with the templates: function words, and the words that
state an exact fact (side, count, angle) that a synonym would blur."""

# (subject, possessive, the subject again after a sentence break)
SUBJECTS: tuple[tuple[str, str, str], ...] = (
    ("a gentleman", "his", "he"),
    ("a lady", "her", "she"),
    ("an individual", "their", "the individual"),
    ("somebody", "their", "that individual"),
    ("a guy", "his", "he"),
    ("a girl", "her", "she"),
    ("a boy", "his", "he"),
    ("the individual", "their", "the individual"),
    ("an adult", "their", "the adult"),
)

# Finite head verb -> gerund, per action. Head verbs are unique to their action (the order of a
# caption's actions is the order of its head verbs); _OTHER_VERBS are the verbs that never head
# a clause.
_HEADS: dict[str, dict[str, str]] = {
    "walk": {"ambles": "ambling", "saunters": "sauntering", "treads": "treading", "advances": "advancing",
             "proceeds": "proceeding", "marches": "marching", "hastens": "hastening", "covers": "covering"},
    "run": {"trots": "trotting", "lopes": "loping", "sprints": "sprinting", "dashes": "dashing",
            "races": "racing"},
    "walk_backward": {"retreats": "retreating", "backpedals": "backpedaling", "reverses": "reversing"},
    "sidestep": {"edges": "edging", "slides": "sliding", "shifts": "shifting", "scoots": "scooting"},
    "turn": {"pivots": "pivoting", "swivels": "swiveling", "rotates": "rotating"},
    "spin": {"twirls": "twirling", "whirls": "whirling", "pirouettes": "pirouetting"},
    "jump": {"springs": "springing", "bounces": "bouncing", "bounds": "bounding", "soars": "soaring"},
    "squat": {"hunkers": "hunkering", "sinks": "sinking", "dips": "dipping", "drops": "dropping"},
    "kick": {"punts": "punting", "snaps": "snapping", "thrusts": "thrusting", "strikes": "striking"},
    "wave": {"flutters": "fluttering", "signals": "signaling", "greets": "greeting", "gestures": "gesturing"},
    "raise_arm": {"hoists": "hoisting", "elevates": "elevating", "reaches": "reaching", "stretches": "stretching",
                  "swings": "swinging"},
    "clap": {"applauds": "applauding", "slaps": "slapping", "smacks": "smacking", "brings": "bringing"},
    "idle": {"pauses": "pausing", "lingers": "lingering", "rests": "resting", "freezes": "freezing"},
}
_OTHER_VERBS: dict[str, str] = {"rises": "rising"}
_GERUND: dict[str, str] = {f: g for heads in _HEADS.values() for f, g in heads.items()} | _OTHER_VERBS

ACTION_VERBS: dict[str, frozenset[str]] = {a: frozenset(h) | frozenset(h.values()) for a, h in _HEADS.items()}
"""Per action family, the head verbs of its clauses (finite and gerund): no two families share one."""

# ============================================================================ phrasings
# Placeholders: {pos} possessive, {s} side, {d} direction, {n} number word, {c} count adverb.

_WALK = {
    "slow": ["ambles onward", "saunters onward", "ambles onward unhurriedly", "unhurriedly treads onward",
             "treads onward at a relaxed tempo", "lazily saunters onward", "advances gently"],
    "normal": ["treads onward", "advances", "proceeds onward", "marches onward", "advances at an even tempo",
               "proceeds at an ordinary tempo"],
    "fast": ["hastens onward", "marches swiftly onward", "rapidly advances", "treads onward swiftly",
             "advances at a rapid tempo", "speedily proceeds onward"],
}
_WALK_SHORT = {"slow": "ambles a short distance", "normal": "advances a short distance",
               "fast": "hastens a short distance"}
_WALK_LONG = {"slow": "ambles a great distance", "normal": "treads onward a considerable distance",
              "fast": "hastens a considerable distance"}
_RUN = {
    "jog": ["trots onward", "lopes onward", "trots along", "lopes along at an easy tempo",
            "trots onward at an easy tempo"],
    "run": ["sprints onward", "dashes onward", "races onward", "sprints", "dashes onward at top speed"],
}
_RUN_LONG = {"jog": "trots a great distance", "run": "sprints a considerable distance"}
_BACK = {
    "slow": ["retreats unhurriedly", "lazily backpedals", "backpedals gently", "retreats at a relaxed tempo",
             "unhurriedly reverses"],
    "normal": ["retreats", "backpedals", "reverses", "backpedals at an even tempo"],
}
_SIDE = ["edges over to the {d}", "slides laterally to the {d}", "shifts laterally toward the {d}",
         "scoots over to the {d}", "edges toward {pos} {d}", "slides over toward the {d}"]
_TURN = {
    45: ["pivots a touch to the {d}", "swivels partway to the {d}", "rotates a bit toward the {d}",
         "pivots forty five degrees to the {d}", "swivels a bit toward {pos} {d}"],
    90: ["pivots to the {d}", "swivels to face the {d}", "rotates ninety degrees toward the {d}",
         "pivots toward {pos} {d}", "swivels ninety degrees to the {d}"],
    180: ["pivots to face the opposite direction", "swivels to face the other direction",
          "rotates a hundred and eighty degrees", "pivots over {pos} {d} shoulder to face the opposite direction",
          "rotates a hundred and eighty degrees to the {d}"],
}
_SPIN = ["twirls a complete revolution", "whirls through a complete rotation", "pirouettes",
         "twirls a complete revolution to the {d}", "whirls through a complete rotation toward the {d}",
         "pirouettes to the {d}"]
_SPIN_LEFT = ["twirls anticlockwise"]
_JUMP_PLACE = {
    "any": ["springs upward", "springs on the spot", "bounces on the spot", "springs off the floor"],
    "low": ["bounces lightly on the spot", "springs gently upward"],
    "high": ["springs to a great height", "soars upward", "springs skyward with great force"],
    "many": ["springs {c}", "bounces {c} on the spot", "springs upward {c}", "bounces on the spot {c}"],
    "many_low": ["bounces lightly {c}"],
}
_JUMP_FWD = {
    "any": ["bounds onward", "springs onward", "bounds onward off the floor"],
    "low": ["bounds lightly onward", "springs gently onward"],
    "high": ["bounds onward to a great height", "soars onward"],
    "many": ["bounds onward {c}", "springs onward {c}"],
    "many_low": ["bounds lightly onward {c}"],
}
_SQUAT = {
    "one": ["hunkers and rises", "sinks into a deep sit and rises", "drops {pos} hips toward the floor and rises",
            "dips {pos} hips and rises", "hunkers"],
    "many": ["hunkers and rises {c}", "sinks into a deep sit {c}", "dips {pos} hips {c}",
             "drops {pos} hips toward the floor {c}"],
}
_KICK = {
    "one": ["punts with {pos} {s} heel", "snaps {pos} {s} shin outward", "thrusts {pos} {s} heel outward",
            "strikes with the {s} heel"],
    "high": ["punts at chest height with {pos} {s} heel", "snaps {pos} {s} shin outward at chest height"],
    "low": ["punts close to the floor with {pos} {s} heel", "snaps {pos} {s} shin outward near the floor"],
    "many": ["punts {c} with {pos} {s} heel", "snaps {pos} {s} shin outward {c}",
             "thrusts {pos} {s} heel outward {c}"],
}
_WAVE = {
    "count": ["flutters {pos} {s} palm {c}", "signals {c} with {pos} {s} palm",
              "greets somebody {c} with the {s} palm"],
    "free": ["signals with {pos} {s} palm", "gestures hello with {pos} {s} palm",
             "greets somebody with {pos} {s} palm"],
}
_RAISE = {
    "one": ["hoists {pos} {s} fist overhead", "elevates {pos} {s} palm overhead", "reaches skyward with {pos} {s} palm",
            "stretches {pos} {s} fist toward the ceiling", "hoists the {s} fist toward the sky"],
    "both": ["hoists each fist overhead", "elevates each palm overhead", "reaches skyward with each palm",
             "stretches each fist toward the ceiling"],
    "sideways": ["swings {pos} {s} fist outward and overhead"],
    "forward": ["swings {pos} {s} fist frontward and overhead"],
}
_CLAP = {
    "one": ["applauds once", "slaps {pos} palms once", "smacks {pos} palms once", "applauds"],
    "many": ["applauds {c}", "slaps {pos} palms {c}", "smacks {pos} palms {c}",
             "brings {pos} palms sharply against each other {c}"],
}
_IDLE = ["pauses", "lingers motionless", "rests motionless for a moment", "freezes for a moment", "pauses motionless"]


def _fill(templates: list[str], **kw: str) -> list[str]:
    return [t.format(**kw) for t in templates]


def _jump_rewordings(p: dict) -> list[str]:
    g = _JUMP_FWD if p["forward"] else _JUMP_PLACE
    if p["count"] == 1:
        return g["any"] + g[p["height_band"]]
    c = COUNT_ADV[p["count"]]
    return _fill(g["many"] + (g["many_low"] if p["height_band"] == "low" else []), c=c)


def segment_rewordings(seg: dict, pos: str) -> list[str]:
    """All faithful reworded verb phrases (third person, present) of one labelled segment.

    The counterpart of :func:`~motiongpt.data.synthetic.captions.segment_phrases`, field for
    field: walk speed band (slow / fast always worded, normal never), distance band (short and
    long sometimes), step counts 2-8 of a normal walk or backward walk and of sidesteps; jog vs
    run; sidestep direction; turn angle band and direction (180: direction optional); spin
    (direction optional); jump count, forward, height band (optional); squat and clap counts;
    kick side, count, height band (single kicks, optional); wave side (count always when > 1);
    raised arm side (left / right / both) and plane (optional).

    Raises:
        ValueError: for an action with no phrasings.
    """
    a, p = seg["action"], seg["params"]
    steps = int(p.get("steps", 0))
    if a == "walk":
        band = p["speed_band"]
        out = list(_WALK[band])
        if p.get("distance_band") == "short":
            out.append(_WALK_SHORT[band])
        if p.get("distance_band") == "long":
            out.append(_WALK_LONG[band])
        if 2 <= steps <= 8 and band == "normal":
            out += [f"covers {NUM_WORD[steps]} strides", f"advances {NUM_WORD[steps]} strides"]
        return out
    if a == "run":
        out = list(_RUN[p["speed_band"]])
        if p.get("distance_band") == "long":
            out.append(_RUN_LONG[p["speed_band"]])
        return out
    if a == "walk_backward":
        out = list(_BACK[p["speed_band"]])
        if p["speed_band"] == "normal":
            if 2 <= steps <= 8:
                out += [f"retreats {NUM_WORD[steps]} strides", f"backpedals {NUM_WORD[steps]} strides"]
            if p.get("distance_band") == "short":
                out.append("retreats a short distance")
        return out
    if a == "sidestep":
        out = _fill(_SIDE, d=p["direction"], pos=pos)
        if 2 <= steps <= 8:
            out.append(f"edges {NUM_WORD[steps]} strides to the {p['direction']}")
        return out
    if a == "turn":
        return _fill(_TURN[int(p["angle_nominal"])], d=p["direction"], pos=pos)
    if a == "spin":
        return _fill(_SPIN + (_SPIN_LEFT if p["direction"] == "left" else []), d=p["direction"])
    if a == "jump":
        return _jump_rewordings(p)
    if a == "squat":
        return _fill(_SQUAT["one"] if p["count"] == 1 else _SQUAT["many"], pos=pos, c=COUNT_ADV[p["count"]])
    if a == "kick":
        kw = {"pos": pos, "s": p["side"], "c": COUNT_ADV[p["count"]]}
        if p["count"] == 1:
            return _fill(_KICK["one"] + _KICK[p["height_band"]], **kw)
        return _fill(_KICK["many"], **kw)
    if a == "wave":
        kw = {"pos": pos, "s": p["side"], "c": COUNT_ADV[p["count"]]}
        return _fill(_WAVE["count"] + (_WAVE["free"] if p["count"] == 1 else []), **kw)
    if a == "raise_arm":
        if p["side"] == "both":
            return list(_RAISE["both"])
        return _fill(_RAISE["one"] + _RAISE[p["plane"]], pos=pos, s=p["side"])
    if a == "clap":
        return _fill(_CLAP["one"] if p["count"] == 1 else _CLAP["many"], pos=pos, c=COUNT_ADV[p["count"]])
    if a == "idle":
        return list(_IDLE)
    raise ValueError(f"no reworded phrasings for action {a!r}")


def gerund(phrase: str) -> str:
    """``phrase`` with its verbs as gerunds ("ambles onward" -> "ambling onward"), for
    "followed by ...", "before ..." and "after ..., X"."""
    return " ".join(_GERUND.get(w, w) for w in phrase.split())


# ============================================================================ whole captions
# Joins of a later clause: {p} the subject again, {c} the finite clause, {g} its gerund form.
_JOINS: dict[str, str] = {
    "after that": ", after that {c}",
    "after that he": ", after that {p} {c}",
    "afterwards": ", and afterwards {c}",
    "next": ", next {p} {c}",
    "break then": ". then {p} {c}",
    "break next": ". next, {p} {c}",
    "break after that": ". after that, {p} {c}",
    "break afterwards": ". afterwards, {p} {c}",
    "followed by": ", followed by {g}",
    "before": " before {g}",
    "and finally": ", and finally {c}",
}
_GERUND_JOINS = frozenset({"followed by", "before"})
_FRONTED_AFTER = 0.25  # share of connector captions opening "after Ying, <subject> X"


def _join_word(name: str) -> str:
    """The connector word(s) of a join ("break after that" and "after that he": "after that")."""
    return name.removeprefix("break ").removesuffix(" he")


def _connect(subject: str, again: str, clauses: list[str], rng: np.random.Generator) -> str:
    """The connectors style: clauses in order, joined by everyday connectors."""
    if len(clauses) > 1 and rng.uniform() < _FRONTED_AFTER:
        text, start = f"after {gerund(clauses[0])}, {subject} {clauses[1]}", 2
    else:
        text, start = f"{subject} {clauses[0]}", 1
    prev = ""
    for i in range(start, len(clauses)):
        names = [n for n in _JOINS if not (n == "and finally" and i < len(clauses) - 1)
                 and not (n in _GERUND_JOINS and prev in _GERUND_JOINS)  # "X before Y followed by Z": unclear
                 and _join_word(n) != _join_word(prev)]  # not "after that ..., after that ..."
        prev = names[int(rng.integers(len(names)))]
        text += _JOINS[prev].format(p=again, c=clauses[i], g=gerund(clauses[i]))
    return text + "."


def reworded_caption(label: dict, rng: np.random.Generator, style: str = "synonyms") -> str:
    """A caption of a labelled clip worded outside the templates (module docstring).

    The subject and one phrasing per segment are drawn first, then (``"connectors"``) the
    connectors, so both styles with the same ``rng`` state describe a clip with the same clauses.

    Args:
        label: the clip's ``labels/<id>.json`` content (its ``segments`` are read).
        rng: the random source of the phrasings.
        style: one of :data:`STYLES`.

    Returns:
        Lowercase words, commas, full stops; ends with ".".

    Raises:
        ValueError: for an unknown style, or naming the label for a label without segments or
            with an unknown action.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    segs = label.get("segments") if isinstance(label, dict) else None
    name = label.get("id", "?") if isinstance(label, dict) else repr(label)
    if not segs:
        raise ValueError(f"label {name} has no segments")
    subject, pos, again = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
    clauses = []
    for seg in segs:
        try:
            options = segment_rewordings(seg, pos)
        except (KeyError, ValueError) as e:
            raise ValueError(f"label {name}: segment {seg.get('action')!r}: {e}") from e
        clauses.append(options[int(rng.integers(len(options)))])
    if style == "synonyms":
        return f"{subject} {', then '.join(clauses)}."
    return _connect(subject, again, clauses, rng)


# ============================================================================ vocabulary check


def _stems(word: str) -> set[str]:
    """``word`` and the bases it may inflect ("jumping" -> jump, "steps" -> step, "crouches" -> crouch)."""
    out = {word}
    if word.endswith("s") and len(word) > 3:
        out.add(word[:-1])
    if word.endswith("es") and len(word) > 4:
        out.add(word[:-2])
    if word.endswith("ies") and len(word) > 4:
        out.add(word[:-3] + "y")
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            base = word[: -len(suffix)]
            out.update({base, base + "e"})
            if len(base) > 2 and base[-1] == base[-2]:  # stepping -> step
                out.add(base[:-1])
    return out


@lru_cache(maxsize=1)
def _template_stems() -> dict[str, str]:
    """Stem -> the template word it comes from, for every template word outside ALLOWED_WORDS."""
    out: dict[str, str] = {}
    for word in sorted(template_vocabulary() - ALLOWED_WORDS):
        for stem in _stems(word):
            out.setdefault(stem, word)
    return out


def content_words(caption: str) -> set[str]:
    """The words of ``caption`` (lowercased, alphabetic runs) that are not in :data:`ALLOWED_WORDS`."""
    return set(re.findall(r"[a-z]+", caption.lower())) - ALLOWED_WORDS


def check_outside_templates(caption: str) -> None:
    """Raise ``ValueError`` naming the words of ``caption`` that are template words (or an
    inflection of one: "jumping", "step") outside :data:`ALLOWED_WORDS`."""
    stems = _template_stems()
    found = {w: stems.get(w) or stems[min(_stems(w) & stems.keys())] for w in content_words(caption)
             if _stems(w) & stems.keys()}
    if found:
        shown = ", ".join(w if src == w else f"{w} (from {src})" for w, src in sorted(found.items()))
        raise ValueError(f"caption uses template words: {shown}: {caption!r}")


# ============================================================================ files


def _read_label(root: Path, clip: str) -> dict:
    return read_json(root / "labels" / f"{clip}.json",
                     what=f"label of clip {clip} (labels come with the synthetic corpus)")


def write_caption_file(data_root: str | os.PathLike, split: str, style: str, out_path: str | os.PathLike,
                       seed: int = 0, max_clips: int | None = None) -> int:
    """Write one ``<clip id>#<caption>`` line per clip of ``split`` (file order), atomically.

    Clip ``i`` of the split draws from ``numpy.random.default_rng([seed, i])`` whatever the
    style, so the two styles of one seed reword each clip with the same clauses, and
    ``max_clips`` keeps the first lines of the full file.

    Args:
        data_root: the synthetic corpus (``<split>.txt`` and ``labels/``).
        split: ``test``, ``val``, ``train``, ...
        style: one of :data:`STYLES`.
        out_path: the caption file.
        seed: the phrasings' seed.
        max_clips: only the first N clips of the split; None: all.

    Returns:
        The number of lines written.

    Raises:
        FileNotFoundError: naming a missing split file or label.
        ValueError: for a bad style / max_clips / seed, an empty split, a label that does not
            parse (naming it), or a caption that uses a template word (a bug of the phrasings).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if max_clips is not None and (isinstance(max_clips, bool) or not isinstance(max_clips, int) or max_clips < 1):
        raise ValueError(f"max_clips must be a positive integer or None, got {max_clips!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    root = Path(data_root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"split file {split_file} not found (is {root} a synthetic corpus?)")
    clips = split_file.read_text(encoding="utf-8").split()
    if not clips:
        raise ValueError(f"split file {split_file} lists no clips")
    lines = []
    for i, clip in enumerate(clips[:max_clips]):
        caption = reworded_caption(_read_label(root, clip), np.random.default_rng([seed, i]), style)
        check_outside_templates(caption)
        lines.append(f"{clip}#{caption}")
    atomic_write_text(out_path, "\n".join(lines) + "\n")
    return len(lines)


def read_caption_file(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``(clip id, caption)`` pairs of a caption file, in file order.

    Lines are ``<clip id>#<caption>``, split at the last ``#`` (HumanML3D sub-clip ids contain
    ``#``; a caption may not); blank lines are skipped.

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: naming the file and line for a line without ``#``, an empty id or caption,
            a clip listed twice, or a file with no caption at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"caption file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from e
    out: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if "#" not in line:
            raise ValueError(f"{path}: line {n}: expected '<clip id>#<caption>', got {line[:60]!r}")
        clip, _, caption = (s.strip() for s in line.rpartition("#"))
        if not clip:
            raise ValueError(f"{path}: line {n}: empty clip id")
        if not caption:
            raise ValueError(f"{path}: line {n}: empty caption for clip {clip}")
        if clip in first_line:
            raise ValueError(f"{path}: line {n}: clip {clip} listed twice (first on line {first_line[clip]})")
        first_line[clip] = n
        out.append((clip, caption))
    if not out:
        raise ValueError(f"{path}: no captions")
    return out
