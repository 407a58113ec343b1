// `check` and `replay` as the library and the CLI offer them: a target is a URL or, when none is
// given, the embedded reference server — in child processes, a fresh one per history
// (src/embedded/child-target.ts). Only then is src/embedded loaded, and fastify and the native
// engine load only in those children, so checking someone else's server never loads amnesia's own.
import type { EmbeddedOptions } from './embedded/embedded-target.ts';
import * as harness from './harness/check-target.ts';
import type { CheckReport, ReplayReport, TargetConnector } from './harness/check-target.ts';
import type { Scenario } from './harness/scenario.ts';

export interface TargetOptions extends Omit<harness.TargetSpec, 'target'> {
  /** Base URL of an OpenAI-compatible API (ending in /v1) or a connector. Absent: the embedded server. */
  target?: string | TargetConnector;
  /**
   * The embedded server's runtime options (failpoints default to AMNESIA_FAILPOINTS) and model
   * (default tiny-chat), passed to each child process.
   */
  embedded?: EmbeddedOptions;
}

export interface CheckOptions extends Omit<harness.CheckTargetOptions, 'target'>, TargetOptions {}

function resolve<T extends TargetOptions>({ embedded, ...options }: T): Omit<T, 'embedded'> & harness.TargetSpec {
  if (options.target !== undefined) return { ...options, target: options.target };
  const connect: TargetConnector = async () => (await import('./embedded/embedded-target.ts')).startEmbeddedTarget(embedded);
  return { ...options, target: connect };
}

export const check = (options: CheckOptions = {}): Promise<CheckReport> => harness.checkTarget(resolve(options));

export const replay = (scenario: Scenario, options: TargetOptions = {}): Promise<ReplayReport> => harness.replayOnTarget(scenario, resolve(options));
