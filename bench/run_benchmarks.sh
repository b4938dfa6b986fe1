#!/usr/bin/env bash
# Score qa on the shared benchmarks, read from where they are: their texts are not ours to copy.
#
#   bench/run_benchmarks.sh [qa eval options...]     e.g. --llm openai --model gpt-4o-mini
#
# Each set is ingested into a temporary store (ingest and question times are shown apart).
# The answerer is extractive unless an --llm option says otherwise. Reports go to
# $QA_EVAL_REPORTS (default: a new temporary directory), never into the repository, since
# they quote the articles. With QA_EVAL_COMPARE=DIR each run is compared with DIR/NAME.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bench="${QA_BENCH:-../shared/bench}"
reports="${QA_EVAL_REPORTS:-$(mktemp -d -t qa-eval-XXXXXX)}"
mkdir -p "$reports"

for name in squad2 realtimeqa; do
  options=(--llm extractive --out "$reports/$name.json")
  # RealTime QA names its evidence in two ways; report both beside the whole set.
  [[ $name == realtimeqa ]] && options+=(--by evidence_label)
  if [[ -n ${QA_EVAL_COMPARE:-} && -f $QA_EVAL_COMPARE/$name.json ]]; then
    options+=(--compare "$QA_EVAL_COMPARE/$name.json")
  fi
  echo "== $name" >&2
  # Later options win, so the caller's "$@" can replace --llm extractive.
  qa eval "$bench/$name/questions.jsonl" --corpus "$bench/$name/corpus.jsonl" "${options[@]}" "$@"
done
echo "Reports in $reports" >&2
