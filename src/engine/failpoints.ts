// Failpoints: named switches that re-create real cross-request bugs inside the reference engine, off
// by default, set per runtime instance (tests run several in one process) or by
// AMNESIA_FAILPOINTS=a,b. Each is documented in spec/failpoints.md: the bug, the mechanism, and the
// property that catches it.

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
