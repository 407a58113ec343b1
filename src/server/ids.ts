// Random ids like OpenAI's: `chatcmpl-…` for responses, `call_…` for tool calls.
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random id like OpenAI's (`chatcmpl-…`, `call_…`). */
export function randomId(prefix: string, length = 24): string {
  return prefix + [...randomBytes(length)].map((b) => ALPHABET[b % ALPHABET.length]).join('');
}

/**
 * Failpoint clock-ids: an id from the clock (the current second), as servers that derive request ids
 * from a timestamp do; two requests that start in the same second get the same one.
 */
export function clockId(prefix: string): string {
  return `${prefix}${Math.floor(Date.now() / 1000)}`;
}
