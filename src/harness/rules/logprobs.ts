// Log-probabilities (spec/properties.md "Contract"; OpenAI: `logprobs` "whether to return log
// probabilities of the output tokens", `top_logprobs` "the most likely tokens ... at each token
// position", `bytes` "the UTF-8 bytes representation of the token ... combined to generate the
// correct text"). Per successful choice:
//
// - present iff asked: entries only when the request said `logprobs: true` (an option of an earlier
//   request sticking to this one shows here); asked, content has at least one entry;
// - every `logprob` (and alternative's) is a number ≤ 0;
// - `top_logprobs` holds at most max(top_logprobs, 1) alternatives, at least one when ≥ 1 was asked,
//   never the same alternative twice, and they are the most likely: an alternative less likely than
//   the sampled token is listed only beside the sampled token;
// - the entries spell the content (their bytes, or their tokens where there are no bytes).
import type { ChoiceAnswer } from '../answer.ts';
import { entryLabel } from '../violation.ts';
import { contractViolation, isObject, rawChoices, stopStrings, success, type Json } from './response.ts';
import type { Rule } from './rule.ts';

/** Float slack for "≤ 0" and for comparing a logprob computed twice. */
const EPSILON = 1e-6;
const TOLERANCE = 1e-4;
/**
 * Below this, logprobs are a floor, not a value: vLLM clamps −∞ to −9999.0 (serving_chat.py), SGLang
 * sends −3.4e38 for masked tokens (sglang #5761), llama.cpp the float minimum for log(0). Many tokens
 * tie there, so two alternatives with the same text and floor value are not a duplicate.
 */
const FLOOR = -1000;

const isLogprob = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v);
const isBytes = (v: unknown): v is number[] => Array.isArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255);
/** Bytes as a string of one character each, so byte sequences compare and search as strings. */
function latin1(bytes: Iterable<number>): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
const utf8 = (text: string) => latin1(new TextEncoder().encode(text));
const fromLatin1 = (s: string) => new TextDecoder().decode(Uint8Array.from(s, (c) => c.charCodeAt(0)));
const short = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
/** U+FFFD, in UTF-8 as latin1 characters. */
const REPLACEMENT = utf8('\uFFFD');

/**
 * A token a server's own markup produced rather than the answer: an end-of-turn or channel token
 * (`<|eot_id|>`, `<|return|>`, `</think>`, `<|message|>`), or one spelling nothing.
 */
const isMarkup = (text: string) => text === '' || /^<[^<>\s]*>$/.test(text);

/** Problems with one entry and its alternatives. */
function entryProblems(e: unknown, j: number, top: number | undefined): string[] {
  const at = `log-prob entry ${j}`;
  if (!isObject(e)) return [`${at} is not an object`];
  const out: string[] = [];
  if (typeof e.token !== 'string') out.push(`${at} has no token`);
  if (!isLogprob(e.logprob)) out.push(`${at} has logprob ${JSON.stringify(e.logprob)}, not a number`);
  else if (e.logprob > EPSILON) out.push(`${at} has logprob ${e.logprob} > 0`);
  const alternatives = Array.isArray(e.top_logprobs) ? e.top_logprobs : undefined;
  if (top !== undefined && top >= 1 && (alternatives === undefined || alternatives.length === 0)) out.push(`${at} has no top_logprobs (${top} asked)`);
  if (alternatives === undefined) return out;
  // llama.cpp answers 20 alternatives when top_logprobs is absent (`json_value(body, "top_logprobs", 20)`), so only an asked number bounds them.
  if (top !== undefined && alternatives.length > Math.max(top, 1)) out.push(`${at} has ${alternatives.length} top_logprobs (${top} asked)`);
  const seen = new Set<string>();
  for (const [t, alt] of alternatives.entries()) {
    if (!isObject(alt) || !isLogprob(alt.logprob)) {
      out.push(`${at}: top_logprobs[${t}] has no numeric logprob`);
      continue;
    }
    if (alt.logprob > EPSILON) out.push(`${at}: top_logprobs[${t}] has logprob ${alt.logprob} > 0`);
    // The same alternative twice (vLLM #36660: the sampled token listed again among the top k).
    const key = JSON.stringify([alt.token, alt.bytes, alt.logprob]);
    if (alt.logprob > FLOOR && seen.has(key)) out.push(`${at}: top_logprobs lists ${JSON.stringify(alt.token)} twice`);
    seen.add(key);
  }
  // The order is not the contract's (vLLM lists the sampled token first, vllm/logprobs.py), but being
  // "the most likely" is: an alternative less likely than the sampled token means the sampled token
  // is listed too (matched by its logprob: servers render tokens differently, vLLM #44319).
  const sampled = e.logprob;
  if (isLogprob(sampled)) {
    const values = alternatives.filter((a): a is Json => isObject(a) && isLogprob(a.logprob)).map((a) => a.logprob as number);
    const near = (x: number) => Math.abs(x - sampled) <= TOLERANCE * Math.max(1, Math.abs(sampled));
    const below = values.find((x) => x < sampled && !near(x));
    if (below !== undefined && !values.some(near))
      out.push(`${at}: top_logprobs lists a token at ${below}, less likely than the sampled token (${sampled}), which it leaves out`);
  }
  return out;
}

interface Spelling {
  /** What the entries spell, one character per byte (bytes) or the tokens' text. */
  text: string;
  /** Where each entry starts and ends in `text`. */
  spans: Array<[number, number]>;
  /** Each entry's own text, for telling markup tokens. */
  tokens: string[];
  /** `text` and `content` in the same unit: bytes as latin1, or the string itself. */
  content: string;
  stops: string[];
  /** `text` as a person reads it. */
  shown: string;
}

