r"""Text to phones: the character set, the phone inventory and a rule-based grapheme-to-phone step.

**Text.** :func:`normalize_text` maps a sentence onto :data:`CHARSET` — lowercase ``a``–``z``,
the space and the apostrophe: letters are lowercased, hyphens and dashes become spaces, every other
character (digits, punctuation, symbols) is dropped, runs of spaces collapse.

**Phones.** :data:`SPEECH_PHONES` is the inventory the source–filter synthesiser
(genmodels/audio/corpus.py) renders: its 13 phones (vowels a e i o u ae, nasals and liquids m n l,
fricatives s sh f, silence sil) plus 20 more — vowels ih uh er oo; ng r w y (voiced, weak);
h th (noise); voiced fricatives v z zh dh; voiceless stops p t k; voiced stops b d g. A diphthong
is two vowel targets (``ai`` = a + ih) and an affricate two phones (``ch`` = t + sh).

**Rules** (:func:`g2p`), applied word by word, left to right, longest spelling first:

1. function words with a voiced ``th`` (the, this, that, these, those, then, than, there, their,
   they, them, though, thus, with) say ``dh``;
2. letter groups: ``tion`` → sh uh n, ``sion`` → zh uh n, ``tch``/``ch`` → t sh, ``igh`` → a ih,
   word-initial ``kn`` → n and ``wr`` → r, ``sh``, ``th``, ``ph`` → f, ``wh`` → w, ``ck`` → k,
   ``ng``, ``qu`` → k w, ``gh`` silent; vowel pairs ``ee``/``ea`` → i, ``oo`` → u, ``ou`` → a oo,
   ``ow`` → o u, ``ai``/``ay``/``ei``/``ey`` → e ih, ``oa`` → o u, ``oi``/``oy`` → o ih,
   ``au``/``aw`` → o, ``ew`` → y u, ``ue`` → u, ``er``/``ir``/``ur`` → er, ``ar`` → a r,
   ``or`` → o r;
3. the silent-e rule: vowel + one consonant + word-final ``e`` (or ``es``/``ed``) makes the vowel
   long (a → e ih, e → i, i → a ih, o → o u, u → y u) and the ``e`` silent; any other word-final
   ``e`` after a vowel-bearing stem is silent too (a one-vowel word such as "he" says i);
4. single letters: short vowels a → ae, e → e, i → ih, o → o, u → uh; a word ending in its only
   vowel says it long (go, no, hi); "a" alone → uh, "i" alone → a ih; ``c`` → s before e/i/y,
   else k; ``g`` → d zh before e/i/y, else g; ``s`` → z at the end of a word after a vowel or a
   voiced consonant ("is", "dogs") and between vowels, else s; ``x`` → k s (z word-initially);
   ``y`` → y before a vowel at the start of a word, a ih at the end of a short word ("my"), i at
   the end of a longer one ("happy"), ih elsewhere; ``j`` → d zh, ``q`` → k; a doubled
   consonant says one phone; the apostrophe is silent.

**Limits.** No dictionary and no stress: irregular spellings come out as they are spelt ("one"
→ o u n, "said" → s e ih d, "of" → o f), unstressed vowels keep their full quality (no schwa
reduction beyond ``tion``), ``th`` is voiceless outside the listed words, and homographs ("read")
say one thing. What matters for the corpus is that the rules are consistent: a model that
transcribes this speech learns them back.
"""

from __future__ import annotations

import re

from genmodels.audio.corpus import PHONES

__all__ = ["CHARSET", "SPEECH_PHONES", "normalize_text", "g2p", "phonemize"]

#: the characters a transcript may contain after :func:`normalize_text` (index 0 is the space)
CHARSET = " 'abcdefghijklmnopqrstuvwxyz"

