// One choice's sampled tokens → what the client sees: OpenAI deltas (from a parser of the server's
// output mapping, chat-output.ts), stop strings applied to the answer, log-probabilities of the
// answer's tokens, and token counts.
// Streamed and whole responses are both built from these steps, so they cannot drift apart.
import type { ChatDelta } from '../wire/chat-completions.ts';
import type { ChatDeltaStream } from '../harmony/harmony-to-chat.ts';
import { isSpecialToken, specialTokenText, tokenBytes } from '../harmony/tokens.ts';
import type { TokenChoice } from '../engine/runtime-api.ts';
import { StopFilter, stopStrings } from './stop-filter.ts';

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface LogprobEntry extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** What one token (or the end) adds: deltas to send, and the log-probabilities they carry. */
export interface ChoiceStep {
  deltas: ChatDelta[];
  logprobs: LogprobEntry[];
}

/** A sampled token as the output mapping tags it: one object per sampling, so a token is one entry. */
export interface SampledToken {
  readonly choice: TokenChoice;
}

const lossy = new TextDecoder();
const utf8 = new TextEncoder();

function describeToken(token: number, logprob: number): TopLogprob {
  const bytes = isSpecialToken(token) ? utf8.encode(specialTokenText(token)) : (tokenBytes(token) ?? new Uint8Array());
  return { token: lossy.decode(bytes), logprob, bytes: [...bytes] };
}

/** What failpoints make choices share across requests (a correct server shares nothing). */
export interface SharedOutputState {
  /** Failpoint stop-accumulates: the server-wide stop list (see `stopStrings`). */
  stops?: string[] | undefined;
  /** Failpoint logprob-offset: how many log-probability entries were sent, counted across requests. */
  logprobCursor?: { sent: number } | undefined;
}

/** An answer-token log-probability not yet sent: its entry, and the answer byte offset where its bytes end. */
interface PendingEntry {
  sampled: SampledToken;
  entry: LogprobEntry;
  end: number;
}

export class ChoiceOutput {
  /** Tokens that count: up to and including the one that completed a stop string. */
  completionTokens = 0;
  /** Of those, the ordinary tokens of reasoning (analysis) messages. */
  reasoningTokens = 0;
  /** A stop string completed: the answer is over, later tokens are ignored. */
  stopped = false;
  private toolCalls = false;
  private readonly filter: StopFilter | undefined;
  private readonly pending: PendingEntry[] = [];
  /** Bytes of answer text the parser emitted (before stop strings), and of those shown so far. */
  private answerBytes = 0;
  private releasedBytes = 0;
  private last: SampledToken | undefined;
  /** Log-probability entries this choice has released (counted for the logprob-offset failpoint). */
  private releasedEntries = 0;

  constructor(
    private readonly stream: ChatDeltaStream<SampledToken>,
    stop: readonly string[],
    private readonly withLogprobs: boolean,
    private readonly shared: SharedOutputState = {},
  ) {
    const stops = stopStrings(stop, shared.stops); // Failpoint stop-accumulates
    this.filter = stops.length > 0 ? new StopFilter(stops) : undefined;
  }

  push(choice: TokenChoice): ChoiceStep {
    if (this.stopped) return { deltas: [], logprobs: [] };
    this.completionTokens++;
    const sampled: SampledToken = { choice };
    this.last = sampled;
    const raw = this.stream.push(choice.token, sampled);
    const kind = isSpecialToken(choice.token) ? undefined : this.stream.currentKind;
    if (kind === 'reasoning') this.reasoningTokens++;
    this.spell();
    return this.step(raw);
  }

  /** Whether any tool call was shown (`<|call|>` after no call header is not a tool call). */
  get hasToolCalls(): boolean {
    return this.toolCalls;
  }

  /** The end of generation: closes an open message and releases held-back text. */
  finish(): ChoiceStep {
    if (this.stopped) return { deltas: [], logprobs: [] };
    const raw = this.stream.finish();
    this.spell();
    const step = this.step(raw);
    const held = this.filter?.flush();
    if (held) step.deltas.push({ content: held });
    step.logprobs.push(...this.unsent(this.pending.splice(0).map((p) => p.entry)));
    return step;
  }

  /**
   * Log-probability entries for the answer bytes the parser attributed to tokens: the bytes of an
   * entry are the ones it spells (its token's own, unless the answer shows them otherwise), so the
   * entries always spell the answer.
   */
  private spell(): void {
    for (const { tag, bytes } of this.stream.takeSpelling()) {
      const sampled = tag ?? this.last!;
      this.answerBytes += bytes.length;
      const last = this.pending.at(-1);
      if (last !== undefined && last.sampled === sampled) {
        // More bytes of the same token (the rest of a character split across tokens).
        last.entry.bytes.push(...bytes);
        last.entry.token = lossy.decode(Uint8Array.from(last.entry.bytes));
        last.end = this.answerBytes;
        continue;
      }
      if (!this.withLogprobs) continue;
      const { choice } = sampled;
      this.pending.push({
        sampled,
        entry: {
          token: lossy.decode(bytes),
          logprob: choice.logprob ?? 0,
          bytes: [...bytes],
          top_logprobs: (choice.topLogprobs ?? []).map((t) => describeToken(t.token, t.logprob)),
        },
        end: this.answerBytes,
      });
    }
  }

  private step(raw: ChatDelta[]): ChoiceStep {
    const deltas: ChatDelta[] = [];
    for (const d of raw) {
      if (d.content === undefined || this.filter === undefined || d.content === '') {
        if (d.tool_calls !== undefined) this.toolCalls = true;
        deltas.push(d);
        continue;
      }
      const { text, stopped } = this.filter.push(d.content);
      if (text) deltas.push({ content: text });
      this.releasedBytes += utf8.encode(text).length;
      if (stopped) {
        this.stopped = true;
        break;
      }
    }
    if (this.filter === undefined) this.releasedBytes = this.answerBytes;
    return { deltas, logprobs: this.unsent(this.release()) };
  }

  /**
   * Failpoint logprob-offset: the "sent so far" count is the server's, not this choice's, so
   * entries below the count some earlier request reached are taken as sent already and dropped.
   */
  private unsent(entries: LogprobEntry[]): LogprobEntry[] {
    const cursor = this.shared.logprobCursor;
    if (cursor === undefined) return entries;
    return entries.filter(() => {
      const index = this.releasedEntries++;
      if (index < cursor.sent) return false;
      cursor.sent = index + 1;
      return true;
    });
  }

  /** Log-probabilities follow the answer text: sent once their token's text is (all of it), cut where a stop string cuts it. */
  private release(): LogprobEntry[] {
    const out: LogprobEntry[] = [];
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      if (p.end > this.releasedBytes) {
        const shown = this.releasedBytes - (p.end - p.entry.bytes.length);
        if (this.stopped && shown > 0) out.push(truncate(p.entry, shown));
        break;
      }
      // A token whose character is unfinished may get more bytes.
      if (!this.stopped && this.stream.isSpelling(p.sampled)) break;
      out.push(p.entry);
      this.pending.shift();
    }
    if (this.stopped) this.pending.length = 0;
    return out;
  }
}

/** An entry cut by a stop string: the bytes the answer shows. */
function truncate(entry: LogprobEntry, length: number): LogprobEntry {
  const bytes = entry.bytes.slice(0, length);
  return { ...entry, token: lossy.decode(Uint8Array.from(bytes)), bytes };
}
