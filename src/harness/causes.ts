// One cause, one finding (spec/properties.md "Causes"): each failure is given the circumstance its
// evidence shows — a prefix-cache hit on the wrong side only, requests running together, stream
// against JSON, a hang, a contract rule — and the summary leads with the causes, each with the
// properties that showed it and how many differing pairs their evidence held, instead of one
// separately titled failure per property.
import { overlap, type Recording } from './record.ts';
import { cachedTokens } from './rules/response.ts';
import { problemKey, type Violation } from './violation.ts';

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
    const problem = problemKey(v.problems?.[0] ?? v.kind);
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

/**
 * What one failing run held besides its headline violation: every failing violation (pair) by
 * cause, and the identical requests both answered with nothing cached (the server's own
 * `cached_tokens` 0 on both sides) — how many such cold pairs there were and how many differed.
 */
export interface Evidence {
  pairs: Record<string, number>;
  coldPairs: number;
  coldDiffered: number;
}

/**
 * The evidence of a run from all its failing violations (rules/index.ts `allViolations`); the cold
 * runs of its requests (`baseline`, by request key), where it had them, are cold pairs too.
 */
export function evidenceOf(rec: Recording, violations: readonly Violation[], baseline?: ReadonlyMap<string, unknown>): Evidence {
  const pairs: Record<string, number> = {};
  for (const v of violations) {
    const key = causeOf(rec, v).key;
    pairs[key] = (pairs[key] ?? 0) + 1;
  }
  const cold = (i: number | undefined) => {
    const e = i !== undefined && i >= 0 ? rec.entries[i] : undefined;
    return e !== undefined && !e.baseline && !e.obs.cancelled && e.obs.status === 200 && cachedTokens(e.obs) === 0;
  };
  const firstOf = new Map<string, number>();
  let coldPairs = 0;
  for (const [i, e] of rec.entries.entries()) {
    if (e.call.raw !== undefined) continue;
    const ref = firstOf.get(e.key);
    if (ref === undefined) firstOf.set(e.key, i);
    else if (cold(ref) && cold(i)) coldPairs++;
    if (baseline?.has(e.key) && cold(i)) coldPairs++;
  }
  // A reference of -1 is the cold run (rules/cache.ts).
  const coldDiffered = violations.filter((v) => v.entries.length === 2 && (v.entries[0] === -1 || cold(v.entries[0])) && cold(v.entries[1])).length;
  return { pairs, coldPairs, coldDiffered };
}

export interface CauseGroup extends Cause {
  properties: string[];
  /** Failing pairs of this cause in the groups' evidence (at least one per property). */
  pairs: number;
  /** Identical requests answered with the cache cold on both sides, and how many of those differed. */
  coldPairs: number;
  coldDiffered: number;
}

/** What groupByCause reads of a property's result (search.ts PropertyResult). */
interface Failed {
  property: string;
  status: string;
  failure?: { recording: Recording; violation: Violation; evidence?: Evidence };
}

/** The failed properties grouped by cause, most properties first. */
export function groupByCause(results: readonly Failed[]): CauseGroup[] {
  const groups = new Map<string, CauseGroup>();
  for (const r of results) {
    if (r.status !== 'failed' || !r.failure) continue;
    const cause = causeOf(r.failure.recording, r.failure.violation);
    const group = groups.get(cause.key) ?? { ...cause, properties: [], pairs: 0, coldPairs: 0, coldDiffered: 0 };
    const evidence = r.failure.evidence;
    group.properties.push(r.property);
    group.pairs += Math.max(1, evidence?.pairs[cause.key] ?? 0);
    group.coldPairs += evidence?.coldPairs ?? 0;
    group.coldDiffered += evidence?.coldDiffered ?? 0;
    groups.set(cause.key, group);
  }
  return [...groups.values()].sort((a, b) => b.properties.length - a.properties.length);
}

/** A group's count in words: `7 properties (…), 23 pairs; never with the cache cold (12 cold pairs agreed)`. */
export function groupCount(g: CauseGroup): string {
  const who = g.properties.length === 1 ? g.properties[0]! : `${g.properties.length} properties (${g.properties.join(', ')})`;
  return `${who}, ${pairsText(g)}`;
}

/** The pairs of a group, and for a cache hit what the cold pairs did: `23 pairs; never with the cache cold (…)`. */
export function pairsText(g: CauseGroup): string {
  const pairs = `${g.pairs} ${g.pairs === 1 ? 'pair' : 'pairs'}`;
  const cold =
    g.key !== 'cache-hit' || g.coldPairs === 0
      ? ''
      : g.coldDiffered === 0
        ? `; never with the cache cold (${g.coldPairs} cold ${g.coldPairs === 1 ? 'pair' : 'pairs'} agreed)`
        : `; also with the cache cold (${g.coldDiffered} of ${g.coldPairs} cold pairs differed)`;
  return `${pairs}${cold}`;
}
