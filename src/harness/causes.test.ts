// Causes from the evidence, and failures grouped by them.
import { describe, expect, test } from 'vitest';
import { causeOf, evidenceOf, groupByCause, groupCount } from './causes.ts';
import { equality } from './rules/equality.ts';
import { chatJson, recording, streamed, completion, violationsOf } from './rules/testing.ts';
import type { PropertyResult } from './search.ts';
import type { Recording } from './record.ts';

const usage = (cached: number) => ({ prompt_tokens: 10, completion_tokens: 2, total_tokens: 12, prompt_tokens_details: { cached_tokens: cached } });
const firstViolation = (rec: Recording) => violationsOf(equality, rec)[0]!;

describe('causeOf', () => {
  test('the wrong answer reused cached tokens and the right one did not: a prefix-cache hit', () => {
    const rec = recording([{ obs: chatJson([{ content: 'a' }], { usage: usage(0) }) }, { obs: chatJson([{ content: 'b' }], { usage: usage(8) }) }]);
    expect(causeOf(rec, firstViolation(rec)).key).toBe('cache-hit');
    // Both hit the cache: the hit is not what sets them apart.
    const both = recording([{ obs: chatJson([{ content: 'a' }], { usage: usage(8) }) }, { obs: chatJson([{ content: 'b' }], { usage: usage(8) }) }]);
    expect(causeOf(both, firstViolation(both)).key).toBe('history');
  });

  test('stream against JSON; requests in flight together', () => {
    const stream = recording([{ obs: completion('a') }, { obs: streamed('b'), stream: true }]);
    expect(causeOf(stream, firstViolation(stream)).key).toBe('stream');
    const together = recording([
      { obs: completion('a') },
      { obs: completion('b'), at: [2, 5] },
      { obs: completion('x'), label: 'p2', at: [3, 4], body: { model: 'm', messages: [{ role: 'user', content: 'x' }] } },
    ]);
    expect(causeOf(together, firstViolation(together)).key).toBe('concurrency');
  });
});

describe('groupByCause', () => {
  test('one cause seen by several properties is one group, listing them; contract breaks group by rule and problem, numbers aside', () => {
    const rec = recording([{ obs: chatJson([{ content: 'a' }], { usage: usage(0) }) }, { obs: chatJson([{ content: 'b' }], { usage: usage(8) }) }]);
    const failed = (property: string, v = firstViolation(rec)): PropertyResult => ({
      property,
      statement: '',
      status: 'failed',
      scenarios: 1,
      asked: 1,
      requests: 2,
      ms: 1,
      failure: { scenario: rec.scenario, recording: rec, violation: v, seed: 0, path: '' },
    });
    const budget = (n: number) => ({
      ...firstViolation(rec),
      rule: 'budget',
      kind: 'budget' as const,
      class: 'contract' as const,
      problems: [`completion_tokens ${n} > max tokens 4`],
    });
    const groups = groupByCause([
      failed('history-independence'),
      failed('cache-transparency'),
      failed('truncation-consistency', budget(6)),
      failed('usage-coherence', budget(9)),
    ]);
    expect(groups.map((g) => [g.key, g.properties])).toEqual([
      ['cache-hit', ['history-independence', 'cache-transparency']],
      ['contract:budget:completion_tokens N > max tokens N', ['truncation-consistency', 'usage-coherence']],
    ]);
  });
});

describe('evidenceOf and groupCount', () => {
  const hit = recording([
    { obs: chatJson([{ content: 'a' }], { usage: usage(0) }) },
    { obs: chatJson([{ content: 'b' }], { usage: usage(8) }) },
    { obs: chatJson([{ content: 'b' }], { usage: usage(8) }) },
  ]);

  test('every failing pair counted by cause; identical requests with nothing cached on either side are the cold pairs', () => {
    const e = evidenceOf(hit, violationsOf(equality, hit));
    expect(e.pairs).toEqual({ 'cache-hit': 2 });
    expect(e).toMatchObject({ coldPairs: 0, coldDiffered: 0 });
    const cold = recording([
      { obs: chatJson([{ content: 'a' }], { usage: usage(0) }) },
      { obs: chatJson([{ content: 'a' }], { usage: usage(0) }) },
      { obs: chatJson([{ content: 'c' }], { usage: usage(0) }) },
    ]);
    expect(evidenceOf(cold, violationsOf(equality, cold))).toEqual({ pairs: { history: 1 }, coldPairs: 2, coldDiffered: 1 });
    // A cold run of the request (cache transparency's baseline) pairs with each answer that had nothing cached.
    const baseline = new Map([[cold.entries[0]!.key, 'its cold answer']]);
    expect(evidenceOf(cold, violationsOf(equality, cold), baseline)).toMatchObject({ coldPairs: 5 });
    expect(evidenceOf(hit, violationsOf(equality, hit), new Map([[hit.entries[0]!.key, 'a']]))).toMatchObject({ coldPairs: 1 });
  });

  test('the summary count: properties, pairs, and for a cache hit whether the cold pairs agreed', () => {
    const group = (coldPairs: number, coldDiffered: number) => ({
      key: 'cache-hit',
      text: '',
      properties: ['history-independence', 'cache-transparency'],
      pairs: 23,
      coldPairs,
      coldDiffered,
    });
    expect(groupCount(group(12, 0))).toBe(
      '2 properties (history-independence, cache-transparency), 23 pairs; never with the cache cold (12 cold pairs agreed)',
    );
    expect(groupCount(group(12, 3))).toBe(
      '2 properties (history-independence, cache-transparency), 23 pairs; also with the cache cold (3 of 12 cold pairs differed)',
    );
    expect(groupCount({ ...group(0, 0), properties: ['stream-equivalence'], pairs: 1 })).toBe('stream-equivalence, 1 pair');
  });
});
