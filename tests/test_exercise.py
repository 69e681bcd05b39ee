"""The course's exercises and their autograder (``genmodels-exercise``).

Every exercise is graded three ways, in workspaces made once per test session:
- the reference solution written into the fences passes ``check``;
- the stub fails, with the exercise's own NotImplementedError message;
- a planted mistake (a sign flip, a missing ½, a wrong axis: ``Exercise.mistake``) fails with a
  useful message (a failing test's difference or a small case's expected vs got, and a hint).
Each ``check`` is one subprocess for many exercises; mistakes are planted together only in
exercises that do not call each other (``Exercise.uses``), so each failure is the exercise's own.
The registry is read from the fences in the source (with their declarations) and the tests'
``@pytest.mark.exercise(name)`` tags; it is checked against what the ast sees there, and against
the family test markers and the course page.
"""

import ast
import csv
import json
import functools
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from genmodels.exercise import cli, grader
from genmodels.exercise import workspace as ws
from genmodels.exercise import registry
from genmodels.exercise.registry import BY_NAME, EXERCISES, FAMILIES, FAMILY_MARKER

pytestmark = pytest.mark.exercise

NAMES = [e.name for e in EXERCISES]


def run_cli(*argv):
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def fill_in_reference(workspace: Path, exercises) -> None:
    """What a student who writes the reference solution ends up with: the library's modules."""
    for path in {ex.module for ex in exercises}:
        shutil.copy2(ws.REPO_DIR / path, workspace / path)


def mistake_groups(exercises):
    """Greedy colouring: no two exercises of a group call each other (``uses``, both ways)."""
    conflicts = {e.name: set(e.uses) for e in exercises}
    for e in exercises:
        for u in e.uses:
            conflicts.setdefault(u, set()).add(e.name)
    groups: list[list] = []
    for e in exercises:
        for g in groups:
            if not any(o.name in conflicts[e.name] for o in g):
                g.append(e)
                break
        else:
            groups.append([e])
    return groups


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """Every exercise checked as stub, as reference and with its planted mistake."""
    root = tmp_path_factory.mktemp("course")
    stub = ws.make_workspace(list(EXERCISES), root / "stub")
    reference = ws.make_workspace(list(EXERCISES), root / "reference")
    fill_in_reference(reference, EXERCISES)
    jobs = [("stub", stub, list(EXERCISES)), ("reference", reference, list(EXERCISES))]
    for k, group in enumerate(mistake_groups(EXERCISES)):
        jobs.append(("mistake", ws.make_workspace(group, root / f"mistake{k}", mistakes=True), group))
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda job: (job, grader.check(job[1], job[2], timeout=300)), jobs))
    results = {"stub": {}, "reference": {}, "mistake": {}}
    for (kind, path, _), res in done:
        for r in res:
            results[kind][r.exercise.name] = r
    results["paths"] = {"stub": stub, "reference": reference}
    return results


# ------------------------------------------------------------------ the registry vs the source
def _functions_by_line(tree) -> list[tuple[str, int, int]]:
    """(qualified name, first line, last line) of every function and method of a module."""
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.append((node.name, node.lineno, node.end_lineno))
        elif isinstance(node, ast.ClassDef):
            out += [(f"{node.name}.{f.name}", f.lineno, f.end_lineno) for f in node.body
                    if isinstance(f, ast.FunctionDef)]
    return out


@functools.lru_cache(maxsize=None)
def _test_names(path: str) -> frozenset[str]:
    tree = ast.parse((ws.REPO_DIR / path).read_text())
    return frozenset(n.name for n in tree.body if isinstance(n, ast.FunctionDef))


