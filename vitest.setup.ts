// One fixed fast-check seed for the whole run, so property test names (which carry the seed) stay
// stable across runs. Override with FC_SEED=<n>; FC_NUM_RUNS scales every property.
import fc from 'fast-check';

const seed = Number(process.env.FC_SEED ?? 20261124);
const numRuns = process.env.FC_NUM_RUNS ? Number(process.env.FC_NUM_RUNS) : undefined;
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed, ...(numRuns ? { numRuns } : {}) });
