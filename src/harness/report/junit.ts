// For CI test dashboards: JUnit XML, one testcase per property.
import type { PropertyResult } from '../search.ts';
import type { CheckReport } from '../check-target.ts';
import { failureText, violationMessage } from './text.ts';

/** Characters XML 1.0 cannot hold at all, not even as references (control characters, lone surrogates, U+FFFE/F). */
const XML_ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function xmlText(s: string): string {
  return s.replace(XML_ILLEGAL, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Attribute values also escape quotes, and whitespace that parsers would otherwise normalise to spaces. */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

/**
 * A testcase's own properties (as pytest writes them), when there is something to say: fewer
 * scenarios than asked, bursts and their overlap, a failure that did not reproduce.
 */
function testcaseProperties(r: PropertyResult): string[] {
  const props: Array<[string, string | number]> = [];
  if (r.status !== 'skipped' && r.scenarios < r.asked) props.push(['scenarios', r.scenarios], ['asked', r.asked]);
  if (r.budgetSpent) props.push(['stopped', 'time budget']);
  if (r.bursts && r.bursts.sent > 0) props.push(['bursts', r.bursts.sent], ['bursts-overlapped', r.bursts.overlapped]);
  if (r.flaky) props.push(['flaky', 'did not reproduce']);
  if (props.length === 0) return [];
  return ['      <properties>', ...props.map(([k, v]) => `        <property name="${xmlAttr(k)}" value="${xmlAttr(String(v))}"/>`), '      </properties>'];
}

export function junitXml(report: CheckReport): string {
  const count = (s: PropertyResult['status']) => report.results.filter((r) => r.status === s).length;
  const time = (ms: number) => (ms / 1000).toFixed(3);
  const total = report.results.reduce((t, r) => t + r.ms, 0);
  const suite = `tests="${report.results.length}" failures="${report.results.filter((r) => r.failure).length}" errors="${report.results.filter((r) => r.status === 'failed' && !r.failure).length}" skipped="${count('skipped')}" time="${time(total)}"`;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="amnesia" ${suite}>`,
    `  <testsuite name="amnesia check" ${suite}>`,
    '    <properties>',
    `      <property name="seed" value="${report.seed}"/>`,
    `      <property name="target" value="${xmlAttr(report.target)}"/>`,
    `      <property name="model" value="${xmlAttr(report.model)}"/>`,
    '    </properties>',
  ];
  for (const r of report.results) {
    const open = `    <testcase classname="${xmlAttr(`amnesia.${report.target}`)}" name="${xmlAttr(r.property)}" time="${time(r.ms)}"`;
    const props = testcaseProperties(r);
    if (r.status === 'passed') {
      out.push(...(props.length > 0 ? [`${open}>`, ...props, '    </testcase>'] : [`${open}/>`]));
    } else if (r.status === 'skipped') {
      out.push(`${open}>`, ...props, `      <skipped message="${xmlAttr(r.reason ?? 'skipped')}"/>`, '    </testcase>');
    } else if (!r.failure) {
      // Infrastructure (a missing endpoint, a target that went away), not a violated property.
      out.push(`${open}>`, ...props, `      <error message="${xmlAttr(r.reason ?? 'error')}"/>`, '    </testcase>');
    } else {
      const { recording, violation: v } = r.failure;
      const message = `${r.flaky ? 'flaky: did not reproduce: ' : ''}${violationMessage(recording, v)}`;
      out.push(
        `${open}>`,
        ...props,
        `      <failure message="${xmlAttr(message)}" type="${xmlAttr(`${v.class}/${v.kind}`)}">${xmlText(failureText(r))}</failure>`,
        '    </testcase>',
      );
    }
  }
  out.push('  </testsuite>', '</testsuites>', '');
  return out.join('\n');
}
