"""Character corpora: file, folder, cache, download, offline error, splits, windows, segments."""

import io
import urllib.error
from pathlib import Path

import pytest
import torch

from genmodels.data import text as T

pytestmark = pytest.mark.data

SPEAKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA"]


def fake_play(n_speeches: int = 40) -> str:
    """A tiny corpus in tiny Shakespeare's layout: blank-line separated `NAME:` blocks."""
    blocks = []
    for k in range(n_speeches):
        name = SPEAKERS[k % len(SPEAKERS)]
        blocks.append(f"{name}:\nSpeech number {k} by {name.lower()}, and it goes on a while.\n"
                      f"A second line, {k * 7 % 13} apples.")
    return "\n\n".join(blocks) + "\n"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real corpus reachable: an empty working folder, no env variables, no network."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENMODELS_SHAKESPEARE", raising=False)
    monkeypatch.setenv("GENMODELS_CACHE", str(tmp_path / "cache"))

    def offline(*a, **k):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(T.urllib.request, "urlopen", offline)
    return tmp_path


def test_file_and_folder_paths_split_90_10_and_round_trip(tmp_path):
    text = fake_play()
    (tmp_path / "tinyshakespeare.txt").write_text(text)
    for path in (tmp_path / "tinyshakespeare.txt", tmp_path):
        c = T.load_shakespeare(str(path), download_if_missing=False)
        assert c.text == text
        assert c.chars == sorted(set(text)) and c.vocab_size == len(set(text))
        n_train = int(len(text) * 0.9)
        assert (len(c.train), len(c.val)) == (n_train, len(text) - n_train)
        assert c.decode(c.train) + c.decode(c.val) == text          # nothing lost or reordered
        assert c.decode(c.encode("ALPHA: apples")) == "ALPHA: apples"
        assert c.split("test") is c.val
    with pytest.raises(ValueError, match="s: characters"):
        c.encode("~")


def test_found_in_the_cache_folder(isolated):
    cache = isolated / "cache"
    cache.mkdir()
    (cache / T.SHAKESPEARE_FILE).write_text(fake_play())
    assert T.find_shakespeare() == cache / T.SHAKESPEARE_FILE


def test_offline_error_says_where_to_put_the_file(isolated):
    with pytest.raises(T.DatasetNotFoundError) as err:
        T.load_shakespeare()
    msg = str(err.value)
    assert str(isolated / "cache" / T.SHAKESPEARE_FILE) in msg     # where to save it
    assert T.SHAKESPEARE_URL in msg and "data.path" in msg and "URLError" in msg
    assert not (isolated / "cache" / T.SHAKESPEARE_FILE).exists()


def test_missing_explicit_path_names_data_path(isolated):
    with pytest.raises(T.DatasetNotFoundError, match="data.path"):
        T.load_shakespeare(str(isolated / "nowhere.txt"))


def test_download_goes_to_the_cache_atomically(isolated, monkeypatch):
    payload = fake_play().encode()

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    seen = []
    monkeypatch.setattr(T.urllib.request, "urlopen",
                        lambda url, timeout: seen.append(url) or Response(payload))
    c = T.load_shakespeare()
    assert seen == [T.SHAKESPEARE_URL]
    dest = isolated / "cache" / T.SHAKESPEARE_FILE
    assert dest.read_bytes() == payload and c.text == payload.decode()
    assert sorted(p.name for p in dest.parent.iterdir()) == [T.SHAKESPEARE_FILE]  # no .part


def test_random_windows_are_shifted_slices_fixed_by_seed_and_step():
    data = torch.arange(1000) % 97
    x, y = T.random_windows(data, 16, 8, step=5, seed=3)
    assert x.shape == y.shape == (8, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])                      # targets: the next character
    for row_x, row_y in zip(x, y):
        starts = [s for s in range(len(data) - 16) if torch.equal(data[s:s + 16], row_x)]
        assert any(torch.equal(data[s + 1:s + 17], row_y) for s in starts)
    x2, _ = T.random_windows(data, 16, 8, step=5, seed=3)
    x3, _ = T.random_windows(data, 16, 8, step=6, seed=3)
    assert torch.equal(x, x2) and not torch.equal(x, x3)


def test_speeches_are_split_by_speaker():
    text = "ROMEO:\nBut soft!\nWhat light?\n\nJULIET:\nAy me.\n\nFirst Citizen:\nSpeak.\n\nno speaker\n"
    assert T.shakespeare_speeches(text) == [("ROMEO", "But soft!\nWhat light?"),
                                            ("JULIET", "Ay me."), ("First Citizen", "Speak.")]


def test_labelled_splits_pad_and_keep_the_most_frequent_labels(tmp_path):
    (tmp_path / "t.txt").write_text(fake_play(40) + "\nECHO:\nA lone line from echo.\n")
    c = T.load_shakespeare(str(tmp_path / "t.txt"))
    pad = c.vocab_size + 1
    s = T.labelled_splits(c, num_classes=4, max_len=32, pad_id=pad, split_seed=0)
    assert s.classes == SPEAKERS                                 # ECHO (1 speech) left out
    ids, mask, y = (torch.cat(t) for t in zip(s.train, s.val, s.test))
    assert len(y) == 40 and sorted(y.bincount().tolist()) == [10, 10, 10, 10]
    assert (len(s.val[2]), len(s.test[2])) == (4, 4)
    assert torch.equal(mask, ids != pad)
    first = c.decode(ids[0][mask[0]])
    assert first.startswith("Speech number") and len(first) == 32


def test_embedded_corpus_ships_with_python():
    c = T.load_embedded_corpus()
    assert len(c.text) > 300_000 and 60 < c.vocab_size < 200
    assert c.decode(c.encode(c.text[:500])) == c.text[:500]
    assert len(c.segments) > 1000 and "assert" in {lab for lab, _ in c.segments}


@pytest.mark.skipif(not Path("../shared/data/tinyshakespeare.txt").is_file()
                    and not (Path(__file__).parents[2] / "shared/data/tinyshakespeare.txt").is_file(),
                    reason="tiny Shakespeare not on this machine")
def test_the_real_tiny_shakespeare():
    path = Path(__file__).parents[2] / "shared/data/tinyshakespeare.txt"
    c = T.load_shakespeare(str(path))
    assert path.stat().st_size == T.SHAKESPEARE_BYTES
    assert (c.vocab_size, len(c.train), len(c.val)) == (65, 1_003_854, 111_540)