def test_every_marker_is_registered_and_every_exercise_has_markers_and_tests():
    found = ws.find_regions()
    assert sorted(found) == sorted(NAMES), "markers in the source and the registry differ"
    assert len(set(NAMES)) == len(NAMES)
    for ex in EXERCISES:
        assert ex.family in FAMILIES, ex.name
        regions = found[ex.name]
        assert {r.path for r in regions} == {ex.module}, ex.name
        assert all(r.eq == ex.eq for r in regions), f"{ex.name}: marker says {regions[0].eq!r}"
        # each fence (its fenced lines: 1-based start+2 … end) sits inside a named function,
        # and each named function has one
        source = (ws.REPO_DIR / ex.module).read_text()
        funcs = _functions_by_line(ast.parse(source))
        inside = {name for r in regions for name, a, b in funcs if a < r.start + 1 and r.end <= b}
        assert inside == set(ex.functions), f"{ex.name}: fences in {inside}, registry {ex.functions}"
        # every test it names exists
        assert ex.tests, ex.name
        for nodeid in ex.tests + ex.cases:
            path, test = nodeid.split("::")
            assert test in _test_names(path), f"{ex.name}: {nodeid} does not exist"
        assert set(ex.uses) <= set(BY_NAME), ex.name
        # the planted mistake applies to the fenced code exactly once, never to the declaration
        assert ws.apply_mistake(source, ex.module, ex) != source
        assert ex.mistake[0] in ws.region_text(ws.PACKAGE_DIR, regions)
        # one fence declares it: what, hint and mistake (the course's texts are single lines)
        (head,) = [r for r in regions if r.declaration]
        assert {k for k, _ in head.declaration} >= {"what", "hint", "mistake"}, ex.name
        assert all("\n" not in v for v in (ex.what, ex.hint, *ex.mistake)), ex.name
    # every small case but one (ŝ = x + U(x) is graded by its identity-at-init test alone)
    assert [e.name for e in EXERCISES if len(e.cases) != 1] == ["audio.waveunet"]


