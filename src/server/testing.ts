// Test support: ways to hold the reference server in a state a test needs to observe.
import type { LocalServer } from './local-server.ts';

/**
 * Makes every engine step of a server wait `ms` first, so a generation is still running when the test
 * disconnects or shuts down (the tiny model otherwise ends most answers within a few steps).
 */
export function slowSteps(server: LocalServer, ms: number): () => void {
  const engine = server.model.runtime.engine;
  const step = engine.step.bind(engine);
  // The addon's methods are read-only on its prototype; an own property shadows this one.
  Object.defineProperty(engine, 'step', {
    configurable: true,
    value: async (entries: Parameters<typeof step>[0]) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return step(entries);
    },
  });
  return () => void delete (engine as unknown as Record<string, unknown>).step;
}
