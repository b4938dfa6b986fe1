"""Follow-up questions made standalone: by the chat model when there is one, else by rules;
and what a follow-up is searched with.

Measured on bench/followups.jsonl (bench/bench_condense.py, 20 news pairs): searching with the
question before the follow-up joined to it put the evidence in the top 5 for 20 pairs (rules:
18; the follow-up alone: 13), while answering the rules' rewrite quoted the evidence for 10
(answering the follow-up as typed: 5). So the rewrite is answered and the join is searched.
"""

import re
from collections.abc import Callable, Iterable

from qa.chat.rules import condense_with_rules, needs_context
from qa.citations import strip_markers
from qa.prompts import render_two_messages
from qa.types import Answer, Turn
from qa.words import content_words, words

PROMPT_ANSWER_CHARS = 400
MAX_STANDALONE_CHARS = 400
CONDENSE_TEMPLATE = "condense.txt"
QUESTION_WORD = re.compile(r"\b(who|whom|whose|what|when|where|why|which|how)\b", re.I)
# Labels small models put before their reply, echoing the prompt.
REPLY_LABEL = re.compile(
    r"^\W*(?:(?:rewritten|standalone|last) question|question|user|assistant)\s*:\s*", re.I
)


def standalone_question(
    turns: list[Turn], question: str, complete: Callable[[str, str], str] | None
) -> str:
    """`question` as it reads without `turns`; unchanged when it already stands alone."""
    question = question.strip()
    if not turns or not needs_context(question):
        return question
    if callable(complete):
        rewritten = condense_with_model(complete, turns, question)
        # Small models answer the question or drift off it; the rules are safer then.
        if rewritten and keeps_the_question(question, rewritten):
            return rewritten
    return condense_with_rules(turns, question)


def search_text(turns: list[Turn], question: str, standalone: str) -> str:
    """What a question is searched with: as asked when it stands alone; a follow-up after the
    question before it, whose words find the passages a pronoun cannot."""
    if not turns or standalone == question.strip():
        return standalone
    return f"{turns[-1].standalone} {question.strip()}"


def condense_with_model(
    complete: Callable[[str, str], str], turns: list[Turn], question: str
) -> str | None:
    """The model's standalone question, or None when its reply is not a usable question."""
    system, user = condense_prompt(turns, question)
    return clean_rewrite(complete(system, user))


def condense_prompt(turns: Iterable[Turn], question: str) -> tuple[str, str]:
    """System and user messages asking for a standalone question (the turns are the memory)."""
    history = "\n".join(
        f"User: {turn.standalone}\nAssistant: {answer_summary(turn.answer)}" for turn in turns
    )
    return render_two_messages(CONDENSE_TEMPLATE, history=history, question=question)


def answer_summary(answer: Answer) -> str:
    text = " ".join(strip_markers(answer.text).split())
    if len(text) <= PROMPT_ANSWER_CHARS:
        return text
    return text[: PROMPT_ANSWER_CHARS - 1].rsplit(" ", 1)[0] + "…"


def keeps_the_question(question: str, rewritten: str) -> bool:
    """Whether a rewrite still asks the question: same question word, most of its words."""
    asked, kept = content_words(question), content_words(rewritten)
    if asked and 2 * len(asked & kept) < len(asked):
        return False
    question_word = QUESTION_WORD.search(question)
    return question_word is None or question_word.group().lower() in words(rewritten)


def clean_rewrite(reply: str) -> str | None:
    """The first line of the reply, without a label or quotes around it."""
    for line in reply.strip().splitlines():
        line = REPLY_LABEL.sub("", line.strip())
        line = line.strip().strip("\"'“”`").strip()
        if line:
            return line if len(line) <= MAX_STANDALONE_CHARS else None
    return None
