"""Edit distance and character error rate (genmodels.speech) against hand cases, a brute-force
search over edit scripts and the metric's properties."""

import itertools
import random

import pytest

from genmodels.speech import character_error_rate, edit_distance

pytestmark = pytest.mark.speech


@pytest.mark.parametrize("hyp, ref, d", [
    ("kitten", "sitting", 3), ("", "", 0), ("", "abc", 3), ("abc", "", 3), ("abc", "abc", 0),
    ("flaw", "lawn", 2), ("intention", "execution", 5), (["the", "cat"], ["the", "hat"], 1),
    ([1, 2, 3], [3, 2, 1], 2),
])
@pytest.mark.exercise("speech.edit_distance")
def test_edit_distance_hand_cases(hyp, ref, d):
    assert edit_distance(hyp, ref) == d


def _brute_force(hyp: str, ref: str, alphabet: str) -> int:
    """Breadth-first search over single edits from hyp until ref is reached (tiny strings)."""
    frontier, seen, depth = {hyp}, {hyp}, 0
    while ref not in frontier:
        nxt = set()
        for s in frontier:
            for i in range(len(s) + 1):
                for c in alphabet:
                    nxt.add(s[:i] + c + s[i:])                       # insert
                if i < len(s):
                    nxt.add(s[:i] + s[i + 1:])                       # delete
                    nxt.update(s[:i] + c + s[i + 1:] for c in alphabet)   # substitute
        frontier, depth = nxt - seen, depth + 1
        seen |= nxt
    return depth


@pytest.mark.exercise("speech.edit_distance")
def test_edit_distance_equals_the_shortest_edit_script():
    rng = random.Random(0)
    for _ in range(40):
        h = "".join(rng.choice("ab") for _ in range(rng.randrange(0, 5)))
        r = "".join(rng.choice("ab") for _ in range(rng.randrange(0, 5)))
        assert edit_distance(h, r) == _brute_force(h, r, "ab"), (h, r)


def test_edit_distance_is_a_metric():
    words = ["", "a", "ab", "ba", "abc", "acb", "cab", "bbb"]
    for x, y, z in itertools.product(words, repeat=3):
        assert edit_distance(x, y) == edit_distance(y, x)
        assert edit_distance(x, z) <= edit_distance(x, y) + edit_distance(y, z)
        assert (edit_distance(x, y) == 0) == (x == y)


@pytest.mark.exercise("speech.character_error_rate")
def test_character_error_rate_pools_over_the_corpus():
    # one error in a 10-character sentence, two in a 2-character one: (1 + 2) / 12, not the mean
    # of the per-sentence rates (0.1 + 1.0) / 2
    assert character_error_rate(["abcdefghiX", "zz"], ["abcdefghij", "ab"]) == pytest.approx(3 / 12)
    assert character_error_rate(["same"], ["same"]) == 0.0
    assert character_error_rate(["", "x"], ["ab", "x"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("hyps, refs, name", [
    (["a"], ["a", "b"], "refs"), (["", ""], ["", ""], "refs"), ("ab", ["ab"], "hyps"),
    (["a"], [3], "refs"),
])
def test_character_error_rate_refuses_bad_input(hyps, refs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        character_error_rate(hyps, refs)


def test_edit_distance_refuses_non_sequences():
    for bad in (3, None, {1, 2}, b"ab"):
        with pytest.raises(ValueError, match="^hyp:"):
            edit_distance(bad, "ab")


# --- small cases (shown by `genmodels-exercise check` as expected vs got) ---------------------
@pytest.mark.exercise("speech.edit_distance")
def test_edit_distance_small_case(small_case):
    small_case(("'kitten' -> 'sitting' (k→s, e→i, insert g: the textbook case)", 3.0,
                lambda: float(edit_distance("kitten", "sitting"))),
               ("'abc' -> 'abc' (a match costs nothing)", 0.0,
                lambda: float(edit_distance("abc", "abc"))))


@pytest.mark.exercise("speech.character_error_rate")
def test_character_error_rate_small_case(small_case):
    small_case(("hyps ['abcdefghiX', 'zz'], refs ['abcdefghij', 'ab']: (1 + 2) / (10 + 2)", 0.25,
                lambda: character_error_rate(["abcdefghiX", "zz"], ["abcdefghij", "ab"])))
