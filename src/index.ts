// The library: run amnesia's properties against your own server from your own test suite.
//   import { check } from 'amnesia';
//   const report = await check({ target: 'http://127.0.0.1:8000/v1', runs: 25 });
// Nothing here loads the reference server or the native engine; `check()` without a target starts
// them in child processes, and `startLocalServer` is the separate entry 'amnesia/server'.
export { check, replay, type CheckOptions, type TargetOptions } from './api.ts';
export { builtinScenarios, type CheckReport, type ReplayReport, type TargetConnection, type TargetConnector } from './harness/check-target.ts';
export { properties, type HarnessProperty } from './harness/properties.ts';
export { loadScenario, parseScenario, type BurstMember, type Scenario, type Step } from './harness/scenario.ts';
export type { PropertyResult, PropertyFailure } from './harness/search.ts';
export type { Violation } from './harness/violation.ts';
export { describeViolation } from './harness/report/text.ts';
export { summaryTable } from './harness/report/summary.ts';
export { junitXml } from './harness/report/junit.ts';
export type { Transport, Exchange, ExchangeResponse } from './harness/transport.ts';
