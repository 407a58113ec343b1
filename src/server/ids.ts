// Random ids like OpenAI's: `chatcmpl-…` for responses, `call_…` for tool calls.
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random id like OpenAI's (`chatcmpl-…`, `call_…`). */
export function randomId(prefix: string, length = 24): string {
  return prefix + [...randomBytes(length)].map((b) => ALPHABET[b % ALPHABET.length]).join('');
}
