import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['src/**/*.test.ts', 'properties/**/*.test.ts', 'golden/**/*.test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 60_000,
    // Every core (vitest's default leaves one idle: a single worker on a 2-core CI machine). No test
    // depends on machine load, so the suites may share the machine.
    maxWorkers: availableParallelism(),
  },
});
