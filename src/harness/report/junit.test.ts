// JUnit XML for CI dashboards.
import { describe, expect, it } from 'vitest';
import type { Recording } from '../record.ts';
import { junitXml } from './junit.ts';
import { failed, flaky, recording, report, short, skipped, TARGET } from './testing.ts';

/** A small well-formedness check: balanced tags, quoted attributes, no raw `<` or stray `&`, legal characters only. */
function assertWellFormed(xml: string): void {
  expect(xml).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/);
  const body = xml.replace(/^<\?xml [^?]*\?>\n/, '');
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+);/g;
  const stack: string[] = [];
  const token = /<(\/?)([A-Za-z][\w.-]*)((?:\s+[A-Za-z][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = token.exec(body)) !== null) {
    end = token.lastIndex;
    const [, close, name, attrs, selfClosing, text] = m;
    const raw = text ?? attrs ?? '';
    expect(raw.replace(entity, ''), raw).not.toMatch(/&/);
    if (text !== undefined) continue;
    if (close) expect(stack.pop()).toBe(name);
    else if (!selfClosing) stack.push(name!);
  }
  expect(end, 'unparsed XML from here').toBe(body.length);
  expect(stack).toEqual([]);
}

describe('junitXml', () => {
  it('has one testsuite with properties, and one testcase per property', () => {
    const xml = junitXml(report);
    assertWellFormed(xml);
    expect(xml).toContain('<testsuite name="amnesia check" tests="3" failures="1" errors="0" skipped="1" time="4.710">');
    expect(xml).toContain('<property name="seed" value="42"/>');
    expect(xml).toContain(`<property name="target" value="${TARGET}"/>`);
    expect(xml).toContain(`<testcase classname="amnesia.${TARGET}" name="stream-equivalence" time="1.500"/>`);
    expect(xml).toContain('<skipped message="the target lacks flush"/>');
    expect(xml).toMatch(/<failure message="p1 at step 3 answered differently[^"]*" type="content-leak\/history">content leak — history: p1 at step 3/);
    expect(xml).toContain('the wrong answer is the answer of p2 at step 2');
    expect(xml).toContain('fast-check seed 42, path &quot;3:0:1&quot;'.replace(/&quot;/g, '"'));
  });

  it('says flaky, and gives a testcase its scenarios, bursts and overlap when there is something to say', () => {
    const xml = junitXml({ ...report, results: [flaky, short] });
    assertWellFormed(xml);
    expect(xml).toMatch(
      /<failure message="flaky: did not reproduce: p1 at step 3 answered differently[^"]*" type="content-leak\/history">flaky: did not reproduce\./,
    );
    expect(xml).toContain('<property name="flaky" value="did not reproduce"/>');
    expect(xml).toContain('<property name="bursts" value="20"/>\n        <property name="bursts-overlapped" value="18"/>');
    expect(xml).toContain(
      '<property name="scenarios" value="12"/>\n        <property name="asked" value="25"/>\n        <property name="stopped" value="time budget"/>',
    );
  });

  it('escapes markup and quotes, and strips characters XML 1.0 cannot hold', () => {
    const nasty = `a <b> & "c" 'd' \u0001\u0000\uFFFE\uD800 e\n\tf 😀`;
    // The message is rendered from the recording, so the nasty text goes in as the requests' name.
    const named: Recording = { ...recording, entries: recording.entries.map((e) => ({ ...e, label: nasty })) };
    const xml = junitXml({
      ...report,
      model: nasty,
      results: [
        { ...failed, property: nasty, failure: { ...failed.failure!, recording: named } },
        { ...skipped, reason: nasty },
      ],
    });
    assertWellFormed(xml);
    expect(xml).toContain('value="a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;  e&#10;&#9;f 😀"');
    expect(xml).toContain('<skipped message="a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;  e&#10;&#9;f 😀"/>');
    expect(xml).toContain('<failure message="a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;  e&#10;&#9;f 😀 at step 3 answered differently');
    // In text, quotes may stay and newlines are kept as they are.
    expect(xml).toContain(`history: a &lt;b&gt; &amp; "c" 'd'  e\n\tf 😀`);
  });
});
