// Markdown spans that survive any text: shared by the step summary and REPORT.md.

/** An inline code span that survives backticks in the text. */
export function code(s: string): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((m) => m.length));
  const ticks = '`'.repeat(longest + 1);
  return longest > 0 || s.startsWith(' ') ? `${ticks} ${s} ${ticks}` : `${ticks}${s}${ticks}`;
}

/** A fenced block longer than any backtick run inside it. */
export function fence(s: string, lang = ''): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((m) => m.length));
  const ticks = '`'.repeat(Math.max(3, longest + 1));
  return `${ticks}${lang}\n${s}\n${ticks}`;
}
