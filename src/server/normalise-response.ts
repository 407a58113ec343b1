// How the API golden files (golden/api/) and the server's tests compare responses: what may
// legitimately differ between two answers to one request is replaced by a fixed placeholder
// (spec/properties.md "Normalisation"): the response id,
// `created`, `system_fingerprint`, OpenAI's `obfuscation` padding, cached prompt tokens, and
// tool-call ids (numbered in order of appearance instead). Works on a `chat.completion` and on
// each `chat.completion.chunk` of a stream.

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Normaliser {
  /** A normalised deep copy of one response object or chunk. */
  (value: unknown): unknown;
}

/**
 * A normaliser. Tool-call ids are renamed `call_0`, `call_1`, … in order of first appearance, across
 * every object passed to the same normaliser (so a stream's chunks are normalised consistently).
 */
export function normaliser(): Normaliser {
  const callIds = new Map<string, string>();
  const callId = (id: string) => {
    let out = callIds.get(id);
    if (out === undefined) callIds.set(id, (out = `call_${callIds.size}`));
    return out;
  };
  /** `top`: the response object itself; `call`: an item of a `tool_calls` array. */
  const walk = (v: unknown, top: boolean, call: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, false, false));
    if (!isObject(v)) return v;
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'obfuscation') continue;
      if (top && k === 'id' && typeof x === 'string') out[k] = 'chatcmpl-normalised';
      else if (top && k === 'created' && typeof x === 'number') out[k] = 0;
      else if (top && k === 'system_fingerprint') out[k] = x == null ? x : 'fp_normalised';
      else if (k === 'cached_tokens' && typeof x === 'number') out[k] = 0;
      else if (call && k === 'id' && typeof x === 'string') out[k] = callId(x);
      else if (k === 'tool_calls' && Array.isArray(x)) out[k] = x.map((c) => walk(c, false, true));
      else out[k] = walk(x, false, false);
    }
    return out;
  };
  return (value) => walk(value, true, false);
}

/** Normalises one object on its own. */
export function normalise(value: unknown): unknown {
  return normaliser()(value);
}
