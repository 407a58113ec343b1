// Every golden kind, defined once: a case folder's inputs → the files it must contain. The update
// script (`npm run golden:update`) writes those files; the tests compare them and never write.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatMappingError, renderChatPrompt, type MappingOptions } from '../src/harmony/chat-to-harmony.ts';
import { completionToChat } from '../src/harmony/harmony-to-chat.ts';
import { encodeHarmonyText } from '../src/harmony/tokens.ts';

export const goldenRoot = fileURLToPath(new URL('.', import.meta.url));

export interface GoldenKind {
  /** Folder under golden/ holding one sub-folder per case. */
  folder: string;
  /** The files the case must hold, computed from its inputs. */
  expectedFiles(caseDir: string): Record<string, string>;
}

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** OpenAI request → harmony prompt (text and ids), or the error the mapping must raise. */
export const chatMapping: GoldenKind = {
  folder: 'chat',
  expectedFiles(dir): Record<string, string> {
    const request = readJson(join(dir, 'request.json'));
    const optionsFile = join(dir, 'options.json');
    const options = (existsSync(optionsFile) ? readJson(optionsFile) : {}) as MappingOptions;
    try {
      const prompt = renderChatPrompt(request, options);
      return { 'prompt.txt': prompt.text, 'prompt.tokens.json': `${JSON.stringify(prompt.tokens)}\n` };
    } catch (e) {
      if (!(e instanceof ChatMappingError)) throw e;
      return { 'error.json': json({ param: e.param, code: e.code, message: e.message }) };
    }
  },
};

/** Sampled completion (harmony text) → the OpenAI message and the SSE delta sequence. */
export const completionParsing: GoldenKind = {
  folder: 'completions',
  expectedFiles(dir) {
    // One trailing newline is the file's, not the completion's.
    const text = readFileSync(join(dir, 'completion.txt'), 'utf8').replace(/\n$/, '');
    const tokens = encodeHarmonyText(text);
    const out = completionToChat(tokens, { toolCallId: (i) => `call_${i}` });
    return {
      'completion.tokens.json': `${JSON.stringify(tokens)}\n`,
      'message.json': json({ message: out.message, finish_reason: out.finishReason }),
      'deltas.json': `[\n${out.deltas.map((d) => `  ${JSON.stringify(d)}`).join(',\n')}\n]\n`,
    };
  },
};

export const goldenKinds = [chatMapping, completionParsing];

export function caseDirs(kind: GoldenKind): string[] {
  const root = join(goldenRoot, kind.folder);
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(root, e.name))
    .sort();
}
