// The curl script of one request, for a bug report: runnable by anyone, against any target.

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A bash script that sends one request with curl. The body sits in a quoted heredoc, so nothing in
 * it is expanded; the delimiter cannot occur as a line of the body, because every line of
 * JSON.stringify(object, null, 2) starts with a brace, a bracket or indentation. For a stream, the
 * body gets `stream: true` and curl gets -N (no buffering).
 */
export function curlScript(baseUrl: string, body: Record<string, unknown>, stream: boolean): string {
  const sent = stream && body.stream !== true ? { ...body, stream: true } : body;
  return [
    ...scriptHead(baseUrl),
    `curl -sS${stream ? ' -N' : ''} "$url" -H 'Content-Type: application/json' \${auth[@]+"\${auth[@]}"} --data-binary @- <<'AMNESIA_REQUEST_BODY'`,
    JSON.stringify(sent, null, 2),
    'AMNESIA_REQUEST_BODY',
    '',
  ].join('\n');
}

/** A script that sends a malformed body exactly as recorded (printf of one quoted word: no expansion, no trailing newline added). */
export function curlRawScript(baseUrl: string, raw: string): string {
  return [
    ...scriptHead(baseUrl),
    `printf '%s' ${shellQuote(raw)} | curl -sS "$url" -H 'Content-Type: application/json' \${auth[@]+"\${auth[@]}"} --data-binary @-`,
    '',
  ].join('\n');
}

/** What every script starts with: the target (AMNESIA_TARGET overrides it) and the key. */
function scriptHead(baseUrl: string): string[] {
  return [
    '#!/usr/bin/env bash',
    '# Sends one request recorded by amnesia. AMNESIA_TARGET overrides the base URL (ending in /v1);',
    '# OPENAI_API_KEY, when set, is sent as a bearer token.',
    'set -euo pipefail',
    `default_target=${shellQuote(baseUrl.replace(/\/+$/, ''))}`,
    'url="${AMNESIA_TARGET:-$default_target}"',
    'url="${url%/}/chat/completions"',
    'auth=()',
    'if [ -n "${OPENAI_API_KEY:-}" ]; then auth=(-H "Authorization: Bearer $OPENAI_API_KEY"); fi',
    '# ${auth[@]+...}: an empty array is "unbound" under set -u in bash before 4.4 (macOS).',
  ];
}
