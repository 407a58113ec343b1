import { expect, test } from 'vitest';
import { Failpoints } from '../engine/failpoints.ts';
import { ChatOutputMapping } from './chat-output.ts';

test('every request gets a parser of its own; under parser-reuse, one shared by all', () => {
  const mapping = new ChatOutputMapping(new Failpoints());
  expect(mapping.stream()).not.toBe(mapping.stream());
  const reuse = new ChatOutputMapping(new Failpoints(['parser-reuse']));
  expect(reuse.stream()).toBe(reuse.stream());
});