/** The entries' spelling in bytes where all have them, else in tokens; undefined where it cannot be told. */
function spellingOf(entries: Json[], content: string, stops: string[]): Spelling | undefined {
  // vLLM's --return-tokens-as-token-ids names tokens `token_id:42` (and spells bytes of that): no text to compare.
  if (entries.some((e) => typeof e.token === 'string' && /^token_id:\d+$/.test(e.token))) return undefined;
  const byBytes = entries.every((e) => isBytes(e.bytes));
  if (!byBytes && !entries.every((e) => typeof e.token === 'string')) return undefined;
  const parts = entries.map((e) => (byBytes ? latin1(e.bytes as number[]) : (e.token as string)));
  const spans: Array<[number, number]> = [];
  let at = 0;
  for (const p of parts) spans.push([at, (at += p.length)]);
  const text = parts.join('');
  const unit = byBytes ? utf8 : (s: string) => s;
  const [c, lossy] = [unit(content), byBytes ? REPLACEMENT : '\uFFFD'];
  // A token decoded on its own shows a split character as U+FFFD (vLLM's `bytes` are the UTF-8 of
  // that decoding, serving_chat.py): its real bytes are unknown, so the spelling cannot be told —
  // unless the bytes are there and the content has U+FFFD itself (the reference server's invalid bytes).
  if (byBytes ? text.includes(lossy) && !c.includes(lossy) : text.includes(lossy) || c.includes(lossy)) return undefined;
  const shown = byBytes ? fromLatin1(text) : text;
  return { text, spans, tokens: entries.map((e) => String(e.token)), content: c, stops: stops.map(unit), shown };
}

/**
 * Whether the entries spell the content. Exactly, on the reference server (spec/api.md); real
 * servers differ in ways that are allowed here, and only these:
 * - entries before the content when the choice also has reasoning or tool calls, or markup tokens
 *   came first: vLLM takes log-probs over every generated token (serving_chat.py, `output.token_ids`,
 *   harmony headers and analysis included), as does SGLang (sglang #25055);
 * - entries after it: the tool calls' tokens; the stop string's tokens (vLLM cuts the text, not the
 *   tokens), or only part of them (llama.cpp drops as many tokens as the stop string has alone);
 *   markup tokens at an entry boundary (vLLM's end-of-turn token, decoded with its special text);
 * - entries short of the content when a stop string ended it: llama.cpp's count can drop one token
 *   too many, and a token the stop string cut may carry no entry.
 */
function spells(s: Spelling, choice: ChoiceAnswer, cutByStop: boolean): boolean {
  const { text, spans, tokens, content, stops } = s;
  const other = choice.reasoning !== '' || choice.toolCalls.length > 0;
  const leadOk = (k: number) => k === 0 || other || spans.some(([a], j) => a < k && isMarkup(tokens[j]!));
  const tailOk = (from: number) => {
    const tail = text.slice(from);
    if (tail === '' || choice.toolCalls.length > 0) return true;
    if (stops.some((stop) => tail.startsWith(stop) || stop.startsWith(tail))) return true;
    const j = spans.findIndex(([a]) => a === from);
    return j >= 0 && tokens.slice(j).every(isMarkup);
  };
  const starts = content === '' ? [0, ...spans.map(([, b]) => b)] : [];
  for (let k = text.indexOf(content); content !== '' && k >= 0; k = text.indexOf(content, k + 1)) starts.push(k);
  if (starts.some((k) => leadOk(k) && tailOk(k + content.length))) return true;
  return cutByStop && [0, ...spans.map(([, b]) => b)].some((k) => leadOk(k) && content.startsWith(text.slice(k)));
}

function choiceProblems(choice: ChoiceAnswer, entries: unknown[], body: Json, k: number): string[] {
  const where = `choices[${k}]`;
  const asked = body.logprobs === true;
  const top = typeof body.top_logprobs === 'number' ? body.top_logprobs : undefined;
  if (!asked) return entries.length > 0 ? [`${where} has ${entries.length} log-prob entries, but the request did not ask for logprobs`] : [];
  const stops = stopStrings(body);
  const cutByStop = stops.length > 0 && choice.finish === 'stop';
  if (entries.length === 0) {
    // llama.cpp computes no log-probs at top_logprobs 0 (`n_probs > 0`); a stop string may leave none.
    return choice.content !== '' && top !== 0 && !cutByStop ? [`${where} has content but no log-prob entries`] : [];
  }
  const problems = entries.flatMap((e, j) => entryProblems(e, j, top).map((p) => `${where} ${p}`));
  if (problems.length > 0) return problems;
  const spelling = spellingOf(entries as Json[], choice.content, stops);
  if (spelling && !spells(spelling, choice, cutByStop))
    problems.push(`${where}: the log-prob entries spell ${short(spelling.shown)}, not the content ${short(choice.content)}`);
  return problems;
}

export const logprobs: Rule = {
  name: 'logprobs',
  *check(rec, answers) {
    for (const [i, e] of rec.entries.entries()) {
      const answer = success(e, answers, i);
      if (!answer) continue;
      const raw = rawChoices(e.obs);
      const problems = answer.choices.flatMap((choice, k) => choiceProblems(choice, raw[k]?.logprobs ?? [], e.call.body, k));
      if (problems.length > 0) yield contractViolation(logprobs, rec, 'logprobs', i, problems, answer);
    }
  },
  headline: (rec, v) => `${entryLabel(rec, v.entries[0]!)}: ${(v.problems ?? []).join('; ')}`,
};
