// A hang is a verdict (spec/properties.md, "Running a check"): a request that got no complete answer
// within its deadline. First in precedence: after a hang the rest of the recording says nothing (the
// scenario stopped there, and the request's own "answer" is whatever came before the client gave up).
import type { Observation } from '../client.ts';
import { entryLabel } from '../violation.ts';
import { violation, type Rule } from './rule.ts';

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

/** What had come when the client gave up. */
function progress(obs: Observation): string {
  if (obs.status === 0) return 'no response at all';
  if (obs.events !== undefined) return `HTTP ${obs.status} and ${obs.events.length} event${obs.events.length === 1 ? '' : 's'}, then nothing`;
  return `HTTP ${obs.status} headers, then no complete body`;
}

export const deadline: Rule = {
  name: 'deadline',
  *check(rec) {
    for (const [i, e] of rec.entries.entries()) {
      if (e.obs.timedOut) yield violation(deadline, rec, { kind: 'hang', entries: [i], problems: [progress(e.obs)] });
    }
  },
  headline(rec, v) {
    const i = v.entries[0]!;
    const obs = rec.entries[i]!.obs;
    const limit = obs.deadlineMs ?? obs.ended - obs.started;
    return `${entryLabel(rec, i)} got no complete answer within ${seconds(limit)} (${(v.problems ?? [progress(obs)]).join('; ')})`;
  },
};
