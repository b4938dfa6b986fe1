import json

import pytest

from qa.loading import load_articles

RUSSIAN = (
    "Президент России заявил в понедельник, что переговоры продолжатся на следующей неделе. "
    "Всё идёт по плану, сообщил Кремль."
)
UKRAINIAN = "Україна отримала нову допомогу від партнерів, повідомив міністр у четвер."
BULGARIAN = "България ще получи нови средства от Европейския съюз, съобщи министърът в сряда."
SHORT_RUSSIAN = "Привет, как дела? Это тест."
MOSCOW = "Москва, 5 марта. Власти города объявили о новых мерах поддержки малого бизнеса."


def test_ingest_reads_each_part_of_a_half_utf8_half_latin1_file_and_notes_it(run, tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    path = folder / "mixed.txt"
    first = "Le café de la gare a rouvert lundi, "
    second = "et la crème brûlée y coûte trois euros."
    path.write_bytes(first.encode("utf-8") + second.encode("latin-1"))

    result = run("ingest", folder, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == ["mixed"] and report["skipped"] == []
    (note,) = report["notes"]
    assert note["location"] == str(path)
    assert note["message"] == (
        "encoding unclear (partly UTF-8): read as UTF-8 where the bytes are valid UTF-8 "
        "and the other 4 non-ASCII bytes as cp1252"
    )
    (listed,) = json.loads(run("sources", "--json").stdout)
    assert listed["title"] == first + second


def test_a_utf8_byte_order_mark_before_latin1_text_is_read_as_latin1_with_a_note(tmp_path):
    path = tmp_path / "marked.txt"
    text = "Le café était fermé."
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("latin-1"))
    result = load_articles([path])
    assert [a.text for a in result.articles] == [text]
    assert [n.message.split(":")[0] for n in result.notes] == ["encoding unclear (partly UTF-8)"]


@pytest.mark.parametrize(
    ("parts", "encoding"),
    [
        (["Die Straße in Zürich ist offen. ", "Die Straße in Zürich ist offen."], "cp1252"),
        ([RUSSIAN + " ", RUSSIAN], "cp1251"),
        ([RUSSIAN + " ", RUSSIAN], "koi8-u"),
        ([RUSSIAN + " " + RUSSIAN + " ", "Всё идёт по плану."], "cp1251"),
    ],
)
def test_each_part_of_a_utf8_and_8_bit_file_is_read_in_its_encoding(tmp_path, parts, encoding):
    first, second = parts
    path = tmp_path / "joined.txt"
    path.write_bytes(first.encode() + second.encode(encoding))
    result = load_articles([path])
    assert [a.text for a in result.articles] == [first + second]
    (note,) = result.notes
    assert note.message.endswith(f" non-ASCII bytes as {encoding}")


def test_a_single_byte_text_with_a_chance_utf8_pair_is_not_read_as_mixed(tmp_path):
    # "идёт" in KOI8-R holds the bytes C4 A3, which are also UTF-8 for "ģ".
    path = tmp_path / "koi8.txt"
    path.write_bytes(RUSSIAN.encode("koi8_r"))
    result = load_articles([path])
    assert [a.text for a in result.articles] == [RUSSIAN]
    assert result.notes == []


def test_ingest_reads_a_koi8_r_article(run, tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "moscow.txt").write_bytes(MOSCOW.encode("koi8_r"))
    result = run("ingest", folder, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["added"], report["skipped"], report["notes"]) == (["moscow"], [], [])
    (listed,) = json.loads(run("sources", "--json").stdout)
    assert listed["title"] == "Москва, 5 марта."


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (RUSSIAN, "koi8_r"),
        (MOSCOW, "koi8_r"),
        (SHORT_RUSSIAN, "koi8_r"),
        (SHORT_RUSSIAN, "cp1251"),
        (RUSSIAN, "iso8859_5"),
        (UKRAINIAN, "koi8_u"),
        (UKRAINIAN + " " + RUSSIAN, "koi8_u"),
        (UKRAINIAN, "cp1251"),
        (BULGARIAN, "cp1251"),
    ],
)
def test_cyrillic_text_in_an_8_bit_code_page_is_decoded(tmp_path, text, encoding):
    path = tmp_path / "news.txt"
    path.write_bytes(text.encode(encoding))
    result = load_articles([path])
    assert result.skipped == []
    assert [a.text for a in result.articles] == [text]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Ο πρωθυπουργός δήλωσε τη Δευτέρα ότι οι συνομιλίες θα συνεχιστούν.", "cp1253"),
        ("Le café était fermé.", "latin-1"),
    ],
)
def test_other_8_bit_texts_are_not_taken_for_cyrillic(tmp_path, text, encoding):
    path = tmp_path / "news.txt"
    path.write_bytes(text.encode(encoding))
    (article,) = load_articles([path]).articles
    assert article.text == text


def test_an_undetectable_encoding_is_skipped_without_naming_a_guess(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(0x80, 0x100)) * 4)
    (skipped,) = load_articles([path]).skipped
    assert skipped.reason == (
        "not UTF-8, and its encoding could not be detected; convert the file to UTF-8"
    )
