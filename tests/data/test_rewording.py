"""Rewording test set: captions outside the template vocabulary, faithful to the labels; caption files; CLI.

Faithfulness is read back from the text by :func:`_facts` (head verbs give the actions and their
order, then sides, counts, pace, angle, height words per clause); the hand-written pairs check
that reader on sentences a person would type.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motiongpt.data.synthetic import build_synthetic_dataset
from motiongpt.data.synthetic.captions import NUM_WORD, SUBJECTS as TEMPLATE_SUBJECTS, _segment_grid
from motiongpt.data.synthetic.rewording import (
    ACTION_VERBS,
    ALLOWED_WORDS,
    STYLES,
    SUBJECTS,
    check_outside_templates,
    content_words,
    gerund,
    read_caption_file,
    reworded_caption,
    segment_rewordings,
    write_caption_file,
)

REPO = Path(__file__).resolve().parents[2]
N_CLIPS = 120

HEAD = {verb: action for action, verbs in ACTION_VERBS.items() for verb in verbs}
COUNTS = {"once": 1, "twice": 2} | {f"{w} times": n for n, w in NUM_WORD.items()}
SLOW = {"ambles", "ambling", "saunters", "sauntering", "unhurriedly", "lazily", "relaxed", "gently"}
FAST = {"hastens", "hastening", "swiftly", "rapidly", "rapid", "speedily"}
JOG = {"trots", "trotting", "lopes", "loping"}
ANGLE_45 = {"touch", "partway", "bit", "forty"}
ANGLE_180 = {"opposite", "other", "hundred"}
JUMP_LOW = {"lightly", "gently"}
JUMP_HIGH = {"great", "soars", "soaring", "skyward"}
CAPTION_SHAPE = re.compile(r"[a-z]+(?:,? [a-z]+|\. [a-z]+)*\.")

# A person's own wording of a clip, and what it states (the reader below must get these right).
HANDWRITTEN: list[tuple[str, list[dict]]] = [
    ("a gentleman springs upward twice.", [{"action": "jump", "count": 2, "forward": False}]),
    ("a lady ambles onward, then pivots to the left.",
     [{"action": "walk", "speed": "slow"}, {"action": "turn", "sides": {"left"}, "angle": 90}]),
    ("somebody sprints onward before hunkering three times.",
     [{"action": "run", "speed": "run"}, {"action": "squat", "count": 3}]),
    ("after trotting along, a boy flutters his right palm twice.",
     [{"action": "run", "speed": "jog"}, {"action": "wave", "sides": {"right"}, "count": 2}]),
    ("a guy backpedals lazily. then he applauds four times.",
     [{"action": "walk_backward", "speed": "slow"}, {"action": "clap", "count": 4}]),
    ("an adult hoists each fist overhead, followed by twirling a complete revolution to the right.",
     [{"action": "raise_arm", "sides": {"both"}}, {"action": "spin", "sides": {"right"}}]),
    ("a girl punts at chest height with her left heel, and afterwards edges over to the right.",
     [{"action": "kick", "sides": {"left"}, "height": "high"}, {"action": "sidestep", "sides": {"right"}}]),
    ("the individual swivels a bit toward their right, next the individual bounds onward twice.",
     [{"action": "turn", "sides": {"right"}, "angle": 45}, {"action": "jump", "count": 2, "forward": True}]),
    ("a boy pauses, after that he rotates a hundred and eighty degrees.",
     [{"action": "idle"}, {"action": "turn", "angle": 180}]),
    ("a gentleman hastens onward, then snaps his right shin outward three times, and finally sinks into a deep sit.",
     [{"action": "walk", "speed": "fast"}, {"action": "kick", "sides": {"right"}, "count": 3},
      {"action": "squat"}]),
    ("a lady elevates her right palm overhead. afterwards, she bounces lightly on the spot.",
     [{"action": "raise_arm", "sides": {"right"}}, {"action": "jump", "forward": False, "height": "low"}]),
    ("somebody treads onward, then slaps their palms once.",
     [{"action": "walk", "speed": "normal"}, {"action": "clap", "count": 1}]),
    ("after pirouetting, a guy retreats.", [{"action": "spin"}, {"action": "walk_backward", "speed": "normal"}]),
    ("a girl dips her hips twice before greeting somebody with her left palm.",
     [{"action": "squat", "count": 2}, {"action": "wave", "sides": {"left"}}]),
    ("an individual slides laterally to the left, then soars upward.",
     [{"action": "sidestep", "sides": {"left"}}, {"action": "jump", "forward": False, "height": "high"}]),
]


def _clauses(caption: str) -> list[tuple[str, list[str]]]:
    """(action, words) per clause: a clause starts at a head verb (the words before the first are
    the subject or "after")."""
    out: list[tuple[str, list[str]]] = []
    words = re.findall(r"[a-z]+", caption.lower())
    for i, w in enumerate(words):
        if w in HEAD:
            before = words[i - 1] if i and words[i - 1].endswith("ly") else None  # "lazily backpedals"
            if before and out and out[-1][1][-1] == before:
                out[-1][1].pop()
            out.append((HEAD[w], [w] + ([before] if before else [])))
        elif out:
            out[-1][1].append(w)
    return out


def _facts(caption: str) -> list[dict]:
    """What each clause of a reworded caption states, in order."""
    out = []
    for action, words in _clauses(caption):
        text, ws = " ".join(words), set(words)
        f: dict = {"action": action}
        sides = ws & {"left", "right"} | ({"both"} if action == "raise_arm" and "each" in ws else set())
        if sides:
            f["sides"] = sides
        counts = [n for phrase, n in COUNTS.items() if re.search(rf"\b{phrase}\b", text)]
        if counts:
            f["count"] = counts[0] if len(counts) == 1 else counts
        if action in ("walk", "walk_backward"):
            f["speed"] = "slow" if ws & SLOW else "fast" if ws & FAST else "normal"
        elif action == "run":
            f["speed"] = "jog" if ws & JOG else "run"
        elif action == "turn":
            f["angle"] = 45 if ws & ANGLE_45 else 180 if ws & ANGLE_180 else 90
        elif action == "jump":
            f["forward"] = "onward" in ws
            if ws & (JUMP_LOW | JUMP_HIGH):
                f["height"] = "low" if ws & JUMP_LOW else "high"
        elif action == "kick" and ws & {"chest", "floor"}:
            f["height"] = "high" if "chest" in ws else "low"
        out.append(f)
    return out


def _faithful(seg: dict, f: dict) -> list[str]:
    """What a clause's facts ``f`` get wrong about the labelled segment ``seg`` (empty: faithful)."""
    a, p = seg["action"], seg["params"]
    bad = []
    if f["action"] != a:
        return [f"action {f['action']} for {a}"]
    sides = f.get("sides", set())
    side = p.get("side") or p.get("direction")
    stated_side = a in ("sidestep", "kick", "wave", "raise_arm") or (a == "turn" and p["angle_nominal"] != 180)
    if (stated_side and sides != {side}) or not sides <= {side}:
        bad.append(f"sides {sides} for {side}")
    count = p.get("count", 1) if a in ("jump", "squat", "kick", "wave", "clap") else None
    if f.get("count", 1 if count == 1 else None) != count:
        bad.append(f"count {f.get('count')} for {count}")
    if a in ("walk", "walk_backward", "run") and f["speed"] != p["speed_band"]:
        bad.append(f"speed {f['speed']} for {p['speed_band']}")
    if a == "turn" and f["angle"] != p["angle_nominal"]:
        bad.append(f"angle {f['angle']} for {p['angle_nominal']}")
    if a == "jump" and f["forward"] != p["forward"]:
        bad.append(f"forward {f['forward']} for {p['forward']}")
    if a in ("jump", "kick") and f.get("height", p["height_band"]) != p["height_band"]:
        bad.append(f"height {f['height']} for {p['height_band']}")
    return bad


