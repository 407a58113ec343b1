// Failpoints: named switches that re-create real cross-request bugs inside the reference engine, off
// by default, set per runtime instance (tests run several in one process) or by
// AMNESIA_FAILPOINTS=a,b. Each is documented in spec/failpoints.md: the bug, the mechanism, and the
// property that catches it.
//
// `Failpoints` holds one runtime's switches and the cross-request state their bugs need (a correct
// engine has none), so the runtime's scheduler only calls its hooks. Where each failpoint acts:
//   kv-trim-noop, batch-variant   the native engine (`nativeDebug()`)
//   evict-referenced              the prefix cache (src/engine/prefix-cache.ts)
//   full-hit-no-rerun             the prefix cache, fed the last logits by the runtime
//   shared-rng, response-memo     here (`sharedUniform()`, `memoKey()`/`recall()`/`remember()`)
//   abort-desync                  the runtime, when a cancel ends a request
//   parser-reuse                  the server's output mapping (src/server/chat-output.ts)
import { Tok } from '../harmony/tokens.ts';
import type { NativeDebugOptions } from './native-api.ts';
import type { TokenChoice } from './runtime-api.ts';
import { counterUniform } from './sampler.ts';

export const FAILPOINTS = [
  'kv-trim-noop',
  'full-hit-no-rerun',
  'shared-rng',
  'parser-reuse',
  'abort-desync',
  'evict-referenced',
  'batch-variant',
  'response-memo',
] as const;

export type FailpointName = (typeof FAILPOINTS)[number];

export class UnknownFailpointError extends Error {
  override name = 'UnknownFailpointError';
}

/** Checks failpoint names; an unknown one is an error naming the known ones. */
export function parseFailpoints(names: Iterable<string>): ReadonlySet<FailpointName> {
  const out = new Set<FailpointName>();
  for (const raw of names) {
    const name = raw.trim();
    if (name === '') continue;
    if (!(FAILPOINTS as readonly string[]).includes(name)) {
      throw new UnknownFailpointError(`unknown failpoint '${name}' (known: ${FAILPOINTS.join(', ')})`);
    }
    out.add(name as FailpointName);
  }
  return out;
}

/** The failpoints named by AMNESIA_FAILPOINTS (comma-separated). */
export function failpointsFromEnv(env: NodeJS.ProcessEnv = process.env): ReadonlySet<FailpointName> {
  return parseFailpoints((env.AMNESIA_FAILPOINTS ?? '').split(','));
}

/** `user` as an ordinary o200k token: the role in a user message's header `<|start|>user<|message|>`. */
export const USER_ROLE_TOKEN = 1428;

/** The one stream every request samples from under shared-rng. */
const SHARED_RNG_SEED = 0x5eed;

/** One runtime's failpoints (created from the failpoint list) and the state their bugs carry across requests. */
export class Failpoints implements Iterable<FailpointName> {
  readonly names: ReadonlySet<FailpointName>;
  /** shared-rng: draws taken so far from the shared stream, by every request together. */
  private sharedDraws = 0;
  /** response-memo: earlier answers by their prompt's last user message. */
  private readonly answers = new Map<string, TokenChoice[]>();

  /** Throws UnknownFailpointError for an unknown name. */
  constructor(names: Iterable<string> = []) {
    this.names = parseFailpoints(names);
  }

  has(name: FailpointName): boolean {
    return this.names.has(name);
  }

  [Symbol.iterator](): Iterator<FailpointName> {
    return this.names[Symbol.iterator]();
  }

  /** kv-trim-noop and batch-variant: the native engine's debug switches. */
  nativeDebug(): NativeDebugOptions {
    return { batchVariantReduction: this.has('batch-variant'), kvTrimNoop: this.has('kv-trim-noop') };
  }

  /**
   * shared-rng: a uniform source for one request's sampler that draws from one counter shared by
   * every request, instead of `counterUniform(seed, position)`. Undefined (the sampler's own) when off.
   */
  sharedUniform(): ((position: number) => number) | undefined {
    if (!this.has('shared-rng')) return undefined;
    return () => counterUniform(SHARED_RNG_SEED, this.sharedDraws++);
  }

  /**
   * response-memo: the key a prompt's answer is remembered under (the tokens of its last user
   * message); undefined when off or the prompt has no user message.
   */
  memoKey(prompt: readonly number[]): string | undefined {
    return this.has('response-memo') ? lastUserMessageKey(prompt) : undefined;
  }

  /** response-memo: the tokens of an earlier answer remembered under `key`. */
  recall(key: string): readonly TokenChoice[] | undefined {
    return this.answers.get(key);
  }

  /** response-memo: remembers a completed answer's tokens under `key`. */
  remember(key: string, tokens: TokenChoice[]): void {
    this.answers.set(key, tokens);
  }
}

/** The tokens of the prompt's last user message, joined (the response-memo failpoint's key). */
function lastUserMessageKey(prompt: readonly number[]): string | undefined {
  for (let i = prompt.length - 3; i >= 0; i--) {
    if (prompt[i] === Tok.start && prompt[i + 1] === USER_ROLE_TOKEN && prompt[i + 2] === Tok.message) {
      const end = prompt.indexOf(Tok.end, i + 3);
      return prompt.slice(i + 3, end < 0 ? undefined : end).join(',');
    }
  }
  return undefined;
}