def _exercise_tags_by_ast() -> dict[str, list[str]]:
    """``{test node id: exercise names}`` of every ``@pytest.mark.exercise(...)`` in tests/; the
    node id ends in " (small case)" for a test that takes the ``small_case`` fixture."""
    tags = {}
    for f in sorted((ws.REPO_DIR / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                continue
            for d in node.decorator_list:
                if (isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "exercise"
                        and getattr(d.func.value, "attr", "") == "mark"):
                    small = isinstance(node, ast.FunctionDef) and "small_case" in [
                        a.arg for a in node.args.args]
                    nodeid = f"tests/{f.name}::{node.name}" + " (small case)" * small
                    tags.setdefault(nodeid, []).extend(a.value for a in d.args)
    return tags


def test_exercise_tags_name_known_exercises_and_all_are_read():
    """The registry reads the tags with a regex (it loads without genmodels, quickly): the ast
    finds the same tags, each naming a registered exercise, and only on top-level tests."""
    by_ast = _exercise_tags_by_ast()
    read = {}
    for ex in EXERCISES:
        for nodeid in ex.tests + tuple(f"{c} (small case)" for c in ex.cases):
            read.setdefault(nodeid, []).append(ex.name)
    assert {k: sorted(v) for k, v in by_ast.items()} == {k: sorted(v) for k, v in read.items()}
    for nodeid in by_ast:
        path, name = nodeid.removesuffix(" (small case)").split("::")
        assert name in _test_names(path), nodeid


def test_registry_loads_by_file_path_without_genmodels():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('reg', {str(registry.__file__)!r})\n"
            "reg = importlib.util.module_from_spec(spec); sys.modules['reg'] = reg\n"
            "spec.loader.exec_module(reg)\n"
            "assert not any(m.split('.')[0] == 'genmodels' for m in sys.modules), 'imported genmodels'\n"
            "print(len(reg.EXERCISES), sum(len(e.tests) for e in reg.EXERCISES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(EXERCISES)), str(sum(len(e.tests) for e in EXERCISES))]


def test_marker_parser_rejects_malformed_fences():
    ok = "def f():\n    # >>> exercise a.b: eq. 1\n    return 1\n    # <<< exercise a.b\n"
    (region,) = ws.parse_markers(ok, "m.py")
    assert (region.name, region.eq, region.start, region.end) == ("a.b", "eq. 1", 1, 3)
    bad = {"never closed": ok.replace("    # <<< exercise a.b\n", ""),
           "closes nothing": ok.replace("<<< exercise a.b", "<<< exercise a.c"),
           "opens inside": ok.replace("    return 1\n", "    # >>> exercise a.c: eq. 2\n"),
           "fences no line": ok.replace("    return 1\n", "")}
    for why, text in bad.items():
        with pytest.raises(ws.MarkerError, match=why):
            ws.parse_markers(text, "m.py")


def test_declaration_under_the_opening_marker():
    """``# what:`` / ``# hint:`` / ``# mistake:`` / ``# uses:`` lines (a value may continue on
    further-indented comment lines) are the declaration; the fenced code starts after them, and
    a workspace keeps neither."""
    text = ("def f(x):\n    # >>> exercise a.b: eq. 1\n    # what: one\n    # hint: a long\n"
            "    #   hint\n    # mistake: `x + 1` -> `x - 1`\n    # not a key: code comment\n"
            "    return x + 1\n    # <<< exercise a.b\n")
    (r,) = ws.parse_markers(text, "m.py")
    assert r.declaration == (("what", "one"), ("hint", "a long hint"), ("mistake", "`x + 1` -> `x - 1`"))
    assert (r.start, r.body, r.end) == (1, 6, 8)
    assert text.split("\n")[r.body] == "    # not a key: code comment"
    assert ws.strip_declarations(text, "m.py").split("\n")[2] == "    # not a key: code comment"
    with pytest.raises(ws.MarkerError, match="twice"):
        ws.parse_markers(text.replace("# what: one", "# hint: one"), "m.py")
    with pytest.raises(ws.MarkerError, match="fences no line"):
        ws.parse_markers("    # >>> exercise a.b: 1\n    # what: w\n    # <<< exercise a.b\n", "m.py")


def test_stub_keeps_docstring_and_input_checks():
    ex = BY_NAME["vae.kl"]
    text = (ws.REPO_DIR / ex.module).read_text()
    stubbed = ws.replace_regions(text, ex.module, {ex.name: ws.stub_line(ex)})
    assert "Eq. 2.8: D_KL( N(μ, σ²I) ‖ N(0, I) )" in stubbed            # docstring kept
    body = stubbed.split("def kl_to_standard_normal", 1)[1].split("\ndef ", 1)[0]
    assert "_check_gaussian(mu, logvar)" in body                         # input check kept
    assert ws.stub_message(ex) in body and "expm1" not in body           # solution removed
    compile(stubbed, ex.module, "exec")


def test_family_markers_select_each_familys_tests():
    prefixes = {"test_vae_": {"vae"}, "test_gan_": {"gan"}, "test_diffusion_": {"diffusion", "ddpm"},
                "test_rnn_": {"rnn"}, "test_transformer_": {"transformer"}, "test_rl_": {"rl"},
                "test_ppo_": {"rl"}, "test_rlhf_": {"rl"}, "test_transfer_": {"transfer"},
                "test_ewc_": {"transfer"}, "test_audio_": {"audio"}, "test_wavenet": {"audio"}}

    def marks(path: Path) -> set[str]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "pytestmark":
                return {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)} - {"mark"}
        return set()

    tests = ws.REPO_DIR / "tests"
    for f in tests.glob("test_*.py"):
        for prefix, want in prefixes.items():
            if f.name.startswith(prefix):
                assert want <= marks(f), f"{f.name}: pytestmark lacks {want - marks(f)}"
    for ex in EXERCISES:
        for f in ex.test_files:
            assert FAMILY_MARKER[ex.family] in marks(ws.REPO_DIR / f), (ex.name, f)


# ------------------------------------------------------------------ every exercise, three ways
@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(course, name):
    r = course["reference"][name]
    assert r.passed, grader.verdict_text(r)
    assert Path(r.imported_from).is_relative_to(course["paths"]["reference"].resolve())


@pytest.mark.parametrize("name", NAMES)
def test_stub_fails_with_the_exercises_message(course, name):
    r = course["stub"][name]
    ex = BY_NAME[name]
    assert not r.passed and r.status == "STUB" and not r.error
    # the workspace's copy was graded (the library itself has no stubs)
    assert Path(r.imported_from).is_relative_to(course["paths"]["stub"].resolve())
    own = [t for t in r.tests if ws.stub_message(ex) in t.message]
    assert own, grader.verdict_text(r)
    assert "not implemented yet" in grader.verdict_text(r)


@pytest.mark.parametrize("name", NAMES)
def test_planted_mistake_fails_with_a_useful_message(course, name):
    r = course["mistake"][name]
    ex = BY_NAME[name]
    text = grader.verdict_text(r)
    assert not r.passed and not r.error and r.stubs == [], text
    failing_tests = [t for t in r.tests if not t.passed]
    failing_cases = [c for c in r.cases if not c["ok"]]
    assert failing_tests or failing_cases, text
    for t in failing_tests:      # each names what went wrong
        assert re.search(r"\w+(Error|Exception|Warning)?: \S", t.message), t.message
    for c in failing_cases:      # expected next to got, in numbers
        assert re.search(r"\d", c["expected"]) and (c["got"] or c["error"]), c
    assert f"hint: {ex.hint}" in text and "FAILS" in text
    # never the reference solution: no line of the fenced reference code is printed
    source = ws.region_text(ws.PACKAGE_DIR, ws.find_regions()[name])
    for line in source.splitlines():
        code = line.split("#")[0].strip()
        if len(code) > 25:
            assert code not in text, f"{name}: the verdict shows reference code {code!r}"


# ------------------------------------------------------------------ the command line
def course_page_table() -> str:
    """The "Every exercise" table of docs/exercises.md, as the registry has it."""
    def cell(text):
        return text.replace("|", "\\|")
    rows = ["| exercise | equation | module: function | what the student writes | tests |",
            "|---|---|---|---|---|"]
    for ex in EXERCISES:
        module = ex.module.removeprefix("genmodels/").removesuffix(".py").replace("/", ".")
        rows.append(f"| `{ex.name}` | {cell(ex.eq)} | `{module}`: `{'`, `'.join(ex.functions)}` "
                    f"| {cell(ex.what)} | {len(ex.tests)} |")
    return "\n".join(rows)


def test_the_course_page_lists_every_exercise():
    """docs/exercises.md's table of exercises is the registry's, row for row (name, equation,
    module and functions, what, number of tests); the exercises without a small case are named."""
    page = (ws.REPO_DIR / "docs" / "exercises.md").read_text()
    table = course_page_table()
    assert table in page, f"docs/exercises.md: the table of exercises should read\n{table}"
    for ex in EXERCISES:
        assert f"| `{ex.name}` | {ex.eq.replace('|', chr(92) + '|')} |" in page, ex.name
    intro = page[page.index("## Every exercise"):page.index(table)]
    assert sorted(re.findall(r"except `([\w.]+)`", intro)) == sorted(
        e.name for e in EXERCISES if not e.cases)
    # "Exercises that use others": each clause names an exercise with what it uses
    uses = page[page.index("Exercises that use others"):page.index("## Adding an exercise")]
    clauses = [set(re.findall(r"`([\w]+\.[\w]+)`", c)) for c in uses.split(";")]
    for ex in EXERCISES:
        for u in ex.uses:
            assert any({ex.name, u} <= c for c in clauses), f"docs/exercises.md: {ex.name} uses {u}"
    assert set().union(*clauses) == {n for e in EXERCISES if e.uses for n in (e.name, *e.uses)}


def test_list_shows_every_exercise_with_equation_module_and_status():
    code, out, _ = run_cli("list")
    assert code == 0
    for ex in EXERCISES:
        (row,) = [ln for ln in out.splitlines() if ln.split()[:1] == [ex.name]]
        assert ex.eq in row and ex.functions[0] in row and row.rstrip().endswith("ready")


def test_unknown_exercise_is_a_usage_error_with_close_names(tmp_path):
    code, _, err = run_cli("make", "vae.kal", "--out", str(tmp_path / "ws"))
    assert code == 2 and "unknown exercise 'vae.kal'" in err and "vae.kl" in err
    assert not (tmp_path / "ws").exists()
    code, _, err = run_cli("check", "attention", "--workspace", str(tmp_path))
    assert code == 2 and "not an exercise workspace" in err
    code, _, err = run_cli("list", "--workspace", str(tmp_path / "nowhere"))
    assert code == 2 and "not an exercise workspace" in err
    code, _, _ = run_cli("frobnicate")
    assert code == 2


def test_make_refuses_to_overwrite_a_workspace(tmp_path):
    assert run_cli("make", "gan.value", "--out", str(tmp_path))[0] == 0
    # the workspace's fences carry no declarations (the planted mistake would give code away)
    for ex in EXERCISES:
        text = (tmp_path / ex.module).read_text()
        assert all(not r.declaration for r in ws.parse_markers(text, ex.module)), ex.module
        assert f"`{ex.mistake[0]}`" not in text and ex.hint not in text, ex.name
    code, _, err = run_cli("make", "gan.value", "--out", str(tmp_path))
    assert code == 2 and "exists" in err


def test_whole_course_mode_prints_a_table_and_list_shows_statuses(tmp_path):
    """``make gan`` + one exercise solved: ``check --all`` tabulates, ``list`` follows it."""
    code, out, _ = run_cli("make", "gan", "--out", str(tmp_path))
    assert code == 0 and "3 exercise(s)" in out
    readme = (tmp_path / "README.md").read_text()
    assert "gan.generator_loss" in readme and "genmodels-exercise check" in readme
    # the student solved gan.value, got gan.discriminator_loss wrong, has not started the third
    fill_in_reference(tmp_path, [BY_NAME["gan.value"]])
    path = BY_NAME["gan.value"].module
    text = ws.apply_mistake((tmp_path / path).read_text(), path, BY_NAME["gan.discriminator_loss"])
    text = ws.replace_regions(text, path, {"gan.generator_loss": ws.stub_line(BY_NAME["gan.generator_loss"])})
    (tmp_path / path).write_text(text)
    code, out, _ = run_cli("check", "--all", "--workspace", str(tmp_path))
    assert code == 1
    rows = {ln.split()[0]: ln.split()[-1] for ln in out.splitlines() if ln.startswith("gan.")}
    assert rows == {"gan.value": "PASS", "gan.discriminator_loss": "FAIL",
                    "gan.generator_loss": "STUB"}, out
    assert "1/3 exercises pass" in out
    code, out, _ = run_cli("list", "--workspace", str(tmp_path))
    status = {ln.split()[0]: ln.split()[-1] for ln in out.splitlines() if ln.startswith("gan.")}
    assert status == {"gan.value": "passing", "gan.discriminator_loss": "failing",
                      "gan.generator_loss": "stub"}
    assert run_cli("check", "gan.value", "--workspace", str(tmp_path))[0] == 0


# ------------------------------------------------------------------ grades for an LMS
#: the fields of Gradescope's autograder results.json (its "Autograder Specifications" page):
#: top level score / output / visibility / stdout_visibility / tests; per test score, max_score,
#: status, name, number, output, visibility
GRADESCOPE_TOP = {"score": (int, float), "output": str, "visibility": str,
                  "stdout_visibility": str, "tests": list}
GRADESCOPE_TEST = {"score": (int, float), "max_score": (int, float), "status": str, "name": str,
                   "number": str, "output": str, "visibility": str}


def validate_gradescope(doc: dict) -> None:
    """results.json against Gradescope's documented fields, types and values."""
    from genmodels.exercise.lms import VISIBILITIES
    assert set(doc) <= set(GRADESCOPE_TOP), set(doc) - set(GRADESCOPE_TOP)
    for k, t in GRADESCOPE_TOP.items():
        assert isinstance(doc[k], t), (k, doc[k])
    assert doc["visibility"] in VISIBILITIES and doc["stdout_visibility"] in VISIBILITIES
    for test in doc["tests"]:
        assert set(test) <= set(GRADESCOPE_TEST), set(test) - set(GRADESCOPE_TEST)
        for k, t in GRADESCOPE_TEST.items():
            assert isinstance(test[k], t), (k, test[k])
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITIES
        assert 0 <= test["score"] <= test["max_score"]
    assert doc["score"] == pytest.approx(sum(t["score"] for t in doc["tests"]))
    assert len({t["name"] for t in doc["tests"]}) == len(doc["tests"])


def test_points_are_declared_once_with_a_default():
    assert all(e.points == registry.DEFAULT_POINTS for e in EXERCISES if "points" not in dict(
        next(r for r in ws.find_regions()[e.name] if r.declaration).declaration))
    text = ("def f():\n    # >>> exercise gan.x: eq. 1\n    # what: w\n    # hint: h\n"
            "    # mistake: `1` -> `2`\n    # points: 2.5\n    return 1\n    # <<< exercise gan.x\n")
    region = registry.parse_markers(text, "genmodels/gan/x.py")[0]
    assert dict(region.declaration)["points"] == "2.5"


def test_course_grades_stub_reference_copied_and_mistakes(course):
    """The whole course, graded for an LMS from the session's three workspaces: stubs earn 0;
    the reference bodies earn every point when the teacher accepts them and nothing (COPIED)
    otherwise; each planted mistake loses exactly its exercise's points."""
    from genmodels.exercise import lms
    stub = lms.grade([course["stub"][n] for n in NAMES], course["paths"]["stub"])
    assert {g.status for g in stub} == {"STUB"} and sum(g.score for g in stub) == 0
    ref = [course["reference"][n] for n in NAMES]
    full = lms.grade(ref, course["paths"]["reference"], accept_reference=True)
    top = sum(e.points for e in EXERCISES)
    assert {g.status for g in full} == {"PASS"} and sum(g.score for g in full) == top
    copied = lms.grade(ref, course["paths"]["reference"])
    assert {g.status for g in copied} == {"COPIED"} and sum(g.score for g in copied) == 0
    assert "byte for byte" in copied[0].output
    doc = lms.gradescope(full)
    validate_gradescope(doc)
    assert doc["score"] == top and len(doc["tests"]) == len(NAMES)
    for name in NAMES:        # a planted mistake in `name` alone: the total loses its points
        results = [course["mistake"][n] if n == name else course["reference"][n] for n in NAMES]
        graded = lms.grade(results, course["paths"]["reference"], accept_reference=True)
        assert sum(g.score for g in graded) == top - BY_NAME[name].points, name
        assert [g.exercise for g in graded if g.status != "PASS"] == [name]


def test_grade_refuses_checks_that_imported_another_genmodels(course, tmp_path):
    """A result whose checks ran on the installed library (not the workspace) earns nothing."""
    from genmodels.exercise import lms
    r = course["reference"][NAMES[0]]
    g = lms.grade([r], tmp_path, accept_reference=True)[0]    # tmp_path: not where it imported from
    assert g.status == "ERROR" and g.score == 0 and "not the workspace's genmodels" in g.output


def test_summaries_and_points_file(course, tmp_path):
    from genmodels.exercise import lms
    names = NAMES[:3]
    points_file = tmp_path / "points.json"
    points_file.write_text(json.dumps({names[0]: 4, names[1]: 0.5}))
    points = lms.load_points(points_file)
    graded = lms.grade([course["reference"][n] for n in names], course["paths"]["reference"],
                       points, accept_reference=True)
    assert [g.max_score for g in graded] == [4.0, 0.5, BY_NAME[names[2]].points]
    s = lms.summary(graded)
    assert s["score"] == s["max_score"] == 4.5 + BY_NAME[names[2]].points
    rows = list(csv.DictReader(StringIO(lms.summary_csv(graded))))
    assert [r["exercise"] for r in rows] == names and rows[0]["score"] == "4.0"
    for bad in ({"nope.x": 1}, {names[0]: -1}, {names[0]: "2"}, [1]):
        points_file.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="points file"):
            lms.load_points(points_file)


