import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { StopFilter } from './stop-filter.ts';

/** Splits text at the given cut points (any order, any count). */
const pieces = (text: string, cuts: number[]) => {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  return [0, ...at].map((start, i) => text.slice(start, at[i] ?? text.length));
};

const alphabet = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\n'), maxLength: 40 });

test.prop([
  alphabet,
  fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'c'), minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
  fc.array(fc.nat(), { maxLength: 10 }),
])('the answer is the text cut before the first stop string, however it is split, and no sent text is part of one', (text, stops, cuts) => {
  const firstStop = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
  const expected = Number.isFinite(firstStop) ? text.slice(0, firstStop) : text;
  const filter = new StopFilter(stops);
  let sent = '';
  let stopped = false;
  for (const piece of pieces(text, cuts)) {
    const out = filter.push(piece);
    sent += out.text;
    // Nothing sent ever reaches into a stop string.
    expect(expected.startsWith(sent)).toBe(true);
    if (out.stopped) {
      stopped = true;
      break;
    }
  }
  if (!stopped) sent += filter.flush();
  expect(stopped).toBe(Number.isFinite(firstStop));
  expect(sent).toBe(expected);
});

test('text that could start a stop string is held back until it cannot', () => {
  const f = new StopFilter(['</end>']);
  expect(f.push('answer </e')).toEqual({ text: 'answer ', stopped: false });
  expect(f.push('nvelope')).toEqual({ text: '</envelope', stopped: false });
  expect(f.push(' </end> more')).toEqual({ text: ' ', stopped: true });
});

test('it cuts between code points only: no half of a surrogate pair is sent or matched', () => {
  // A stop string that begins with the second half of 😀 could match inside the pair, and holding
  // back its first half would leave the other half behind.
  const f = new StopFilter(['\ude00!']);
  expect(f.push('a😀')).toEqual({ text: 'a', stopped: false });
  expect(f.push('b')).toEqual({ text: '😀b', stopped: false });
  expect(f.push('😀!')).toEqual({ text: '😀!', stopped: false });
  expect(f.flush()).toBe('');
});