def _check_caption(caption: str, label: dict) -> None:
    check_outside_templates(caption)
    assert CAPTION_SHAPE.fullmatch(caption), caption
    facts = _facts(caption)
    assert [f["action"] for f in facts] == [s["action"] for s in label["segments"]], caption  # order
    for seg, f in zip(label["segments"], facts):
        assert not _faithful(seg, f), (caption, _faithful(seg, f))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reword") / "corpus"
    build_synthetic_dataset(out, N_CLIPS, seed=5, workers=1)
    return out


def test_handwritten_pairs_read_back() -> None:
    for caption, expected in HANDWRITTEN:
        check_outside_templates(caption)
        facts = _facts(caption)
        assert len(facts) == len(expected), caption
        for f, e in zip(facts, expected):
            assert {k: f.get(k) for k in e} == e, caption
            assert not ({"sides", "count", "height"} & f.keys()) - e.keys(), caption  # nothing more is read


def test_every_phrasing_of_every_segment_is_outside_the_templates_and_faithful() -> None:
    heads = [verb for verbs in ACTION_VERBS.values() for verb in verbs]
    assert len(heads) == len(set(heads))  # no verb heads clauses of two actions
    n = 0
    for seg in _segment_grid():
        label = {"id": "grid", "segments": [seg]}
        for subject, pos, _ in SUBJECTS:
            phrases = segment_rewordings(seg, pos)
            assert len(phrases) >= 2, seg  # never one fixed phrasing
            for phrase in phrases:
                _check_caption(f"{subject} {phrase}.", label)
                _check_caption(f"after {gerund(phrase)}, {subject} pauses.",
                               {"segments": [seg, {"action": "idle", "params": {}}]})
                n += 1
    assert n > 5000


