// Harmony benchmark: this repo's chat → harmony prompt rendering and completion parsing, against the
// anchor of what template-based servers (llama.cpp, mlx-lm) do for gpt-oss: the Hugging Face chat
// template (src/harmony/hf-chat-template.ts) rendered with @huggingface/jinja, then tokenized.
//
// Conversation: golden/chat/long-multi-turn-tool-conversation, its tool-loop episode repeated with
// distinct text and tool_call ids until the prompt is a few thousand tokens.
import { readFileSync } from 'node:fs';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { encode } from 'gpt-tokenizer/encoding/o200k_harmony';
import { chatToHarmony, renderChatPrompt, type MappingOptions } from '../src/harmony/chat-to-harmony.ts';
import type { ChatAssistantMessage, ChatMessage, ChatRequest } from '../src/wire/chat-completions.ts';
import { completionToChat } from '../src/harmony/harmony-to-chat.ts';
import { piecesToText, renderCompletionPieces } from '../src/harmony/render.ts';
import { encodeHarmonyText } from '../src/harmony/tokens.ts';
import { DEFAULT_MODEL_IDENTITY } from '../src/harmony/conversation.ts';
import { GPT_OSS_CHAT_TEMPLATE } from '../src/harmony/hf-chat-template.ts';
import { runSuite, type Row, type RunOptions, type Suite } from './suite.ts';

const GOLDEN = new URL('../golden/chat/long-multi-turn-tool-conversation/', import.meta.url);

/** The golden's options: the date is pinned so both renderings are deterministic. */
const OPTIONS: MappingOptions = JSON.parse(readFileSync(new URL('options.json', GOLDEN), 'utf8')) as MappingOptions;
const DATE = OPTIONS.currentDate ?? '2025-06-28';

/** How many copies of the golden's tool-loop episode the benchmark prompt holds. */
export const ROUNDS = 6;
/** Each round moves the episode to another subsystem, so every round's text (and tokens) differ. */
const AREAS = ['http', 'grpc', 'db', 'queue', 'cache', 'storage', 'auth', 'mail'];

export function loadGoldenRequest(): ChatRequest {
  return JSON.parse(readFileSync(new URL('request.json', GOLDEN), 'utf8')) as ChatRequest;
}

/**
 * The golden conversation is: system, an episode (user … assistant final, twice over), then a last
 * user question. The scaled request repeats the episode `rounds` times (round 0 is the original) and
 * ends with the same last user question, so turns still alternate and every tool result answers a
 * call of its own round.
 */
export function scaledRequest(rounds: number): ChatRequest {
  const base = loadGoldenRequest();
  const [system, ...rest] = base.messages;
  const last = rest.at(-1);
  if (system?.role !== 'system' || last?.role !== 'user') throw new Error('unexpected golden conversation shape');
  const episode = rest.slice(0, -1);
  if (episode.at(-1)?.role !== 'assistant') throw new Error('the golden episode should end with an assistant final');

  const messages: ChatMessage[] = [system];
  for (let r = 0; r < rounds; r++) {
    const area = AREAS[r % AREAS.length]!;
    const suffix = r < AREAS.length ? '' : ` (pass ${Math.floor(r / AREAS.length) + 1})`;
    const text = (s: string): string => (r === 0 ? s : s.replaceAll('http', area).replaceAll('HTTP', area.toUpperCase()));
    const id = (s: string): string => (r === 0 ? s : `${s}_r${r}`);
    for (const m of episode) {
      switch (m.role) {
        case 'user':
          messages.push({ role: 'user', content: text(m.content as string) + (r === 0 ? '' : suffix) });
          break;
        case 'tool':
          messages.push({ role: 'tool', tool_call_id: id(m.tool_call_id!), content: text(m.content as string) });
          break;
        case 'assistant': {
          const out: ChatAssistantMessage = { role: 'assistant', content: m.content == null ? null : text(m.content as string) };
          if (m.reasoning) out.reasoning = text(m.reasoning);
          if (m.tool_calls) {
            out.tool_calls = m.tool_calls.map((c) => ({
              id: id(c.id),
              type: 'function',
              function: { name: c.function.name, arguments: text(c.function.arguments) },
            }));
          }
          messages.push(out);
          break;
        }
        default:
          throw new Error(`unexpected ${m.role} message in the golden episode`);
      }
    }
  }
  messages.push(last);
  return { ...base, messages };
}

