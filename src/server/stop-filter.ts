// Stop strings over the answer text (`content`), for streamed and whole responses alike: text that
// could still turn into a stop string is held back, so a stream never shows part of one, and the
// first complete occurrence ends the answer just before it (spec/api.md "Stop strings"). It cuts
// between code points only: a stop string that begins with half of a surrogate pair does not match
// inside a pair, and held-back text never leaves half a pair behind, so every piece it sends has
// the UTF-8 of the text it is (which log-probabilities count on).

export class StopFilter {
  private text = '';
  private released = 0;
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Adds answer text; returns what may now be shown, and whether a stop string completed. */
  push(piece: string): { text: string; stopped: boolean } {
    this.text += piece;
    // A match cannot start before `released`: anything that could begin one was held back.
    let at = -1;
    for (const stop of this.stops) {
      let i = this.text.indexOf(stop, this.released);
      while (i >= 0 && splitsPair(this.text, i)) i = this.text.indexOf(stop, i + 1);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) return { text: this.release(at), stopped: true };
    let end = this.text.length - this.heldBack();
    if (end > this.released && splitsPair(this.text, end)) end--;
    return { text: this.release(end), stopped: false };
  }

  /** The end of the answer: whatever was held back is shown after all. */
  flush(): string {
    return this.release(this.text.length);
  }

  /** The longest end of the unreleased text that is the start of some stop string. */
  private heldBack(): number {
    const max = Math.min(this.longest - 1, this.text.length - this.released);
    for (let k = max; k > 0; k--) {
      const tail = this.text.slice(this.text.length - k);
      if (this.stops.some((s) => s.startsWith(tail))) return k;
    }
    return 0;
  }

  private release(end: number): string {
    const out = this.text.slice(this.released, end);
    this.released = end;
    return out;
  }
}

/** Whether `at` falls between the two halves of a surrogate pair. */
function splitsPair(text: string, at: number): boolean {
  if (at <= 0 || at >= text.length) return false;
  const before = text.charCodeAt(at - 1);
  const after = text.charCodeAt(at);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
}

/**
 * The stop strings an answer is cut at: the request's own. Failpoint stop-accumulates: `shared` is
 * the server's stop list, extended in place with each request's strings instead of copied, so an
 * answer is also cut at every stop string an earlier request gave.
 */
export function stopStrings(own: readonly string[], shared?: string[]): readonly string[] {
  if (shared === undefined) return own;
  for (const stop of own) if (!shared.includes(stop)) shared.push(stop);
  return [...shared];
}
