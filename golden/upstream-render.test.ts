// The 19 upstream openai/harmony rendering fixtures (golden/harmony/upstream), text for text and
// id for id, plus the test-data files they were transcribed from.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { piecesToText, piecesToTokens, renderCompletionPieces, renderConversationPieces } from '../src/harmony/render.ts';
import { withBuiltinTools } from '../src/harmony/builtin-tools.ts';
import { defaultSystemContent, type Message } from '../src/harmony/conversation.ts';

interface RenderCase {
  name: string;
  expected_file: string;
  api: string;
  auto_drop_analysis: boolean;
  messages: Message[];
  expected_text: string;
  expected_tokens_derived: number[];
}

const dir = new URL('./harmony/upstream/', import.meta.url);
const { cases } = JSON.parse(readFileSync(new URL('render_cases.json', dir), 'utf8')) as { cases: RenderCase[] };

function render(c: RenderCase) {
  const config = { autoDropAnalysis: c.auto_drop_analysis };
  return c.api.startsWith('render_conversation_for_completion')
    ? renderCompletionPieces(c.messages, 'assistant', config)
    : renderConversationPieces(c.messages, config);
}

describe('upstream harmony rendering fixtures', () => {
  test('all 19 cases are present', () => expect(cases).toHaveLength(19));

  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const pieces = render(c);
    // The test-data file, normalised the way upstream's tests compare it (CRLF → LF, trim end).
    const file = readFileSync(new URL(`test-data/${c.expected_file}`, dir), 'utf8')
      .replace(/\r\n/g, '\n')
      .trimEnd();
    expect(c.expected_text).toBe(file);
    expect(piecesToText(pieces)).toBe(c.expected_text);
    expect(piecesToTokens(pieces)).toEqual(c.expected_tokens_derived);
  });
});

describe('built-in tools', () => {
  test('withBuiltinTools reproduces the browser and python fixtures', () => {
    for (const [name, tools] of [
      ['test_browser_tool_only', { browser: true }],
      ['test_browser_and_python_tool', { browser: true, python: true }],
    ] as const) {
      const c = cases.find((x) => x.name === name)!;
      const system = withBuiltinTools({ ...defaultSystemContent(), conversation_start_date: '2025-06-28' }, tools);
      const text = piecesToText(renderCompletionPieces([{ role: 'system', content: [system] }, ...c.messages.slice(1)]));
      expect(text).toBe(c.expected_text);
    }
  });
});
