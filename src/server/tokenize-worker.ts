// A worker thread of the tokenize pool (tokenize-pool.ts): encodes a prompt's rendered pieces off the
// event loop. One job at a time: { id, pieces, limit } → { id, tokens } (an Int32Array, transferred,
// or null when the prompt is more than `limit` tokens) or { id, error }.
import { parentPort } from 'node:worker_threads';
import { encodePieces } from '../harmony/tokens.ts';

export interface TokenizeJob {
  id: number;
  pieces: (string | number)[];
  limit: number;
}

export type TokenizeResult = { id: number; tokens: Int32Array | null } | { id: number; error: string };

const port = parentPort;
if (port === null) throw new Error('tokenize-worker.ts runs only as a worker thread');

port.on('message', (job: TokenizeJob) => {
  let result: TokenizeResult;
  let transfer: ArrayBuffer[] = [];
  try {
    const tokens = encodePieces(job.pieces, job.limit);
    const ids = tokens === null ? null : Int32Array.from(tokens);
    result = { id: job.id, tokens: ids };
    if (ids !== null) transfer = [ids.buffer as ArrayBuffer];
  } catch (e) {
    result = { id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
  port.postMessage(result, transfer);
});
