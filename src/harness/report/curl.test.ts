// curl scripts, run with a fake curl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Body } from '../scenario.ts';
import { curlRawScript, curlScript } from './curl.ts';
import { runWithFakeCurl, TARGET } from './testing.ts';

const temp = mkdtempSync(join(tmpdir(), 'amnesia-curl-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('curlScript', () => {
  // Everything a shell or a heredoc could trip on, including lines that look like delimiters.
  const body: Body = {
    model: 'it\'s $HOME `whoami` $(id) \\ "q"',
    messages: [{ role: 'user', content: "EOF\nAMNESIA_REQUEST_BODY\n'EOF'\n${x}\r\n\t€ 😀 \u0000 \u2028" }],
    stop: ['EOF', 'AMNESIA_REQUEST_BODY'],
  };

  it('is valid bash', () => {
    const path = join(temp, 'syntax.sh');
    writeFileSync(path, curlScript(TARGET, body, true));
    execFileSync('bash', ['-n', path]);
  });

  it('sends the body byte for byte to the target, with no key unless OPENAI_API_KEY is set', () => {
    const script = curlScript(`${TARGET}/`, body, false);
    expect(script.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(script).toContain('set -euo pipefail');
    const { args, stdin } = runWithFakeCurl(temp, script);
    expect(stdin).toBe(`${JSON.stringify(body, null, 2)}\n`); // the heredoc adds the final newline
    expect(JSON.parse(stdin)).toEqual(body);
    expect(args).toContain(`${TARGET}/chat/completions`);
    expect(args).not.toContain('-N');
    expect(args.some((a) => a.startsWith('Authorization'))).toBe(false);
  });

  it('honours AMNESIA_TARGET and OPENAI_API_KEY, and streams with -N and stream: true', () => {
    const { args, stdin } = runWithFakeCurl(temp, curlScript(TARGET, body, true), { AMNESIA_TARGET: 'http://other:9/v1/', OPENAI_API_KEY: 'sk-$x y' });
    expect(args).toContain('http://other:9/v1/chat/completions');
    expect(args).toContain('-N');
    expect(args).toContain('Authorization: Bearer sk-$x y');
    expect(JSON.parse(stdin)).toEqual({ ...body, stream: true });
  });

  it('quotes a base URL with shell characters', () => {
    const { args } = runWithFakeCurl(temp, curlScript("http://h/v1?a='$(id)'", { model: 'm' }, false));
    expect(args).toContain("http://h/v1?a='$(id)'/chat/completions");
  });
});

describe('curlRawScript', () => {
  it('sends a malformed body byte for byte, nothing added or expanded', () => {
    const raw = "{\"messages\": [ 'it\\'s' $HOME `id` %s %% \n\u0000x";
    const { args, stdin } = runWithFakeCurl(temp, curlRawScript(TARGET, raw));
    expect(stdin).toBe(raw.replace('\u0000', ''));
    expect(args).toContain(`${TARGET}/chat/completions`);
  });
});
