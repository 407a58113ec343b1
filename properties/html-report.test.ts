// report.html as a maintainer opens it: `amnesia check` (the command, in process) against the msw fake
// 'cache-drift' (properties/fake-server.ts: a prefix cache that moves log-probs, never tokens) writes
// it to a temp folder, and headless Debian Chromium, driven by playwright-core, opens it from disk.
// The page must load nothing but itself, log no error, lead with the grouped finding, show the class,
// put expected and actual side by side, and draw one bar per recorded request; the screenshot is
// kept (AMNESIA_SCREENSHOT=path.png chooses where, for a release note).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { expect, test, vi } from 'vitest';
import { checkCommand } from '../src/commands/check.ts';
import { loadScenario, requestCount } from '../src/harness/scenario.ts';
import { useFakeServers } from './fake-server.ts';

const fresh = useFakeServers('html.amnesia.test');

/** Debian's chromium, which `.ci/run` installs; playwright-core downloads no browser of its own. */
const CHROMIUM = '/usr/bin/chromium';
/** Headless, and quiet on a machine without a network (no background connections, no first-run setup). */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** How many requests the failure recorded: the flaky run's recording, else what its scenario sends. */
function recordedRequests(folder: string): number {
  const recording = join(folder, 'recording.json');
  if (existsSync(recording)) return (JSON.parse(readFileSync(recording, 'utf8')) as { entries: unknown[] }).entries.length;
  return requestCount(loadScenario(join(folder, 'scenario.json')));
}

test('report.html of a failing check, in headless Chromium', { timeout: 180_000 }, async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: .ci/run installs Debian's chromium (apt-get install -y --no-install-recommends chromium)`).toBe(true);
  const temp = mkdtempSync(join(tmpdir(), 'amnesia-html-report-'));
  const reportDir = join(temp, 'report');
  // The whole default check (about 10 s): most properties fail, by one cause.
  // The command's progress lines (stderr) would read as failures in the test log: kept out of it.
  const quiet = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const result = await checkCommand(['--target', fresh('cache-drift'), '--runs', '10', '--seed', '1', '--report', reportDir], {}).finally(() =>
    quiet.mockRestore(),
  );
  expect(result.code, result.text).toBe(1);
  const page = join(reportDir, 'report.html');
  expect(result.text).toContain(`report: ${page}`);

  const context = await chromium.launchPersistentContext(join(temp, 'profile'), { executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const tab = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    tab.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    tab.on('pageerror', (e) => errors.push(e.message));
    tab.on('request', (r) => requests.push(r.url()));
    await tab.goto(pathToFileURL(page).href, { waitUntil: 'load' });

    // The grouped findings lead: each cause with its class and the properties that showed it, every
    // failed property under one of them.
    expect(await tab.locator('h1').innerText()).toMatch(/^amnesia check: \d+ of 11 properties failed$/);
    const causes = tab.locator('.causes .cause');
    expect(await causes.first().isVisible()).toBe(true);
    const causeTexts = await causes.allInnerTexts();
    // The fake reports its prefix-cache hits (cached_tokens), so the one cause is the cache hit.
    expect(causeTexts).toHaveLength(1);
    expect(causeTexts[0]).toMatch(
      /^answers change on prefix-cache hits .*\nnumeric drift \d+ properties: .*; \d+ pairs; never with the cache cold \(\d+ cold pairs? agreed\)$/s,
    );
    const grouped = await tab.locator('.causes .cause a').allInnerTexts();

    // Per failure: its class, the diff's two columns side by side, one bar per recorded request.
    const failures = tab.locator('section.failure');
    expect(await failures.count()).toBe(grouped.length);
    for (const failure of await failures.all()) {
      const property = (await failure.getAttribute('id'))!.replace(/^failure-/, '');
      expect(grouped, property).toContain(property);
      const badge = failure.locator('h3 [data-class="numeric-drift"]');
      expect(await badge.isVisible(), property).toBe(true);
      expect(await badge.innerText()).toBe('numeric drift');

      const left = await failure.locator('.diff [data-side="expected"]').first().boundingBox();
      const right = await failure.locator('.diff [data-side="actual"]').first().boundingBox();
      expect(left && right, `${property}: both columns visible`).toBeTruthy();
      expect(left!.width).toBeGreaterThan(100);
      expect(left!.x + left!.width).toBeLessThanOrEqual(right!.x);
      expect(Math.abs(left!.y - right!.y)).toBeLessThan(2);

      const bars = failure.locator('.timeline .tl-bar');
      expect(await bars.count(), property).toBe(recordedRequests(join(reportDir, property)));
      for (const bar of await bars.all()) expect((await bar.boundingBox())!.width, property).toBeGreaterThan(0);
      expect(await failure.locator('.tl-row.role-wrong .tl-bar').count()).toBe(1);
      expect(await failure.locator('a[href$="/REPORT.md"]').getAttribute('href')).toBe(`${property}/REPORT.md`);
    }

    const shot = resolve(process.env.AMNESIA_SCREENSHOT || join(temp, 'report.png'));
    mkdirSync(dirname(shot), { recursive: true });
    await tab.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(1000);
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');

    expect(errors).toEqual([]);
    expect(requests.length).toBeGreaterThan(0);
    for (const url of requests) expect(url).toMatch(/^file:/);
  } finally {
    await context.close();
  }
});
