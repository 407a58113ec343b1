// The field probe (spec/properties.md "Request fields"): refused, ignored, used and accepted, each
// told apart on a target made to refuse or ignore particular fields.
import { describe, expect, test } from 'vitest';
import { ChatClient } from './client.ts';
import { leftOutFields, probeFields } from './probe-fields.ts';
import { answerOf } from './answer.ts';
import type { Transport } from './transport.ts';

interface Quirks {
  refuse?: string[];
  ignore?: string[];
}

/** A tiny deterministic target: answers "Four is the answer" (one token per word) and honours what it does not ignore. */
function target({ refuse = [], ignore = [] }: Quirks): Transport {
  const reply = (status: number, json: unknown) => ({
    status,
    headers: { 'content-type': 'application/json' },
    body: (async function* () {
      yield new TextEncoder().encode(JSON.stringify(json));
    })(),
  });
  return {
    name: 'quirky',
    async send(x) {
      const body = JSON.parse(x.body ?? '{}') as Record<string, unknown>;
      const refused = Object.keys(body).find((k) => refuse.includes(k) || refuse.includes(`${k}:${JSON.stringify(body[k])}`));
      if (refused) return reply(400, { error: { message: `no ${refused}`, type: 'invalid_request_error', param: refused, code: null } });
      const honours = (k: string) => k in body && !ignore.includes(k);
      let words = ['Four', ' is', ' the', ' answer'];
      const budget = Number(honours('max_completion_tokens') ? body.max_completion_tokens : (body.max_tokens ?? 16));
      words = words.slice(0, budget);
      if (honours('stop')) {
        const text = words.join('');
        const cut = text.indexOf(String(body.stop));
        if (cut >= 0) words = [text.slice(0, cut)];
      }
      const content = words.join('');
      const n = honours('n') ? Number(body.n) : 1;
      const logprobs = honours('logprobs')
        ? {
            content: words.map((w) => ({
              token: w,
              logprob: -0.5,
              bytes: [...Buffer.from(w)],
              top_logprobs: honours('top_logprobs') ? [{ token: w, logprob: -0.5 }] : [],
            })),
          }
        : null;
      // A forced tool choice (required, or a function by name) is answered with a call.
      const forced = honours('tool_choice') && body.tool_choice !== 'auto' && body.tool_choice !== 'none';
      const message = forced
        ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{}' } }] }
        : { role: 'assistant', content };
      const finish = forced ? 'tool_calls' : 'stop';
      const choices = Array.from({ length: n }, (_, index) => ({ index, message, logprobs: forced ? null : logprobs, finish_reason: finish }));
      return reply(200, {
        object: 'chat.completion',
        choices,
        usage: { prompt_tokens: 5, completion_tokens: words.length * n, total_tokens: 5 + words.length * n },
      });
    },
    sendOrigin: async () => reply(404, {}),
  };
}

const base = { model: 'm', messages: [{ role: 'user', content: 'What is 2+2?' }], max_tokens: 8, temperature: 0 };

async function probeOn(quirks: Quirks) {
  const client = new ChatClient(target(quirks), { includeUsage: false, timeoutMs: 5000 });
  const first = answerOf(await client.chat({ body: base, stream: false }));
  return probeFields(client, base, first, { accepted: true, reproducible: true });
}

describe('probeFields', () => {
  test('a target that honours everything: used where the effect shows, accepted elsewhere, nothing left out', async () => {
    const fields = await probeOn({});
    expect(fields).toMatchObject({
      n: 'used',
      stop: 'used',
      logprobs: 'used',
      top_logprobs: 'used',
      max_completion_tokens: 'used',
      top_p: 'accepted',
      user: 'accepted',
    });
    expect(leftOutFields(fields)).toEqual([]);
  });

  test('refused fields and values (a 4xx) and ignored ones (no effect) are told apart and left out', async () => {
    const fields = await probeOn({
      refuse: ['logit_bias', 'response_format:{"type":"json_object"}'],
      ignore: ['n', 'stop', 'max_completion_tokens', 'top_logprobs', 'tool_choice'],
    });
    expect(fields).toMatchObject({
      logit_bias: 'refused',
      'response_format:json_object': 'refused',
      'response_format:text': 'accepted',
      response_format: 'accepted',
      n: 'ignored',
      stop: 'ignored',
      max_completion_tokens: 'ignored',
      top_logprobs: 'ignored',
      logprobs: 'used',
      'tool_choice:required': 'ignored',
      'tool_choice:named': 'ignored',
      'tool_choice:none': 'used',
    });
    expect(leftOutFields(fields).sort()).toEqual(
      [
        'logit_bias (refused)',
        'response_format json_object (refused)',
        'n (ignored)',
        'stop (ignored)',
        'max_completion_tokens (ignored)',
        'top_logprobs (ignored)',
        'tool_choice required (ignored)',
        'tool_choice named (ignored)',
      ].sort(),
    );
  });
});
