#!/usr/bin/env bash
# Sends one request recorded by amnesia. AMNESIA_TARGET overrides the base URL (ending in /v1);
# OPENAI_API_KEY, when set, is sent as a bearer token.
set -euo pipefail
default_target='http://127.0.0.1:36135/v1'
url="${AMNESIA_TARGET:-$default_target}"
url="${url%/}/chat/completions"
auth=()
if [ -n "${OPENAI_API_KEY:-}" ]; then auth=(-H "Authorization: Bearer $OPENAI_API_KEY"); fi
# ${auth[@]+...}: an empty array is "unbound" under set -u in bash before 4.4 (macOS).
curl -sS "$url" -H 'Content-Type: application/json' ${auth[@]+"${auth[@]}"} --data-binary @- <<'AMNESIA_REQUEST_BODY'
{
  "model": "tiny-chat-v2-da17b516f7a6",
  "messages": [
    {
      "role": "user",
      "content": "Summarise: the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog "
    }
  ],
  "temperature": 0,
  "max_tokens": 1,
  "logit_bias": {
    "0": 19
  }
}
AMNESIA_REQUEST_BODY