// ---------------------------------------------------------------------------------------------
// The anchor: the Hugging Face template, given the conversation in the shape it expects.

interface HfToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: unknown };
}
interface HfMessage {
  role: string;
  content?: string;
  thinking?: string;
  tool_calls?: HfToolCall[];
}

function plainText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p: { text?: string }) => p.text ?? '').join('');
  return '';
}

/**
 * OpenAI chat messages → the template's input, as a template server would map them per request:
 * - `reasoning` (or `reasoning_content`) → `thinking`, the only CoT field the template reads;
 * - `content: null` is left out: the template tests `"…" in message.content`, which a null breaks;
 * - a tool-call message may not carry both `content` and `thinking` (the template raises, notes
 *   §13.8): we keep `thinking` and drop the content (the golden never has both);
 * - tool-call `function.arguments` are parsed to objects, the shape HF chat templates expect
 *   (`|tojson` on the wire's JSON string would double-encode it, notes §13.6).
 */
export function toHfMessages(messages: readonly ChatMessage[]): HfMessage[] {
  return messages.map((m): HfMessage => {
    if (m.role !== 'assistant') return { role: m.role, content: plainText(m.content) };
    const out: HfMessage = { role: 'assistant' };
    const thinking = m.reasoning ?? m.reasoning_content ?? m.thinking;
    if (thinking) out.thinking = thinking;
    const content = m.content == null ? undefined : plainText(m.content);
    if (m.tool_calls && m.tool_calls.length > 0) {
      out.tool_calls = m.tool_calls.map((c) => ({
        id: c.id,
        type: 'function',
        function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) as unknown },
      }));
      if (content && !thinking) out.content = content;
    } else if (content !== undefined) {
      out.content = content;
    }
    return out;
  });
}

/** The template's other variables (it reads all of these; `strftime_now` is supplied by renderHf). */
function hfContext(request: ChatRequest): Record<string, unknown> {
  return {
    messages: toHfMessages(request.messages),
    tools: request.tools ?? [],
    add_generation_prompt: true,
    reasoning_effort: request.reasoning_effort ?? 'medium',
    model_identity: DEFAULT_MODEL_IDENTITY,
    builtin_tools: [],
    bos_token: '<|startoftext|>',
    eos_token: '<|return|>',
  };
}

/**
 * `template.render(context)` with `strftime_now` pinned to the golden's date. @huggingface/jinja's
 * Template.render() declares its own `strftime_now` (today's date) and refuses a second declaration,
 * so this does exactly what render() does — a fresh Environment, the same globals, Interpreter.run on
 * the parsed program — with a fixed-date `strftime_now`. (render()'s `range` global is left out: the
 * template does not use it.) Same work per call as render(); verified against it once below.
 */
function renderHf(template: Template, context: Record<string, unknown>): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    raise_exception: (message: string) => {
      throw new Error(message);
    },
    strftime_now: (_format: string) => DATE,
  };
  for (const [name, value] of Object.entries(globals)) env.set(name, value);
  for (const [name, value] of Object.entries(context)) env.set(name, value);
  const result = new Interpreter(env).run(template.parsed).value;
  if (typeof result !== 'string') throw new Error('the HF template did not render to a string');
  return result;
}

// ---------------------------------------------------------------------------------------------
// Completions for the parse rows, written out as harmony text after the prompt's `<|start|>assistant`.

const ANALYSIS =
  'The user wants the 5000 ms cap in retryDelay to be configurable. Currently backoff.ts exports ' +
  '`retryDelay(attempt: number): number` returning `Math.min(100 * 2 ** attempt, 5000)`. Options: add an ' +
  'optional second parameter `options: { baseMs?: number; capMs?: number }` with defaults 100 and 5000, so ' +
  'existing callers (client.ts requestWithRetry, jobs/queue.ts) keep working without changes. Alternatively a ' +
  'module-level setter, but global mutable state is worse for tests. Better: parameter with defaults, and thread ' +
  'it through `requestWithRetry(req, attempts = 3, backoff?: BackoffOptions)`. Also validate: capMs must be a ' +
  'finite number >= baseMs, otherwise throw a RangeError, since a negative cap would make sleep() resolve ' +
  'immediately and turn the retry loop into a tight loop. Should attempt be clamped? 2 ** attempt overflows to ' +
  'Infinity only for attempt > 1023, and Math.min handles Infinity, so fine. Jitter is not asked for; do not add ' +
  'it, but mention it. Keep the answer short as the instructions say: show the diff for backoff.ts and the call ' +
  'site in client.ts, and note that queue.ts imports retryDelay directly and gets the default. I have read ' +
  'backoff.ts and client.ts lines 40-52 already in this conversation, so no further tool call is needed.';

