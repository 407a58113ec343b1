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
    if (r.status === 'passed') {
      out.push(`${open}/>`);
    } else if (r.status === 'skipped') {
      out.push(`${open}>`, `      <skipped message="${xmlAttr(r.reason ?? 'skipped')}"/>`, '    </testcase>');
    } else if (!r.failure) {
      // Infrastructure (a timeout, a missing endpoint), not a violated property.
      out.push(`${open}>`, `      <error message="${xmlAttr(r.reason ?? 'error')}"/>`, '    </testcase>');
    } else {
      const { recording, violation: v } = r.failure;
      out.push(
        `${open}>`,
        `      <failure message="${xmlAttr(violationMessage(recording, v))}" type="${xmlAttr(v.kind)}">${xmlText(failureText(r))}</failure>`,
        '    </testcase>',
      );
    }
  }
  out.push('  </testsuite>', '</testsuites>', '');
  return out.join('\n');
}