def test_corpus_captions_both_styles(corpus: Path) -> None:
    ids = (corpus / "all.txt").read_text().split()
    labels = {i: json.loads((corpus / "labels" / f"{i}.json").read_text()) for i in ids}
    texts = {}
    for style in STYLES:
        path = corpus.parent / f"{style}.txt"
        assert write_caption_file(corpus, "all", style, path, seed=1) == N_CLIPS
        pairs = read_caption_file(path)
        assert [i for i, _ in pairs] == ids
        for clip, caption in pairs:
            _check_caption(caption, labels[clip])
        texts[style] = dict(pairs)
    multi = [i for i in ids if len(labels[i]["segments"]) > 1]
    assert len(multi) > 40
    # synonyms: the template connector only; connectors: the same clauses, other joins, mostly
    assert all(texts["synonyms"][i].count(", then ") == len(labels[i]["segments"]) - 1 for i in ids)
    for i in ids:
        verbs = [w[0] for _, w in _clauses(texts["synonyms"][i])]
        assert [gerund(v) for v in verbs] == [gerund(w[0]) for _, w in _clauses(texts["connectors"][i])]
    joins = {j for j in (", after that", ", and afterwards", ", next", ". then", ". next,", ". after that,",
                         ". afterwards,", ", followed by", " before ", ", and finally") for i in multi
             if j in texts["connectors"][i]}
    assert len(joins) >= 8, joins
    assert sum(texts["connectors"][i].startswith("after ") for i in multi) >= 5
    assert sum(", then " not in texts["connectors"][i] for i in multi) == len(multi)
    # sentence shape varies: subjects, and several phrasings of each action
    subjects = {next(s for s, _, _ in SUBJECTS if re.search(rf"\b{s}\b", t)) for t in texts["synonyms"].values()}
    assert len(subjects) >= 6
    first_verbs: dict[str, set[str]] = {}
    for t in texts["synonyms"].values():
        for action, words in _clauses(t):
            first_verbs.setdefault(action, set()).add(" ".join(words))
    assert all(len(v) >= 3 for a, v in first_verbs.items() if a != "spin"), first_verbs
    # nothing a template subject or connector would give away
    assert not any(s for s, _, _ in TEMPLATE_SUBJECTS if any(t.startswith(s + " ") for t in texts["synonyms"].values()))


def test_caption_file_is_deterministic_and_prefix_stable(corpus: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    write_caption_file(corpus, "test", "connectors", a, seed=3)
    write_caption_file(corpus, "test", "connectors", b, seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert write_caption_file(corpus, "test", "connectors", c, seed=3, max_clips=2) == 2
    assert c.read_text().splitlines() == a.read_text().splitlines()[:2]
    write_caption_file(corpus, "test", "connectors", b, seed=4)
    assert a.read_bytes() != b.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind
    with pytest.raises(ValueError, match="style must be one of"):
        write_caption_file(corpus, "test", "slang", a)
    with pytest.raises(ValueError, match="max_clips"):
        write_caption_file(corpus, "test", "synonyms", a, max_clips=0)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        write_caption_file(corpus, "nope", "synonyms", a)


def test_vocabulary_check_names_the_words() -> None:
    assert content_words("A gentleman springs upward twice, then pivots to the left.") == {
        "gentleman", "springs", "upward", "pivots"}
    assert {"left", "right", "twice", "the", "then"} <= ALLOWED_WORDS
    check_outside_templates("a gentleman springs upward twice.")
    with pytest.raises(ValueError, match=r"jumps, man: 'a man jumps twice\.'"):
        check_outside_templates("a man jumps twice.")
    with pytest.raises(ValueError, match=r"jumping \(from jump"):  # inflections are template wording too
        check_outside_templates("somebody keeps jumping.")
    with pytest.raises(ValueError, match="style must be one of"):
        reworded_caption({"segments": [{"action": "idle", "params": {}}]}, np.random.default_rng(0), "slang")
    with pytest.raises(ValueError, match="label S9 has no segments"):
        reworded_caption({"id": "S9", "segments": []}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="label S9: segment 'dance'"):
        reworded_caption({"id": "S9", "segments": [{"action": "dance", "params": {}}]}, np.random.default_rng(0))


@pytest.mark.parametrize("text, message", [
    ("S000001 a gentleman pauses.\n", "line 1: expected '<clip id>#<caption>'"),
    ("S000001#a gentleman pauses.\n\nS000002#  \n", "line 3: empty caption for clip S000002"),
    ("#a gentleman pauses.\n", "line 1: empty clip id"),
    ("S000001#a gentleman pauses.\nS000001#a lady pauses.\n",
     "line 2: clip S000001 listed twice \\(first on line 1\\)"),
    ("\n\n", "no captions"),
])
def test_read_caption_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "caps.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: {message}"):
        read_caption_file(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_caption_file(tmp_path / "missing.txt")


def test_read_caption_file_keeps_ids_with_hash(tmp_path: Path) -> None:
    path = tmp_path / "caps.txt"
    path.write_text("012314#0.0#3.5#a gentleman pauses.\r\n\nS000002 # a lady ambles onward. \n")
    assert read_caption_file(path) == [("012314#0.0#3.5", "a gentleman pauses."), ("S000002", "a lady ambles onward.")]


def test_cli(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "rw" / "test_synonyms.txt"
    cmd = [sys.executable, str(REPO / "scripts" / "make_rewordings.py"), "--data_root", str(corpus),
           "--style", "synonyms", "--out", str(out), "--max_clips", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(read_caption_file(out)) == 3 and "wrote 3 captions" in proc.stdout
    proc = subprocess.run(cmd[:-2] + ["--split", "nope"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: split file") and proc.stderr.count("\n") == 1
