// The server's output mapping: each request's sampled tokens → the streaming harmony parser → OpenAI
// deltas (src/harmony/harmony-to-chat.ts). ChoiceOutput (choice-output.ts) adds stop strings,
// log-probabilities and token counts on top.
//
// A correct server gives every request a parser of its own. The parser-reuse failpoint
// (spec/failpoints.md) re-creates a server bug — parsers shared across requests — so it lives here,
// with the server's mapping, not in the engine: one parser for every request, created by the first.
// Its state carries over as a shared parser's would: tool-call indices continue, and a message the
// budget cut off stays open (the end of a request does not close it), so the next request's tokens
// continue it.
import { ChatDeltaStream, type ChatOutputOptions } from '../harmony/harmony-to-chat.ts';
import type { Failpoints } from '../engine/failpoints.ts';
import type { SampledToken } from './choice-output.ts';

/** The output mapping of one server (or one runtime's in-process user): hands out a parser per request. */
export class ChatOutputMapping {
  /** Failpoint parser-reuse: the parser every request shares. */
  private shared: SharedDeltaStream | undefined;

  constructor(private readonly failpoints: Pick<Failpoints, 'has' | 'callableMemo' | 'sharedDecoder'>) {}

  /** The parser for one request's tokens: a new one, or under parser-reuse the shared one. */
  stream(request: ChatOutputOptions = {}): ChatDeltaStream<SampledToken> {
    const callableMemo = this.failpoints.callableMemo(); // Failpoint callable-stale
    const decoder = this.failpoints.sharedDecoder(); // Failpoint shared-decoder
    const options = { ...request, ...(callableMemo && { callableMemo }), ...(decoder && { decoder }) };
    if (!this.failpoints.has('parser-reuse')) return new ChatDeltaStream(options);
    this.shared ??= new SharedDeltaStream(options);
    // The request's own settings (which functions it may call, log-probs); the parser state is shared.
    this.shared.configure(options);
    return this.shared;
  }
}

/** Failpoint parser-reuse: a parser nobody resets, so the end of a request leaves its state as it is. */
class SharedDeltaStream extends ChatDeltaStream<SampledToken> {
  override finish(): [] {
    return [];
  }
}
