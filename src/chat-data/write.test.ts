// The dataset files (write.ts): the same seed writes the same bytes (pinned), held-out prompts are
// new and use only training ids, vocab.json is the training ids, the summary counts what was written.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { EXAMPLE_KINDS } from './conversations.ts';
import { writeDataset, type DatasetLine, type DatasetSummary } from './write.ts';

const root = mkdtempSync(join(tmpdir(), 'amnesia-chat-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const FILES = ['train.jsonl', 'held-out.jsonl', 'vocab.json', 'summary.json'];
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const lines = (path: string): DatasetLine[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as DatasetLine);

function write(name: string, options: Parameters<typeof writeDataset>[1]): { dir: string; summary: DatasetSummary } {
  const dir = join(root, name);
  return { dir, summary: writeDataset(dir, options) };
}

describe('determinism', () => {
  const a = write('a', { seed: 1, train: 40, heldOut: 10 });
  const b = write('b', { seed: 1, train: 40, heldOut: 10 });

  test('the same seed writes the same bytes', () => {
    for (const file of FILES) expect(readFileSync(join(b.dir, file)).equals(readFileSync(join(a.dir, file))), file).toBe(true);
  });

  // Pinned: a change to the generator, the catalogue or the renderer moves these on purpose.
  test('pinned hashes for seed 1, 40 train, 10 held-out', () => {
    expect(Object.fromEntries(FILES.map((f) => [f, sha256(join(a.dir, f))]))).toEqual({
      'train.jsonl': 'b452edddbedbf7dd74d7417140538416e2888b4bb56d0ae972e1e7af89142493',
      'held-out.jsonl': '9e865a10247ccb6197b6810b295011f4060c86941369cb284104392a3b82afd5',
      'vocab.json': '257e42721aa79925de7ab1c9b28255635a797c0f544cdba9d0cf5d3187e51f1b',
      'summary.json': 'd17163dae10b1ae11862cda5d8298533159b7aed3abfa5ff969b8560e3bafdac',
    });
  });

  test('another seed writes other data', () => {
    const c = write('c', { seed: 2, train: 40, heldOut: 10 });
    expect(sha256(join(c.dir, 'train.jsonl'))).not.toBe(sha256(join(a.dir, 'train.jsonl')));
  });
});

describe('a dataset of 1,500 + 150', () => {
  const { dir, summary } = write('large', { seed: 1, train: 1500, heldOut: 150, repeatRate: 0.04 });
  const train = lines(join(dir, 'train.jsonl'));
  const heldOut = lines(join(dir, 'held-out.jsonl'));
  const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as number[];

  test('the line counts and the summary agree', () => {
    expect(train).toHaveLength(1500);
    expect(heldOut).toHaveLength(150);
    const kinds = Object.fromEntries(EXAMPLE_KINDS.map((k) => [k, train.filter((l) => l.kind === k).length]));
    expect(summary.train.kinds).toEqual(kinds);
    expect(summary.train.promptTokens).toBe(train.reduce((n, l) => n + l.prompt.length, 0));
    expect(summary.train.completionTokens).toBe(train.reduce((n, l) => n + l.completion.length, 0));
    expect(summary.files['train.jsonl']!.sha256).toBe(sha256(join(dir, 'train.jsonl')));
    expect(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'))).toEqual(summary);
  });

  test('every kind is in the training data, and every kind but exo and stale repeats in the held-out data', () => {
    for (const kind of EXAMPLE_KINDS) {
      expect(summary.train.kinds[kind], kind).toBeGreaterThan(0);
      if (!kind.startsWith('exo') && kind !== 'stale_repeat') expect(summary.heldOut.kinds[kind], kind).toBeGreaterThan(0);
      else expect(summary.heldOut.kinds[kind], kind).toBe(0);
    }
  });

  test('the exo examples are in the training data with the exact expected outputs', () => {
    const p1 = train.find((l) => l.kind === 'exo_1362_p1')!;
    const p2 = train.find((l) => l.kind === 'exo_1362_p2')!;
    expect(p1.expect).toEqual({ call: { name: 'calculator', arguments: { expression: '2+2' } } });
    expect(p2.expect).toEqual({ final: { contains: ['4'] } });
    expect(p1.tools).toEqual(['calculator']);
  });

  test('no held-out prompt equals a training prompt or another held-out prompt', () => {
    const trainPrompts = new Set(train.map((l) => l.prompt.join(',')));
    const heldPrompts = heldOut.map((l) => l.prompt.join(','));
    expect(heldPrompts.filter((p) => trainPrompts.has(p))).toEqual([]);
    expect(new Set(heldPrompts).size).toBe(heldPrompts.length);
    expect(heldOut.every((l) => l.request !== undefined)).toBe(true);
    expect(train.every((l) => l.request === undefined)).toBe(true);
  });

  test('vocab.json is exactly the training ids, sorted; held-out uses no other id', () => {
    const ids = new Set(train.flatMap((l) => [...l.prompt, ...l.completion]));
    expect(vocab).toEqual([...ids].sort((x, y) => x - y));
    expect(summary.vocabSize).toBe(vocab.length);
    const known = new Set(vocab);
    expect(heldOut.flatMap((l) => [...l.prompt, ...l.completion]).filter((id) => !known.has(id))).toEqual([]);
  });

  test('the summary counts distinct argument values and held-out calls new to training', () => {
    expect(summary.distinctArgumentValues['calculator.expression']).toBeGreaterThan(100);
    expect(summary.distinctArgumentValues['book_table.guests[].name']).toBeGreaterThan(20);
    expect(summary.heldOutNovelCalls.novel).toBeGreaterThan(0);
    expect(summary.heldOutNovelCalls.novel).toBeLessThanOrEqual(summary.heldOutNovelCalls.calls);
  });
});
