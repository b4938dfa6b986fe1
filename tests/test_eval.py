import json

from qa.evaluation.testset import load_eval_set
from qa.loading import load_articles
from tests.conftest import KREMLIN_QUESTION, SEED_ARTICLE, SEEDS
from tests.servers import SERVED_MODEL, serve_scripted

SEED_SET = SEEDS / "eval" / "seed.jsonl"


def write_lines(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_seed_eval_reports_every_question_and_compares_equal_with_a_rerun(run, tmp_path):
    report_file = tmp_path / "reports" / "seed.json"
    first = run("eval", SEED_SET, "--corpus", SEEDS, "--llm", "extractive", "--out", report_file)
    assert first.exit_code == 0, first.output
    for shown in ("accuracy", "evidence hit@5", "abstention F1", "truthfulness", "unanswerable"):
        assert shown in first.stdout

    report = json.loads(report_file.read_text())
    lines = SEED_SET.read_text().splitlines()
    assert len(report["questions"]) == report["test_set"]["evaluated"] == len(lines)
    settings = report["settings"]
    assert settings["answerer"] == "extractive" and settings["store"] == "temporary"
    assert (settings["k"], settings["chunk_size"], settings["chunk_overlap"]) == (5, 900, 150)
    assert settings["embedding_model"] == "all-MiniLM-L6-v2"
    assert settings["corpus"]["articles"] == 1 and len(settings["corpus"]["sha256"]) == 64
    assert {"qa-news", "chromadb", "sentence-transformers"} <= set(settings["versions"])
    assert report["timings"]["ingest_seconds"] > 0
    overall = report["metrics"]["overall"]
    assert overall["questions"] == len(lines)
    assert 0 < overall["accuracy"] <= 1
    breakdowns = report["metrics"]["breakdowns"]
    assert set(breakdowns["answerable"]) == {"answerable", "unanswerable"}
    assert {"who", "when", "where", "what", "how_many", "two_sentences"} <= set(breakdowns["type"])

    article = load_articles([SEED_ARTICLE]).articles[0]
    rows = {row["id"]: row for row in report["questions"]}
    staff = rows["seed-howmany-staff"]
    assert "755" in staff["answer"] and staff["scores"]["outcome"] == "right"
    assert staff["retrieved"] and staff["scores"]["evidence_rank"] >= 1
    for row in rows.values():
        assert set(row["scores"]) >= {"outcome", "exact_match", "f1", "truthfulness"}
        for citation in row["citations"]:
            assert article.text[citation["start"] : citation["end"]] == citation["quote"]
    # Eval used a store of its own: nothing but the exported model (kept where it is, as a
    # later ingest would need it) is written to the configured data directory.
    home = tmp_path / "home"
    assert not home.exists() or [path.name for path in home.iterdir()] == ["models"]

    again = run("eval", SEED_SET, "--corpus", SEEDS, "--llm", "extractive", "--compare",
                report_file)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "No score changed and no question flipped." in again.stdout

    # A report from an older qa: it lacked a metric, and one question was answered otherwise.
    exact_match = report["metrics"]["overall"].pop("exact_match")
    flipped = report["questions"][0]
    outcome = flipped["scores"]["outcome"]
    flipped["scores"]["outcome"] = "abstained" if outcome != "abstained" else "wrong"
    dropped = report["questions"].pop()
    report_file.write_text(json.dumps(report))
    older = run("eval", SEED_SET, "--corpus", SEEDS, "--llm", "extractive", "--compare",
                report_file, "--json")  # fmt: skip
    assert older.exit_code == 0, older.output
    comparison = json.loads(older.stdout)["comparison"]
    assert comparison["changes"]["exact_match"]["old"] is None
    assert comparison["changes"]["exact_match"]["new"] == exact_match
    assert comparison["flips"] == [
        {"id": flipped["id"], "question": flipped["question"],
         "old": flipped["scores"]["outcome"], "new": outcome}
    ]  # fmt: skip
    assert (comparison["only_in_old"], comparison["only_in_new"]) == (0, 1)
    assert dropped["id"] not in {flip["id"] for flip in comparison["flips"]}


def test_a_model_citing_a_passage_it_does_not_quote_loses_that_citation_and_validity(
    seeded, tmp_path
):
    test_set = write_lines(
        tmp_path / "set.jsonl", {"id": "staff", "question": KREMLIN_QUESTION, "answer": "755"}
    )
    # [1] is the passage's own words; [2] vouches for words no passage holds.
    reply = (
        "The Kremlin said the U.S. must cut its embassy and consulate staff by 755 people [1]. "
        "Bananas ripen faster beside apples [2]."
    )
    out = tmp_path / "report.json"
    with serve_scripted([(200, reply)]) as server:
        result = seeded("eval", test_set, "--llm", "openai", "--base-url", server.url,
                        "--model", SERVED_MODEL, "--k", "3", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["metrics"]["overall"]["citation_validity"] == 0.5
    (row,) = report["questions"]
    assert len(row["retrieved"]) >= 2  # [2] named a passage that was there to quote
    assert row["answer"] == (
        "The Kremlin said the U.S. must cut its embassy and consulate staff by 755 people [1]. "
        "Bananas ripen faster beside apples."
    )
    (citation,) = row["citations"]
    assert "755 people" in citation["quote"]
    assert (row["scores"]["citations_valid"], row["scores"]["citation_markers"]) == (1, 2)


def test_malformed_test_set_names_each_bad_line_and_runs_nothing(run, tmp_path):
    test_set = write_lines(
        tmp_path / "bad.jsonl",
        {"question": "Who is Kurt Volker?", "answers": ["envoy"]},
        '{"question": "Where did they meet?", "answers": ["Manila"]',
        {"answers": ["755"]},
        {"question": "Is it true?", "answer": "yes", "answerable": "yes"},
    )
    result = run("eval", test_set, "--corpus", SEEDS)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "line 2: not valid JSON" in message
    assert "line 3: missing `question`" in message
    assert "line 4: `answerable` must be true or false" in message
    assert "line 1" not in message and "Traceback" not in result.output
    assert result.stdout == ""


def test_each_question_is_asked_as_of_its_date_and_min_accuracy_fails_the_run(seeded, tmp_path):
    test_set = write_lines(
        tmp_path / "dated.jsonl",
        {"id": "on-the-day", "question": KREMLIN_QUESTION, "answer": "755", "date": "2017-08-06"},
        {"id": "day-before", "question": KREMLIN_QUESTION, "answer": "755", "date": "2017-08-05"},
        {"id": "left-out", "question": KREMLIN_QUESTION, "answer": "755"},
    )
    out = tmp_path / "dated.json"
    result = seeded(
        "eval", test_set, "--limit", "2", "--json", "--out", out, "--min-accuracy", "0.9"
    )
    assert result.exit_code == 1
    metrics = json.loads(result.stdout)["metrics"]["overall"]
    assert metrics["questions"] == 2 and metrics["accuracy"] == 0.5
    assert "below --min-accuracy" in result.stderr
    rows = {row["id"]: row for row in json.loads(out.read_text())["questions"]}
    assert rows["on-the-day"]["retrieved"] and rows["on-the-day"]["scores"]["outcome"] == "right"
    assert rows["day-before"]["retrieved"] == [] and rows["day-before"]["abstained"]
    assert seeded("eval", test_set, "--limit", "1", "--min-accuracy", "0.9").exit_code == 0


def test_test_set_accepts_one_answer_or_several_and_defaults_the_rest(tmp_path):
    test_set = write_lines(
        tmp_path / "set.jsonl",
        {"question": "Who?", "answer": "Volker", "article_id": "a1", "evidence": "Volker went."},
        "",
        {"question": "When?", "answers": [], "answerable": False, "evidence_label": "gold"},
    )
    first, second = load_eval_set(test_set).questions
    assert (first.id, first.answers, first.answerable, first.article_ids) == (
        "line-1",
        ("Volker",),
        True,
        ("a1",),
    )
    assert first.evidence == ("Volker went.",)
    assert (second.id, second.answerable, second.labels["evidence_label"]) == (
        "line-3",
        False,
        "gold",
    )


def test_a_report_path_that_cannot_be_written_stops_the_run_before_it_starts(run, tmp_path):
    test_set = write_lines(
        tmp_path / "set.jsonl", {"question": KREMLIN_QUESTION, "answers": ["755"]}
    )
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for out in (tmp_path, blocker / "report.json"):
        result = run("eval", test_set, "--corpus", SEEDS, "--out", out)
        assert result.exit_code == 2, result.output
        assert f"Cannot write to {out}" in result.stderr
        assert result.stdout == "" and "Embedding" not in result.stderr


def test_eval_of_a_corpus_reuses_the_exported_model_and_never_loads_torch(run, tmp_path):
    import os
    import subprocess
    import sys

    from qa.embeddings import bundled_model_path
    from qa.onnx_embedder import cached_graph
    from qa.settings import get_settings

    # What the first ingest into a home does: export the model there, once.
    settings = get_settings()
    name = settings.embeddings.model_name
    cached_graph(name, bundled_model_path(name), settings.model_cache_dir)
    test_set = write_lines(
        tmp_path / "set.jsonl", {"question": KREMLIN_QUESTION, "answers": ["755"]}
    )
    script = (
        "import sys; from qa.cli import app\n"
        "try: app(['eval', sys.argv[1], '--corpus', sys.argv[2]])\n"
        "except SystemExit as end: assert end.code in (0, None), end.code\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(test_set), str(SEEDS)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_eval_corpus_honours_the_article_size_limit(run, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.txt").write_text(SEED_ARTICLE.read_text())
    (corpus / "long.txt").write_text("The harbour ferry sails at noon. " * 400)
    monkeypatch.setenv("QA_MAX_ARTICLE_MB", "0.01")
    out = tmp_path / "report.json"
    result = run("eval", SEED_SET, "--corpus", corpus, "--out", out)
    assert result.exit_code == 0, result.output
    (skipped,) = json.loads(out.read_text())["ingest"]["skipped"]
    assert skipped["location"].endswith("long.txt") and "QA_MAX_ARTICLE_MB" in skipped["reason"]