def test_classroom_workflow_has_a_graded_step_per_exercise_and_the_reporter():
    import yaml

    from genmodels.exercise import lms
    exercises = [BY_NAME[n] for n in NAMES[:4]]
    doc = yaml.safe_load(lms.classroom_workflow(exercises, {NAMES[0]: 3}))
    steps = doc["jobs"]["run-autograding-tests"]["steps"]
    graded = [s for s in steps if s.get("uses", "").startswith(
        "classroom-resources/autograding-command-grader")]
    assert [s["with"]["test-name"] for s in graded] == NAMES[:4]
    assert graded[0]["with"]["max-score"] == 3 and graded[1]["with"]["max-score"] == 1
    assert all(s["with"]["command"].startswith(f"genmodels-exercise check {s['with']['test-name']} "
                                                "--workspace . --format json") for s in graded)
    reporter = steps[-1]
    assert reporter["uses"].startswith("classroom-resources/autograding-grading-reporter")
    ids = [s["id"] for s in graded]
    assert reporter["with"]["runners"] == ",".join(ids)
    assert set(reporter["env"]) == {f"{i.upper()}_RESULTS" for i in ids}


@pytest.mark.slow
def test_lms_grading_end_to_end_through_the_command_line(tmp_path):
    """make gan → Gradescope results.json with 0 points → the reference bodies back: COPIED
    (0) unless the teacher accepts them (3 of 3) → one planted mistake: 2 of 3 → a teacher's
    hidden tests with a stricter check decide instead of the workspace's → the classroom
    workflow is written."""
    work = tmp_path / "ws"
    assert run_cli("make", "gan", "--out", str(work))[0] == 0
    out = tmp_path / "results.json"

    def gradescope(*extra):
        code, text, err = run_cli("check", "--all", "--workspace", str(work), "--format",
                                  "gradescope", "--output", str(out), *extra)
        doc = json.loads(out.read_text())
        validate_gradescope(doc)
        return code, doc

    code, doc = gradescope()
    assert code == 1 and doc["score"] == 0 and len(doc["tests"]) == 3
    fill_in_reference(work, [BY_NAME[n] for n in ("gan.value", "gan.discriminator_loss",
                                                  "gan.generator_loss")])
    code, doc = gradescope()
    assert code == 1 and doc["score"] == 0 and "byte for byte" in doc["tests"][0]["output"]
    code, doc = gradescope("--accept-reference")
    assert code == 0 and doc["score"] == 3
    path = BY_NAME["gan.value"].module
    (work / path).write_text(ws.apply_mistake((work / path).read_text(), path, BY_NAME["gan.value"]))
    code, doc = gradescope("--accept-reference")
    assert code == 1 and doc["score"] == 2
    assert [t["status"] for t in doc["tests"] if t["name"].startswith("gan.value")] == ["failed"]
    # hidden tests: the teacher's copy of the tests, one of them made to fail for everyone
    hidden = tmp_path / "teacher" / "tests"
    shutil.copytree(ws.REPO_DIR / "tests", hidden, ignore=shutil.ignore_patterns("__pycache__"))
    (hidden / "test_gan_equations.py").write_text(
        (hidden / "test_gan_equations.py").read_text() +
        '\n\n@pytest.mark.exercise("gan.generator_loss")\ndef test_hidden_extra():\n'
        '    assert False, "the teacher\'s hidden check"\n')
    code, doc = gradescope("--accept-reference", "--tests", str(hidden))
    assert doc["score"] == 1 and not (work / cli.HIDDEN).exists()
    assert "hidden check" in next(t["output"] for t in doc["tests"]
                                  if t["name"].startswith("gan.generator_loss"))
    code, text, _ = run_cli("classroom", "--workspace", str(work))
    assert code == 0 and (work / ".github/workflows/classroom.yml").exists()
    # the workflow's command for one exercise: its exit code is the grade (COPIED: 1)
    import yaml
    steps = yaml.safe_load((work / ".github/workflows/classroom.yml").read_text())["jobs"][
        "run-autograding-tests"]["steps"]
    command = next(s["with"]["command"] for s in steps if s.get("id") == "gan-generator-loss")
    argv = command.split()[1:]
    argv[argv.index("--workspace") + 1] = str(work)
    argv[argv.index("--output") + 1] = str(tmp_path / "g.json")
    assert run_cli(*argv)[0] == 1          # copied back from the library: no points
    assert json.loads((tmp_path / "g.json").read_text())["exercises"][0]["status"] == "COPIED"


