// One choice's sampled tokens → what the client sees: OpenAI deltas (from a parser of the server's
// output mapping, chat-output.ts), stop strings applied to the answer, log-probabilities of the
// answer's tokens, and token counts.
// Streamed and whole responses are both built from these steps, so they cannot drift apart.
import type { ChatDelta } from '../wire/chat-completions.ts';
import type { ChatDeltaStream } from '../harmony/harmony-to-chat.ts';
import { isSpecialToken, specialTokenText, tokenBytes } from '../harmony/tokens.ts';
import type { TokenChoice } from '../engine/runtime-api.ts';
import { StopFilter } from './stop-filter.ts';

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

const lossy = new TextDecoder();
const utf8 = new TextEncoder();

function describeToken(token: number, logprob: number): TopLogprob {
  const bytes = isSpecialToken(token) ? utf8.encode(specialTokenText(token)) : (tokenBytes(token) ?? new Uint8Array());
  return { token: lossy.decode(bytes), logprob, bytes: [...bytes] };
}

export class ChoiceOutput {
  /** Tokens that count: up to and including the one that completed a stop string. */
  completionTokens = 0;
  /** Of those, the ordinary tokens of reasoning (analysis) messages. */
  reasoningTokens = 0;
  /** A stop string completed: the answer is over, later tokens are ignored. */
  stopped = false;
  private readonly filter: StopFilter | undefined;
  /** Answer-token log-probabilities not yet sent, each with the answer byte offset where its token ends. */
  private readonly pending: Array<{ end: number; entry: LogprobEntry }> = [];
  private answerBytes = 0;
  private releasedBytes = 0;

  constructor(
    private readonly stream: ChatDeltaStream,
    stop: readonly string[],
    private readonly withLogprobs: boolean,
  ) {
    this.filter = stop.length > 0 ? new StopFilter(stop) : undefined;
  }

  push(choice: TokenChoice): ChoiceStep {
    if (this.stopped) return { deltas: [], logprobs: [] };
    this.completionTokens++;
    const raw = this.stream.push(choice.token);
    const kind = isSpecialToken(choice.token) ? undefined : this.stream.currentKind;
    if (kind === 'reasoning') this.reasoningTokens++;
    if (kind === 'content' && this.withLogprobs) {
      const entry = { ...describeToken(choice.token, choice.logprob!), top_logprobs: (choice.topLogprobs ?? []).map((t) => describeToken(t.token, t.logprob)) };
      this.answerBytes += entry.bytes.length;
      this.pending.push({ end: this.answerBytes, entry });
    }
    return this.step(raw);
  }

  /** Whether any tool call was shown (`<|call|>` after no call header is not a tool call). */
  get hasToolCalls(): boolean {
    return this.stream.hasToolCalls;
  }

  /** The end of generation: closes an open message and releases held-back text. */
  finish(): ChoiceStep {
    if (this.stopped) return { deltas: [], logprobs: [] };
    const step = this.step(this.stream.finish());
    const held = this.filter?.flush();
    if (held) step.deltas.push({ content: held });
    step.logprobs.push(...this.pending.splice(0).map((p) => p.entry));
    return step;
  }

  private step(raw: ChatDelta[]): ChoiceStep {
    const deltas: ChatDelta[] = [];
    for (const d of raw) {
      if (d.content === undefined || this.filter === undefined || d.content === '') {
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
    // Log-probabilities follow the answer text: sent once their token's text is, dropped if it never is.
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.end <= this.releasedBytes) n++;
    const logprobs = this.pending.splice(0, n).map((p) => p.entry);
    if (this.stopped) this.pending.length = 0;
    return { deltas, logprobs };
  }
}
