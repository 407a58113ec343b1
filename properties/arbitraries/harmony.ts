// Random harmony conversations of text messages: every role, channels, recipients and content types
// in both places harmony allows, with any text as content. Headers only hold words harmony can parse
// back unambiguously (no whitespace; a bare content type only as `<|constrain|>…`).
import fc from 'fast-check';
import type { Message } from '../../src/harmony/conversation.ts';
import { anyText, headerWord } from '../../src/harness/arbitraries/text.ts';

const text = (t: string) => [{ type: 'text' as const, text: t }];

const plainMessage = (content: fc.Arbitrary<string>): fc.Arbitrary<Message> =>
  fc.tuple(fc.constantFrom('system' as const, 'developer' as const, 'user' as const), content).map(([role, t]) => ({ role, content: text(t) }));

const assistantMessage = (content: fc.Arbitrary<string>): fc.Arbitrary<Message> =>
  fc
    .record({
      channel: fc.oneof(fc.constantFrom('analysis', 'commentary', 'final'), headerWord),
      call: fc.option(
        fc.record({
          recipient: fc.oneof(
            headerWord.map((w) => `functions.${w}`),
            fc.constantFrom('python', 'browser.search'),
          ),
          contentType: fc.option(fc.constantFrom('<|constrain|>json', 'json', 'code'), { nil: undefined }),
        }),
        { nil: undefined },
      ),
      constrained: fc.boolean(),
      body: content,
    })
    .map(({ channel, call, constrained, body }) => {
      const m: Message = { role: 'assistant', channel, content: text(body) };
      if (call) {
        m.recipient = call.recipient;
        if (call.contentType) m.content_type = call.contentType;
      } else if (constrained) {
        m.content_type = '<|constrain|>json';
      }
      return m;
    });

const toolMessage = (content: fc.Arbitrary<string>): fc.Arbitrary<Message> =>
  fc.tuple(headerWord, fc.boolean(), content).map(([name, withChannel, body]) => {
    const m: Message = { role: 'tool', name: `functions.${name}`, recipient: 'assistant', content: text(body) };
    if (withChannel) m.channel = 'commentary';
    return m;
  });

/** A conversation of 1–8 text messages; `content` picks the text (any, or without token lookalikes). */
export const harmonyConversation = (content: fc.Arbitrary<string> = anyText()): fc.Arbitrary<Message[]> =>
  fc.array(fc.oneof(plainMessage(content), assistantMessage(content), toolMessage(content)), { minLength: 1, maxLength: 8 });
