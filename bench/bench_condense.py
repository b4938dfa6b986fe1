"""Follow-up questions in chat: what is searched and what is answered, three ways.

For every pair of bench/followups.jsonl (a first question, then a follow-up that leans on it,
and the evidence the follow-up needs), the first question is asked in a chat session, then
the follow-up is searched and answered (extractive answerer) three ways:
- as typed: the follow-up alone, for both;
- rules: the rules' standalone rewrite (qa.chat.condense), for both;
- qa chat: what `qa chat` does: the question before it joined to the follow-up is searched,
  the rewrite is answered.
Scored: the rank of the first passage holding the evidence, and whether the answer quotes it.

The corpus is the realtimeqa dev half with the seed article among it, ingested into a
temporary store unless --home holds it already (collection "followups").

    python bench/bench_condense.py --corpus ../shared/bench/realtimeqa/corpus.jsonl
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answering import Assistant  # noqa: E402
from qa.chat.condense import search_text, standalone_question  # noqa: E402
from qa.chat.session import Chat  # noqa: E402
from qa.settings import get_settings  # noqa: E402
from qa.workspace import Workspace  # noqa: E402

PAIRS = ROOT / "bench" / "followups.jsonl"
SEEDS = ROOT / "seeds"
STRATEGIES = ("as typed", "rules", "qa chat")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--home", type=Path, help="a QA_HOME that already holds the corpus")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    if args.home:
        run(args.home, args, pairs)
        return
    with tempfile.TemporaryDirectory(prefix="qa-bench-condense-") as home:
        run(Path(home), args, pairs)


def run(home: Path, args: argparse.Namespace, pairs: list[dict]) -> None:
    settings = get_settings(home=home, collection="followups", llm="extractive", k=args.k)
    workspace = Workspace(settings)
    workspace.ingest([args.corpus, SEEDS])
    assistant = workspace.assistant
    rows = [score_pair(assistant, pair, args.k) for pair in pairs]
    report(rows)


def score_pair(assistant: Assistant, pair: dict, k: int) -> dict:
    chat = Chat(assistant)
    chat.until = pair["date"]
    chat.ask(pair["first"], stream=False).answer()
    turns = list(chat.turns)
    follow = pair["followup"]
    rewrite = standalone_question(turns, follow, None)
    ways = {
        "as typed": (follow, follow),
        "rules": (rewrite, rewrite),
        "qa chat": (search_text(turns, follow, rewrite), rewrite),
    }
    row = {"id": pair["id"], "corpus": pair["corpus"], "searched": ways["qa chat"][0]}
    for name, (search, asked) in ways.items():
        passages = assistant.retrieve(search, k, as_of=pair["date"])
        ranks = [
            p.rank
            for p in passages
            if p.article_id == pair["article_id"] and holds(p.text, pair["evidence"])
        ]
        answer = assistant.answerer.answer(asked, passages, as_of=pair["date"]).answer()
        row[name] = min(ranks) if ranks else None
        row[f"{name} quotes"] = any(quotes(c.quote, pair["evidence"]) for c in answer.citations)
    return row


def holds(passage: str, evidence: str) -> bool:
    """The passage holds the evidence (the rule bench_retrieval.py scores with)."""
    passage, evidence = " ".join(passage.split()), " ".join(evidence.split())
    return passage[:200] in evidence or evidence[:200] in passage


def quotes(quote: str, evidence: str) -> bool:
    quote, evidence = " ".join(quote.split()), " ".join(evidence.split())
    return bool(quote) and (quote[:80] in evidence or evidence[:80] in quote)


def report(rows: list[dict]) -> None:
    groups = {
        "realtimeqa": [r for r in rows if r["corpus"] == "realtimeqa"],
        "seed": [r for r in rows if r["corpus"] == "seed"],
        "all": rows,
    }
    print("| pairs | way | evidence@1 | evidence@5 | answer quotes the evidence |")
    print("|---|---|---|---|---|")
    for label, group in groups.items():
        for name in STRATEGIES:
            at1 = sum(r[name] == 1 for r in group) / len(group)
            at5 = sum(r[name] is not None for r in group) / len(group)
            quoted = sum(r[f"{name} quotes"] for r in group) / len(group)
            print(f"| {label} ({len(group)}) | {name} | {at1:.2f} | {at5:.2f} | {quoted:.2f} |")


if __name__ == "__main__":
    main()