const FINAL =
  "Add an optional options object with defaults, so existing callers keep today's behaviour:\n\n" +
  '```ts\n' +
  '// src/http/backoff.ts\n' +
  'export interface BackoffOptions {\n' +
  '  /** Delay before the first retry, in ms. */\n' +
  '  baseMs?: number;\n' +
  '  /** Upper bound for any delay, in ms. */\n' +
  '  capMs?: number;\n' +
  '}\n\n' +
  'export function retryDelay(attempt: number, { baseMs = 100, capMs = 5000 }: BackoffOptions = {}): number {\n' +
  '  if (!Number.isFinite(capMs) || capMs < baseMs) throw new RangeError(`capMs must be >= baseMs, got ${capMs}`);\n' +
  '  return Math.min(baseMs * 2 ** attempt, capMs);\n' +
  '}\n' +
  '```\n\n' +
  'Then pass it through in `src/http/client.ts`:\n\n' +
  '```ts\n' +
  'async requestWithRetry(req: Request, attempts = 3, backoff: BackoffOptions = {}) {\n' +
  '  // …\n' +
  '  await sleep(retryDelay(i, backoff));\n' +
  '}\n' +
  '```\n\n' +
  '- `src/jobs/queue.ts` calls `retryDelay` directly and keeps the 5000 ms default.\n' +
  '- A cap below the base delay throws a `RangeError` instead of silently producing a tight retry loop.\n' +
  '- If you also want jitter, it fits in the same options object (e.g. `jitter: 0.2`).';

const TOOL_ANALYSIS =
  'The user wants the cap configurable. Before changing the signature I should check every caller of ' +
  'retryDelay: client.ts uses it in requestWithRetry, and the earlier search showed src/jobs/queue.ts imports it ' +
  'from ../http/backoff.ts. If queue.ts passes a second argument already, or wraps it, a new optional parameter ' +
  'could clash. Also there may be a config module (src/config.ts?) where such settings usually live; reading the ' +
  'queue first tells me how jobs configure retries. Plan: read src/jobs/queue.ts around the import and its use, ' +
  'then propose `retryDelay(attempt, { baseMs, capMs })` with defaults 100 and 5000 so nothing else changes, ' +
  'validate capMs >= baseMs, and thread the options through requestWithRetry. Other things to check while I am ' +
  'there: whether queue.ts retries jobs with its own attempt counter (then the cap may need to differ for jobs, ' +
  'which run in the background and can afford longer waits than interactive HTTP requests), whether any test in ' +
  'src/http/backoff.test.ts pins the 5000 value (those tests would need the default kept), and whether the cap ' +
  'should come from an environment variable such as RETRY_CAP_MS. Reading lines 1-60 of queue.ts should cover the ' +
  'import, the job runner and its retry handling. Keep answer short.';

const TOOL_ARGS = '{"path":"src/jobs/queue.ts","start_line":1,"end_line":60}';

export const FINAL_COMPLETION = `<|channel|>analysis<|message|>${ANALYSIS}<|end|>` + `<|start|>assistant<|channel|>final<|message|>${FINAL}<|return|>`;
export const TOOL_CALL_COMPLETION =
  `<|channel|>analysis<|message|>${TOOL_ANALYSIS}<|end|>` +
  `<|start|>assistant to=functions.read_file<|channel|>commentary <|constrain|>json<|message|>${TOOL_ARGS}<|call|>`;

// ---------------------------------------------------------------------------------------------

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`harmony bench: verification failed: ${what}`);
}