@pytest.mark.slow
def test_a_mistake_costs_only_its_own_exercise_not_those_that_call_it(tmp_path):
    """vae.elbo calls vae.kl: with a planted mistake in vae.kl, the elbo is graded again on the
    library's kl (isolation) and keeps its points; without isolation it would fail too."""
    work = tmp_path / "ws"
    vae = [e for e in EXERCISES if e.family == "vae"]
    ws.make_workspace(vae, work)
    fill_in_reference(work, vae)
    path = BY_NAME["vae.kl"].module
    (work / path).write_text(ws.apply_mistake((work / path).read_text(), path, BY_NAME["vae.kl"]))
    plain = {r.exercise.name: r.passed for r in grader.check(work, vae, isolate=False)}
    assert not plain["vae.kl"] and not plain["vae.elbo"]          # the mistake propagates
    code, text, _ = run_cli("check", "--all", "--workspace", str(work), "--format", "json",
                            "--accept-reference")
    rows = {g["exercise"]: g["status"] for g in json.loads(text)["exercises"]}
    assert rows["vae.kl"] == "FAIL" and rows["vae.elbo"] == "PASS", rows
    assert [n for n, s in rows.items() if s != "PASS"] == ["vae.kl"]


# ------------------------------------------------------------------ milestones
def test_milestone_names_the_stub_that_stops_the_run(tmp_path):
    """A workspace with the VAE's exercises stubbed: the milestone's run stops at the first stub
    it calls and says which, and the run imported the workspace's genmodels."""
    from genmodels.exercise import milestone
    work = ws.make_workspace([e for e in EXERCISES if e.family == "vae"], tmp_path / "ws")
    res = milestone.run("vae", work, tmp_path / "run", extra=["trainer.max_steps=2",
                                                              "trainer.scheduler.warmup_steps=0"])
    assert res["status"] == "stub" and "vae.reparameterize" in res["message"], res["message"]
    assert Path(res["imported"]["genmodels"]).is_relative_to(work.resolve())
    assert run_cli("train", "nope", "--workspace", str(work))[0] == 2