#: phone → (kind, formants Hz (F1, F2, F3), bandwidths Hz, gain): the synthesiser's :data:`PHONES`
#: and the phones that text needs. Kinds: V vowel, N nasal/liquid/glide, F voiceless fricative,
#: Z voiced fricative, P voiceless stop, B voiced stop, S silence (genmodels.audio.corpus). For
#: fricatives and stops the formants are those of the noise (the burst).
SPEECH_PHONES = {
    **PHONES,
    "ih": ("V", (390, 1990, 2550), (60, 100, 160), 0.85),
    "uh": ("V", (640, 1190, 2390), (80, 100, 160), 0.9),
    "er": ("V", (490, 1350, 1690), (70, 100, 150), 0.85),
    "oo": ("V", (440, 1020, 2240), (70, 90, 150), 0.85),
    "ng": ("N", (250, 2100, 2700), (60, 200, 300), 0.3),
    "r": ("N", (310, 1060, 1380), (70, 100, 120), 0.5),
    "w": ("N", (290, 610, 2150), (60, 80, 150), 0.5),
    "y": ("N", (260, 2070, 3020), (60, 100, 150), 0.5),
    "h": ("F", (600, 1500, 2500), (500, 600, 700), 0.15),
    "th": ("F", (1700, 2900, 3700), (1200, 1500, 1800), 0.12),
    "v": ("Z", (1500, 2800, 3600), (1500, 1800, 2000), 0.12),
    "z": ("Z", (2600, 3400, 3800), (600, 700, 800), 0.25),
    "zh": ("Z", (1900, 2600, 3300), (400, 600, 700), 0.25),
    "dh": ("Z", (1700, 2900, 3700), (1200, 1500, 1800), 0.1),
    "p": ("P", (700, 1200, 2400), (500, 700, 900), 0.3),
    "t": ("P", (2800, 3400, 3800), (600, 700, 800), 0.35),
    "k": ("P", (1800, 2400, 3100), (300, 500, 700), 0.35),
    "b": ("B", (700, 1200, 2400), (500, 700, 900), 0.2),
    "d": ("B", (2800, 3400, 3800), (600, 700, 800), 0.22),
    "g": ("B", (1800, 2400, 3100), (300, 500, 700), 0.22),
}

_VOWELS = "aeiou"
_VOICED_LETTERS = set("aeiouybdglmnrvw")
_DH_WORDS = {"the", "this", "that", "these", "those", "then", "than", "there", "their", "they",
             "them", "though", "thus", "with"}
_LONG = {"a": ("e", "ih"), "e": ("i",), "i": ("a", "ih"), "o": ("o", "u"), "u": ("y", "u")}
_SHORT = {"a": ("ae",), "e": ("e",), "i": ("ih",), "o": ("o",), "u": ("uh",)}
_GROUPS = (   # (spelling, phones, where): where is None (anywhere) or "start" (word-initial)
    ("tion", ("sh", "uh", "n"), None), ("sion", ("zh", "uh", "n"), None),
    ("tch", ("t", "sh"), None), ("igh", ("a", "ih"), None),
    ("kn", ("n",), "start"), ("wr", ("r",), "start"),
    ("ch", ("t", "sh"), None), ("sh", ("sh",), None), ("th", ("th",), None), ("ph", ("f",), None),
    ("wh", ("w",), None), ("ck", ("k",), None), ("ng", ("ng",), None), ("qu", ("k", "w"), None),
    ("gh", (), None),
    ("ee", ("i",), None), ("ea", ("i",), None), ("oo", ("u",), None), ("ou", ("a", "oo"), None),
    ("ow", ("o", "u"), None), ("ai", ("e", "ih"), None), ("ay", ("e", "ih"), None),
    ("ei", ("e", "ih"), None), ("ey", ("e", "ih"), None), ("oa", ("o", "u"), None),
    ("oi", ("o", "ih"), None), ("oy", ("o", "ih"), None), ("au", ("o",), None),
    ("aw", ("o",), None), ("ew", ("y", "u"), None), ("ue", ("u",), None),
    ("er", ("er",), None), ("ir", ("er",), None), ("ur", ("er",), None),
    ("ar", ("a", "r"), None), ("or", ("o", "r"), None),
)
_LETTER = {"b": "b", "d": "d", "f": "f", "h": "h", "k": "k", "l": "l", "m": "m", "n": "n",
           "p": "p", "q": "k", "r": "r", "t": "t", "v": "v", "w": "w", "z": "z"}


def normalize_text(text: str) -> str:
    """``text`` on :data:`CHARSET`: lowercased, hyphens/dashes → spaces, other characters
    dropped, spaces collapsed and stripped."""
    if not isinstance(text, str):
        raise ValueError(f"text: must be a str, got {type(text).__name__}")
    t = text.lower().replace("\u2019", "'")
    t = re.sub(r"[-\u2013\u2014_/]", " ", t)
    t = "".join(c for c in t if c in CHARSET or c.isspace())
    return re.sub(r"\s+", " ", t).strip()


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise ValueError(f"text: must be a str, got {type(text).__name__}")
    bad = sorted(set(text) - set(CHARSET))
    if bad:
        raise ValueError(f"text: characters {bad} are outside the character set "
                         f"{CHARSET!r}; pass it through normalize_text first")


