"""Character-level text corpora: tiny Shakespeare (a file, a cache, a download) and an embedded
corpus that ships with Python itself (always offline).

Every loader returns a :class:`CharCorpus`: the text, its character vocabulary, the usual
90/10 train/val split of the encoded text (val doubles as the test split: the held-out tail of
the corpus), and labelled segments for fine-tuning (speech → speaker for Shakespeare,
paragraph → section for the embedded corpus).

Where tiny Shakespeare is looked for, in order (the first that exists wins):

1. ``path`` when given (``data.path=...``): a file, or a folder holding ``tinyshakespeare.txt``;
2. ``$GENMODELS_SHAKESPEARE``;
3. ``data/tinyshakespeare.txt`` and ``../shared/data/tinyshakespeare.txt`` under the current
   folder;
4. ``<cache_dir>/tinyshakespeare.txt`` (default ``~/.cache/genmodels``, or ``$GENMODELS_CACHE``);
5. a download of the canonical 1,115,394-byte file (karpathy/char-rnn) into the cache, when
   ``download`` is true. Offline, this step fails with :class:`DatasetNotFoundError`, whose
   message says where to put the file.

Training windows are a pure function of ``(seed, step)`` (:func:`random_windows`), so a resumed
run draws exactly the windows an uninterrupted one would.
"""

from __future__ import annotations

import os
import re
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genmodels.errors import DatasetNotFoundError

__all__ = ["CharCorpus", "load_shakespeare", "load_embedded_corpus", "load_text_file",
           "random_windows", "fixed_windows", "windows", "shakespeare_speeches", "embedded_documents",
           "SHAKESPEARE_URL", "SHAKESPEARE_BYTES", "SHAKESPEARE_FILE", "default_cache_dir",
           "DatasetNotFoundError"]

SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                   "tinyshakespeare/input.txt")
SHAKESPEARE_FILE = "tinyshakespeare.txt"
SHAKESPEARE_BYTES = 1_115_394


def default_cache_dir() -> Path:
    return Path(os.environ.get("GENMODELS_CACHE", Path.home() / ".cache" / "genmodels"))


# ------------------------------------------------------------------------------ the corpus
@dataclass
class CharCorpus:
    """A text, its character vocabulary and the 90/10 split of its encoding.

    ``chars`` is the sorted list of distinct characters; id ``i`` is ``chars[i]``.
    ``train``/``val`` are int64 tensors of ids: the first ``1 - val_fraction`` of the text and
    the rest (nanoGPT's split). ``segments`` is a list of ``(label, text)`` pairs for
    classification (fine-tuning, eq. 2.29).
    """
    name: str
    text: str
    chars: list[str]
    train: torch.Tensor
    val: torch.Tensor
    segments: list[tuple[str, str]] = field(default_factory=list, repr=False)
    source: str = ""

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def stoi(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, s: str) -> torch.Tensor:
        """``str -> [len(s)]`` int64 ids; a character outside the vocabulary raises ValueError."""
        stoi = self.stoi
        missing = sorted({c for c in s if c not in stoi})
        if missing:
            raise ValueError(f"s: characters {missing!r} are not in the {self.name} vocabulary")
        return torch.tensor([stoi[c] for c in s], dtype=torch.long)

    def decode(self, ids) -> str:
        return decode(self.chars, ids)

    def split(self, name: str) -> torch.Tensor:
        """``train`` or ``val``; ``test`` is the held-out ``val`` tail as well (the usual
        two-way split of tiny Shakespeare)."""
        if name == "train":
            return self.train
        if name in ("val", "test"):
            return self.val
        raise ValueError(f"split: must be 'train', 'val' or 'test', got {name!r}")


def decode(chars: list[str], ids) -> str:
    """Ids (a tensor or a list) back to text; ids outside ``chars`` (special tokens) become '�'."""
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
    return "".join(chars[i] if 0 <= i < len(chars) else "\ufffd" for i in ids)


def make_corpus(name: str, text: str, val_fraction: float = 0.1,
                segments: list[tuple[str, str]] | None = None, source: str = "") -> CharCorpus:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: must lie in (0, 1), got {val_fraction}")
    if len(text) < 100:
        raise ValueError(f"text: the {name} corpus has only {len(text)} characters")
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n_train = int(len(data) * (1.0 - val_fraction))
    return CharCorpus(name, text, chars, data[:n_train], data[n_train:], segments or [], source)


