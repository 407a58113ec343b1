// One cause, one finding (spec/properties.md "Causes"): each failure is given the circumstance its
// evidence shows — a prefix-cache hit on the wrong side only, requests running together, stream
// against JSON, a hang, a contract rule — and the summary leads with the causes, each with the
// properties that showed it, instead of one separately titled failure per property.
import { overlap, type Recording } from './record.ts';
import { cachedTokens } from './rules/response.ts';
import type { PropertyResult } from './search.ts';
import type { Violation } from './violation.ts';

export interface Cause {
  /** Groups failures: the same key, the same cause. */
  key: string;
  /** The cause in words, for the summary's first lines. */
  text: string;
}

/** The circumstance the violation's evidence shows. */
export function causeOf(rec: Recording, v: Violation): Cause {
  if (v.class === 'content-leak') return { key: 'leak', text: 'answers carry what another request had (a content leak)' };
  if (v.kind === 'hang') return { key: 'hang', text: 'requests get no complete answer (hangs)' };
  if (v.class === 'contract') {
    const problem = (v.problems?.[0] ?? v.kind).replace(/\d+(\.\d+)?/g, 'N').replace(/"[^"]*"/g, '"…"');
    return { key: `contract:${v.rule}:${problem}`, text: `the contract (${v.rule}): ${problem}` };
  }
  const [ref, bad] = v.entries;
  const offending = bad !== undefined && bad >= 0 ? rec.entries[bad] : undefined;
  const reference = ref !== undefined && ref >= 0 ? rec.entries[ref] : undefined;
  if (offending) {
    const hit = cachedTokens(offending.obs);
    const refHit = reference ? cachedTokens(reference.obs) : 0;
    if (hit !== undefined && hit > 0 && (refHit ?? 0) === 0) {
      return { key: 'cache-hit', text: 'answers change on prefix-cache hits (the wrong answer reused cached tokens; the right one did not)' };
    }
  }
  if (v.kind === 'stream') return { key: 'stream', text: 'streamed and JSON answers differ' };
  const beside = (i: number) => rec.entries.some((e, j) => j !== i && overlap(e.obs, rec.entries[i]!.obs));
  if (v.kind === 'concurrency' || (bad !== undefined && bad >= 0 && beside(bad)))
    return { key: 'concurrency', text: 'answers change when requests run together' };
  if (v.kind === 'cache') return { key: 'cold', text: 'answers differ from the same request alone on a cold server' };
  return { key: 'history', text: 'answers depend on what ran before' };
}

export interface CauseGroup extends Cause {
  properties: string[];
}

/** The failed properties grouped by cause, most properties first. */
export function groupByCause(results: readonly PropertyResult[]): CauseGroup[] {
  const groups = new Map<string, CauseGroup>();
  for (const r of results) {
    if (r.status !== 'failed' || !r.failure) continue;
    const cause = causeOf(r.failure.recording, r.failure.violation);
    const group = groups.get(cause.key) ?? { ...cause, properties: [] };
    group.properties.push(r.property);
    groups.set(cause.key, group);
  }
  return [...groups.values()].sort((a, b) => b.properties.length - a.properties.length);
}