def _word(word: str) -> list[tuple[int, int, tuple[str, ...]]]:
    """Rules 1–4 on one word (no spaces): ``(start, end, phones)`` covering its letters."""
    letters = word.replace("'", "")
    out: list[tuple[int, int, tuple[str, ...]]] = []
    n = len(word)
    n_vowel_letters = sum(c in _VOWELS for c in letters)
    i = 0

    def nxt(j):                                  # the next letter after position j ('' at the end)
        j += 1
        while j < n and word[j] == "'":
            j += 1
        return word[j] if j < n else ""

    def silent_e_at(j):                          # is word[j] an 'e' that ends the word (or -es, -ed)?
        if word[j:j + 1] != "e" or j == 0:
            return word[j:j + 1] == "e" and j == n - 1
        before = word[j - 1]                     # -ed after t/d and -es after a hiss keep their e
        return j == n - 1 or (j == n - 2 and ((word[j + 1] == "d" and before not in "td")
                                              or (word[j + 1] == "s" and before not in "sxzhgc")))

    while i < n:
        c = word[i]
        if c == "'":
            out.append((i, i + 1, ()))
            i += 1
            continue
        if i == 0 and letters in _DH_WORDS and word.startswith("th"):
            out.append((0, 2, ("dh",)))
            i = 2
            continue
        for spelling, phones, where in _GROUPS:
            if word.startswith(spelling, i) and (where is None or i == 0):
                out.append((i, i + len(spelling), phones))
                i += len(spelling)
                break
        else:
            out.append((i, i + 1, _letter(word, i, n_vowel_letters, nxt, silent_e_at)))
            i += 1
    # a doubled consonant says one phone: the second letter joins the first's span
    merged: list[tuple[int, int, tuple[str, ...]]] = []
    for a, b, ph in out:
        if merged and b - a == 1 and word[a] not in _VOWELS + "'" and word[a] == word[merged[-1][1] - 1] \
                and merged[-1][1] == a and merged[-1][1] - merged[-1][0] == 1:
            merged[-1] = (merged[-1][0], b, merged[-1][2])
        else:
            merged.append((a, b, ph))
    return merged


def _letter(word, i, n_vowel_letters, nxt, silent_e_at) -> tuple[str, ...]:
    c, n = word[i], len(word)
    after = nxt(i)
    if c in _VOWELS:
        if word == "a":
            return ("uh",)
        if word == "i":
            return ("a", "ih")
        if c == "e" and silent_e_at(i) and i > 0:
            stem_vowels = sum(ch in _VOWELS + "y" for ch in word[:i])
            if stem_vowels:
                return ()
            return ("i",)                                           # he, we, be, me
        # silent-e: vowel, one consonant, final e (or -es/-ed)
        if after and after not in _VOWELS + "wxy'" and i + 2 < n and silent_e_at(i + 2):
            return _LONG[c]
        if i == n - 1 and n_vowel_letters == 1:                     # go, no, hi
            return _LONG[c]
        return _SHORT[c]
    if c == "c":
        return ("s",) if after in ("e", "i", "y") else ("k",)
    if c == "g":
        return ("d", "zh") if after in ("e", "i", "y") else ("g",)
    if c == "j":
        return ("d", "zh")
    if c == "x":
        return ("z",) if i == 0 else ("k", "s")
    if c == "s":
        prev = word[i - 1] if i > 0 else ""
        if i == n - 1 and prev and prev in _VOICED_LETTERS:
            return ("z",)
        if prev and after and prev in _VOWELS and after in _VOWELS:
            return ("z",)
        return ("s",)
    if c == "y":
        if i == 0 and after in _VOWELS and after:
            return ("y",)
        if i == n - 1:
            return ("a", "ih") if n <= 3 and not any(ch in _VOWELS for ch in word[:i]) else ("i",)
        return ("ih",)
    return (_LETTER[c],)


def g2p(text: str) -> list[tuple[int, int, tuple[str, ...]]]:
    """Graphemes to phones: ``(start, end, phones)`` for consecutive spans of ``text`` that
    together cover every character once, in order. ``text`` must be on :data:`CHARSET`
    (:func:`normalize_text`). A space is its own span and says ``("sil",)`` (the pause between
    words); silent letters and the apostrophe are spans with no phone; a span of several letters
    ("sh") may say one phone and one letter ("x") several."""
    _check_text(text)
    out: list[tuple[int, int, tuple[str, ...]]] = []
    pos = 0
    for m in re.finditer(r"[^ ]+| +", text):
        a = m.start()
        if pos < a:                                                 # (unreachable: spans are contiguous)
            out.append((pos, a, ()))
        if m.group()[0] == " ":
            out.append((a, m.end(), ("sil",)))
        else:
            out.extend((a + s, a + e, ph) for s, e, ph in _word(m.group()))
        pos = m.end()
    return out


def phonemize(text: str) -> list[str]:
    """The phones of ``text`` in order (:func:`g2p` without the spans)."""
    return [p for _, _, ph in g2p(text) for p in ph]
