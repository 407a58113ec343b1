// The library: run amnesia's properties against your own server from your own test suite.
//   import { check } from 'amnesia';
//   const report = await check({ target: 'http://127.0.0.1:8000/v1', runs: 25 });
export { check, replay, builtinScenarios, type CheckOptions, type CheckReport, type ReplayReport, type TargetOptions } from './harness/session.ts';
export { properties, type HarnessProperty } from './harness/properties.ts';
export { loadScenario, parseScenario, type Scenario, type Step } from './harness/scenario.ts';
export { describeViolation, type Violation } from './harness/check.ts';
export { summaryTable, junitXml } from './harness/report.ts';
export { startLocalServer, type LocalServer } from './server/local-server.ts';
