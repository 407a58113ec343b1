// The server's output mapping: each request's sampled tokens → the streaming harmony parser → OpenAI
// deltas (src/harmony/harmony-to-chat.ts). ChoiceOutput (choice-output.ts) adds stop strings,
// log-probabilities and token counts on top.
//
// A correct server gives every request a parser of its own. The parser-reuse failpoint
// (spec/failpoints.md) re-creates a server bug — parsers shared across requests — so it lives here,
// with the server's mapping, not in the engine: one parser for every request, created by the first.
import { ChatDeltaStream, type ChatOutputOptions } from '../harmony/harmony-to-chat.ts';
import type { FailpointName } from '../engine/failpoints.ts';

/** The output mapping of one server (or one runtime's in-process user): hands out a parser per request. */
export class ChatOutputMapping {
  /** Failpoint parser-reuse: the parser every request shares. */
  private shared: ChatDeltaStream | undefined;

  constructor(private readonly failpoints: { has(name: FailpointName): boolean }) {}

  /** The parser for one request's tokens: a new one, or under parser-reuse the shared one. */
  stream(options: ChatOutputOptions = {}): ChatDeltaStream {
    if (!this.failpoints.has('parser-reuse')) return new ChatDeltaStream(options);
    return (this.shared ??= new ChatDeltaStream(options));
  }
}