#: the docs page of each family (the diffusion family's exercises are named ddpm.*)
FAMILY_PAGE = {"ddpm": "diffusion"}


def test_every_family_has_a_milestone_and_its_docs_page_names_it():
    """One milestone per exercise family; the family's docs page and the course page's table give
    its command and the number it asks for (the table in docs/exercises.md is read, not trusted)."""
    from genmodels.exercise import milestone
    assert sorted([*milestone.MILESTONES, *milestone.NOT_YET]) == sorted(FAMILIES)
    assert not set(milestone.MILESTONES) & set(milestone.NOT_YET)
    course = (ws.REPO_DIR / "docs/exercises.md").read_text()
    for fam in milestone.NOT_YET:                     # said on the course page, and by the command
        assert re.search(rf"`{fam}`[^\n]*no milestone yet", course), fam
        assert run_cli("train", fam, "--workspace", ".")[0] == 2
    for fam, m in milestone.MILESTONES.items():
        page = (ws.REPO_DIR / f"docs/{FAMILY_PAGE.get(fam, fam)}.md").read_text()
        assert f"genmodels-exercise train {fam} --workspace" in page, fam
        row = re.search(rf"^\| `{fam}` \| `{m.experiment}`[^|]*\| [^|]*{re.escape(m.goal.replace('<=', '≤').replace('>=', '≥'))} (\S+)",
                        course, re.M)
        assert row, f"docs/exercises.md has no milestone row for {fam} ({m.experiment})"
        assert float(row.group(1).replace(",", "")) == m.target, (fam, row.group(0))
        assert m.experiment in page, fam


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gan", "flow", "audio", "speech"])
def test_short_milestones_pass_on_the_reference_bodies(tmp_path, family):
    """The GAN, flow, audio and speech milestones (one to four CPU-minutes each) reach their
    targets on a workspace holding the reference bodies, trained on the workspace's own modules."""
    from genmodels.exercise import milestone
    exs = [e for e in EXERCISES if e.family == family]
    work = ws.make_workspace(exs, tmp_path / "ws")
    fill_in_reference(work, exs)
    res = milestone.run(family, work, tmp_path / "run", extra=["trainer.progress=false"])
    assert res["status"] == "PASS", res["message"]
    for ex in exs:
        name = ex.module.removesuffix(".py").replace("/", ".")
        assert Path(res["imported"][name]).is_relative_to(work.resolve()), name


