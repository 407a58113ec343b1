// Stop strings over the answer text (`content`), for streamed and whole responses alike: text that
// could still turn into a stop string is held back, so a stream never shows part of one, and the
// first complete occurrence ends the answer just before it (spec/api.md "Stop strings").

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
      const i = this.text.indexOf(stop, this.released);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) return { text: this.release(at), stopped: true };
    return { text: this.release(this.text.length - this.heldBack()), stopped: false };
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