# ------------------------------------------------------------------------------ windows
def random_windows(data: torch.Tensor, block_size: int, batch_size: int, step: int, seed: int,
                   device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of ``step``: ``batch_size`` random windows ``x[B, T]`` and their
    next-character targets ``y[B, T]`` (``y[:, t] = x[:, t+1]``, shifted by one in ``data``).

    Start positions are uniform in ``[0, len(data) - block_size - 1]``, drawn from a generator
    seeded with ``(seed, step)``: a pure function, no sampler state to checkpoint.
    """
    if len(data) < block_size + 2:
        raise ValueError(f"block_size: {block_size} needs a text longer than {len(data)} ids")
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    win = windows(data, block_size + 1, batch_size, g)  # (B, T + 1)
    return win[:, :-1].to(device), win[:, 1:].to(device)


def windows(data: torch.Tensor, length: int, n: int,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n, length]`` windows of ``data`` at start positions uniform in
    ``[0, len(data) - length]``, drawn from ``generator`` (the global stream when None)."""
    starts = torch.randint(len(data) - length + 1, (n,), generator=generator)
    return data[starts[:, None] + torch.arange(length)]


def fixed_windows(data: torch.Tensor, block_size: int, n: int, seed: int = 12345
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` windows of the split at positions fixed by ``seed`` (evaluation batches: the same
    windows at every evaluation of every run, so losses are comparable)."""
    return random_windows(data, block_size, n, step=0, seed=seed)


# ------------------------------------------------------------------------------ tiny Shakespeare
def _candidates(path: str | None, cache_dir: Path) -> list[Path]:
    if path:
        p = Path(path).expanduser()
        return [p / SHAKESPEARE_FILE if p.is_dir() else p]
    out = []
    if os.environ.get("GENMODELS_SHAKESPEARE"):
        out.append(Path(os.environ["GENMODELS_SHAKESPEARE"]).expanduser())
    out += [Path("data") / SHAKESPEARE_FILE, Path("..") / "shared" / "data" / SHAKESPEARE_FILE,
            cache_dir / SHAKESPEARE_FILE]
    return out


def download(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Fetch ``url`` into ``dest`` atomically (a partial download never looks complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
        f.write(r.read())
    os.replace(tmp, dest)
    return dest


def find_shakespeare(path: str | None = None, cache_dir: str | Path | None = None,
                     download_if_missing: bool = True, url: str = SHAKESPEARE_URL) -> Path:
    """The path of tiny Shakespeare (see the module docstring for the search order)."""
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    candidates = _candidates(path, cache)
    for c in candidates:
        if c.is_file():
            return c
    if path:
        raise DatasetNotFoundError(
            f"data.path: no file at {candidates[0]}. Point data.path at tinyshakespeare.txt "
            f"(the 1,115,394-byte input.txt of {SHAKESPEARE_URL}) or at its folder.")
    where = "\n".join(f"  {c}" for c in candidates)
    if download_if_missing:
        dest = cache / SHAKESPEARE_FILE
        try:
            return download(url, dest)
        except Exception as e:  # offline, proxy, HTTP error: all end the same way
            reason = f"the download from {url} failed ({type(e).__name__}: {e})"
    else:
        reason = "data.download is false"
    raise DatasetNotFoundError(
        f"tiny Shakespeare not found, and {reason}.\nLooked in:\n{where}\n"
        f"Download {url} (1,115,394 bytes) and save it as {cache / SHAKESPEARE_FILE}, or pass "
        f"data.path=/path/to/{SHAKESPEARE_FILE} (or set GENMODELS_SHAKESPEARE). "
        f"data=embedded_text trains on a corpus that ships with Python instead.")


_SPEAKER = re.compile(r"^([A-Z][A-Za-z' \-]*):\n")


def shakespeare_speeches(text: str) -> list[tuple[str, str]]:
    """``(speaker, speech)`` for every speech: tiny Shakespeare's blocks are separated by a
    blank line and start with ``NAME:`` on a line of its own. The name is removed from the
    speech (it is the label)."""
    out = []
    for block in text.split("\n\n"):
        block = block.strip("\n")
        m = _SPEAKER.match(block)
        if m:
            speech = block[m.end():].strip()
            if speech:
                out.append((m.group(1), speech))
    return out


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The text of ``path``; a file that is not text in ``encoding`` or too short to be a corpus
    raises ``ValueError`` naming the file."""
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not {encoding} text ({e})") from None
    if len(text) < 100:
        raise ValueError(f"{path}: holds only {len(text)} characters, too few for a corpus")
    return text


def load_text_file(path: str | Path, name: str | None = None, val_fraction: float = 0.1,
                   encoding: str = "utf-8") -> CharCorpus:
    p = Path(path)
    text = read_text(p, encoding)
    return make_corpus(name or p.stem, text, val_fraction, source=str(p))


def load_shakespeare(path: str | None = None, cache_dir: str | Path | None = None,
                     download_if_missing: bool = True, val_fraction: float = 0.1) -> CharCorpus:
    """Tiny Shakespeare (40,000 lines of plays, 65 distinct characters), split 90/10."""
    p = find_shakespeare(path, cache_dir, download_if_missing)
    text = read_text(p)
    return make_corpus("shakespeare", text, val_fraction, shakespeare_speeches(text), str(p))


# ------------------------------------------------------------------------------ embedded corpus
def embedded_documents() -> list[tuple[str, str]]:
    """``(section, text)`` of the Python Language Reference topics that ship with every
    CPython (``pydoc_data.topics``, what ``help('assert')`` prints): about 460 KB of English
    technical prose with code examples, available offline everywhere."""
    from pydoc_data.topics import topics

    return [(k, topics[k].strip() + "\n") for k in sorted(topics)]


def _paragraphs(docs: list[tuple[str, str]], min_chars: int = 40) -> list[tuple[str, str]]:
    out = []
    for label, text in docs:
        for para in re.split(r"\n\s*\n", text):
            para = para.strip()
            if len(para) >= min_chars and not set(para) <= set("*=-~^ \n"):
                out.append((label, para))
    return out


def load_embedded_corpus(val_fraction: float = 0.1) -> CharCorpus:
    """The embedded corpus: :func:`embedded_documents` joined by blank lines, split 90/10;
    segments are its paragraphs labelled by section."""
    docs = embedded_documents()
    text = "\n\n".join(t for _, t in docs)
    return make_corpus("embedded_text", text, val_fraction, _paragraphs(docs),
                       "pydoc_data.topics (Python Language Reference)")


# ------------------------------------------------------------------------------ labelled segments
@dataclass
class LabelledSplits:
    """Classification data from a corpus's segments: ids padded to ``max_len``."""
    classes: list[str]
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor]   # ids [N, L], key mask [N, L], y [N]
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor]

    def split(self, name: str):
        if name not in ("train", "val", "test"):
            raise ValueError(f"split: must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)


def labelled_splits(corpus: CharCorpus, num_classes: int, max_len: int, pad_id: int,
                    min_chars: int = 20, split_seed: int = 0,
                    fractions: tuple[float, float] = (0.1, 0.1)) -> LabelledSplits:
    """The ``num_classes`` most frequent labels among segments of at least ``min_chars``
    characters; each segment is cut to its first ``max_len`` characters and padded with
    ``pad_id``; a fixed permutation (``split_seed``) splits them 80/10/10."""
    segs = [(lab, t) for lab, t in corpus.segments if len(t) >= min_chars]
    counts = Counter(lab for lab, _ in segs)
    if len(counts) < num_classes:
        raise ValueError(f"num_classes: the {corpus.name} corpus has only {len(counts)} labels")
    classes = sorted(lab for lab, _ in counts.most_common(num_classes))
    index = {c: i for i, c in enumerate(classes)}
    segs = [(index[lab], t) for lab, t in segs if lab in index]
    stoi = corpus.stoi
    ids = torch.full((len(segs), max_len), pad_id, dtype=torch.long)
    for n, (_, t) in enumerate(segs):
        t = t[:max_len]
        ids[n, :len(t)] = torch.tensor([stoi[c] for c in t])
    mask = ids != pad_id
    y = torch.tensor([lab for lab, _ in segs], dtype=torch.long)
    perm = torch.randperm(len(segs), generator=torch.Generator().manual_seed(split_seed))
    n_val, n_test = int(fractions[0] * len(segs)), int(fractions[1] * len(segs))
    parts = (perm[n_val + n_test:], perm[:n_val], perm[n_val:n_val + n_test])
    return LabelledSplits(classes, *[(ids[p], mask[p], y[p]) for p in parts])