@pytest.mark.slow
def test_milestone_passes_on_the_reference_bodies(tmp_path):
    """The VAE milestone on a workspace holding the reference bodies reaches its target with the
    workspace's own modules (the same config and seed as experiments/vae_digits)."""
    from genmodels.exercise import milestone
    vae = [e for e in EXERCISES if e.family == "vae"]
    work = ws.make_workspace(vae, tmp_path / "ws")
    fill_in_reference(work, vae)
    res = milestone.run("vae", work, tmp_path / "run", extra=["trainer.progress=false"])
    assert res["status"] == "PASS", res["message"]
    assert res["value"] == pytest.approx(23.21, abs=0.02)
    assert Path(res["imported"]["genmodels.vae.losses"]).is_relative_to(work.resolve())


@pytest.mark.slow
def test_isolation_never_grades_an_exercise_on_the_librarys_copy_of_itself(tmp_path):
    """ddpm.sample calls ddpm.p_mean_variance: with a mistake in p_mean_variance both fail at
    first; re-checked, sample passes on the library's p_mean_variance while p_mean_variance is
    still graded on the student's own code (FAIL), never on the library's."""
    work = tmp_path / "ws"
    ddpm = [e for e in EXERCISES if e.family == "ddpm" and e.module == "genmodels/diffusion/ddpm.py"]
    ws.make_workspace(ddpm, work)
    fill_in_reference(work, ddpm)
    path = BY_NAME["ddpm.p_mean_variance"].module
    (work / path).write_text(ws.apply_mistake((work / path).read_text(), path,
                                              BY_NAME["ddpm.p_mean_variance"]))
    rows = {r.exercise.name: r.status for r in grader.check(work, ddpm)}
    assert rows["ddpm.p_mean_variance"] == "FAIL" and rows["ddpm.sample"] == "PASS", rows
    assert [n for n, s in rows.items() if s != "PASS"] == ["ddpm.p_mean_variance"], rows


@pytest.mark.slow
def test_milestone_is_not_a_pass_when_a_wrong_formula_still_trains(tmp_path):
    """PPO solves CartPole even with the planted mistake in rl.gae: the milestone reaches the
    number but says "not yet" and names the exercise that fails its checks (never a false
    pass); with the reference bodies it passes."""
    from genmodels.exercise import milestone
    rl = [e for e in EXERCISES if e.family == "rl"]
    work = ws.make_workspace(rl, tmp_path / "ws")
    fill_in_reference(work, rl)
    assert milestone.run("rl", work, tmp_path / "ok")["status"] == "PASS"
    path = BY_NAME["rl.gae"].module
    (work / path).write_text(ws.apply_mistake((work / path).read_text(), path, BY_NAME["rl.gae"]))
    res = milestone.run("rl", work, tmp_path / "wrong")
    assert res["value"] >= 475 and res["status"] == "not yet", res["message"]
    assert "rl.gae" in res["message"]