/** Builds the suite's inputs, verifies every variant once (outside the timed loop), and returns its tasks. */
export function createSuite(log: (line: string) => void = console.log): Suite {
  // The builder's round 0 is the golden request itself: it must still render to the golden tokens.
  const golden = JSON.parse(readFileSync(new URL('prompt.tokens.json', GOLDEN), 'utf8')) as number[];
  check(JSON.stringify(renderChatPrompt(scaledRequest(1), OPTIONS).tokens) === JSON.stringify(golden), 'one round ≠ golden prompt tokens');

  const request = scaledRequest(ROUNDS);
  const template = new Template(GPT_OSS_CHAT_TEMPLATE); // parsed once, as servers cache it
  const finalTokens = encodeHarmonyText(FINAL_COMPLETION);
  const toolTokens = encodeHarmonyText(TOOL_CALL_COMPLETION);

  const renderText = (): string => piecesToText(renderCompletionPieces(chatToHarmony(request, OPTIONS), 'assistant'));
  const renderTokens = () => renderChatPrompt(request, OPTIONS);
  const hfText = (): string => renderHf(template, hfContext(request));
  // Tokenizing the template's output: gpt-tokenizer's `encode(text, { allowedSpecial: 'all' })` is
  // what a template server would call, but it only recognises a special token at the very start of the
  // string (notes §15), so the result would be wrong (<|message|>, <|end|>… become ~5 text tokens each).
  // We use encodeHarmonyText instead: it splits the rendered text on the formatting-token strings, puts
  // their ids in, and encodes the text between them — the correct whole-string tokenization.
  const hfTokens = (): number[] => encodeHarmonyText(hfText());

  // Verify once.
  const text = renderText();
  const ours = renderTokens();
  check(text.length > 0 && text === ours.text, 'render (text) is empty or differs from renderChatPrompt');
  check(ours.tokens.length > 0 && text.endsWith('<|start|>assistant'), 'render + tokenize produced no prompt');
  const hf = hfText();
  const hfToks = hfTokens();
  const today = template.render(hfContext(request)).replace(/Current date: \d{4}-\d{2}-\d{2}/, `Current date: ${DATE}`);
  check(hf === today, 'pinned-date rendering differs from Template.render() beyond the date');
  check(hf.length > 0 && hf.endsWith('<|start|>assistant') && hfToks.length > 0, 'HF template produced no prompt');
  const buggy = encode(hf, { allowedSpecial: 'all' }).length;

  const parsedFinal = completionToChat(finalTokens);
  check(parsedFinal.finishReason === 'stop', 'final completion: finish reason');
  check(parsedFinal.message.content === FINAL && parsedFinal.message.reasoning === ANALYSIS, 'final completion: content/reasoning');
  const parsedTool = completionToChat(toolTokens);
  check(parsedTool.finishReason === 'tool_calls', 'tool-call completion: finish reason');
  check(parsedTool.message.reasoning === TOOL_ANALYSIS, 'tool-call completion: reasoning');
  const call = parsedTool.message.tool_calls?.[0];
  check(call?.function.name === 'read_file' && call.function.arguments === TOOL_ARGS, 'tool-call completion: the call');

  log(`harmony: ${request.messages.length} messages (${ROUNDS} rounds of the golden episode), ${request.tools?.length ?? 0} tools`);
  log(
    `harmony: prompt tokens — harmony renderer ${ours.tokens.length} (${text.length} chars), ` +
      `HF template ${hfToks.length} (${hf.length} chars); the template drops/changes things (notes §13), so they differ`,
  );
  log(`harmony: (gpt-tokenizer encode(hfText, { allowedSpecial: 'all' }) would give ${buggy} tokens: specials past the start stay text)`);
  log(`harmony: completion tokens — final answer ${finalTokens.length}, tool call ${toolTokens.length}`);

  return {
    name: 'harmony',
    anchor: 'HF template + tokenize',
    tasks: [
      { name: 'render (text)', fn: renderText },
      { name: 'render + tokenize', fn: renderTokens },
      { name: 'parse (analysis + final)', fn: () => completionToChat(finalTokens) },
      { name: 'parse (analysis + tool call)', fn: () => completionToChat(toolTokens) },
      { name: 'HF template (text only)', fn: hfText },
      { name: 'HF template + tokenize', fn: hfTokens },
    ],
  };
}

/** Runs the harmony suite on its own and returns its rows. */
export async function harmonyBench(options?: RunOptions): Promise<Row[]> {
  return runSuite(createSuite(), options);
}
