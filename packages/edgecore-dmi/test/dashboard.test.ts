// SPDX-License-Identifier: Apache-2.0
// The dashboard end to end in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core): live values a real mapper reports, the chart, problems, and a desired value
// set in the form that reaches the device.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { MapperHandle } from '@mapperkit/framework';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { EdgecoreDmi } from '../src/index.js';
import { deviceYaml, eventually, MODEL_YAML, startServer, startVirtualMapper, TempDir } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';

describe('dashboard in headless Chromium', () => {
  const dir = new TempDir();
  let server: EdgecoreDmi;
  let mapper: MapperHandle | undefined;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), 'Debian chromium is required (scripts/setup-peers.sh installs it)');
    mkdirSync(dir.join('devices'));
    dir.file('devices/thermo.yaml', `${MODEL_YAML}---\n${deviceYaml('t1', { cycle: 200 })}`);
    dir.file('devices/broken.yaml', deviceYaml('orphan', { model: 'no-such-model' }));
    server = await startServer(dir, { devices: dir.join('devices'), http: '127.0.0.1:0', limiter: false });
    mapper = await startVirtualMapper(dir, server.socketPath);
    await mapper.whenRegistered();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage();
    await page.goto(`${server.url}/`);
  });

  after(async () => {
    await browser?.close();
    await mapper?.stop();
    await server?.close();
    dir.remove();
  });

  const text = async (testId: string): Promise<string> => ((await page.getByTestId(testId).textContent()) ?? '').trim();

  it('shows the values the mapper just reported, live', async () => {
    const cell = 'twin-default/t1-temperature-reported';
    await page.getByTestId(cell).waitFor();
    const first = await eventually(async () => {
      const t = await text(cell);
      return t !== '-' && t !== '' ? t : undefined;
    }, 10_000, 'a reported temperature in the page');
    // The counter goes up with every read: the page must move on without a reload.
    const second = await eventually(async () => {
      const t = await text(cell);
      return t !== first ? t : undefined;
    }, 10_000, 'the page to show a newer value');
    const history = server.history('t1', 'temperature').map((h) => h.value);
    assert.ok(history.includes(first), `${first} was reported (history ${history.join(',')})`);
    assert.ok(history.includes(second), `${second} was reported`);
    assert.ok(Number(second) > Number(first));
    assert.equal(await text('state-default/t1'), 'ok');
  });

  it('draws a chart of recent values and lists the problems', async () => {
    await eventually(async () => Number(await page.locator('#chart').getAttribute('data-points')) >= 3, 10_000, 'a chart with 3 points');
    assert.equal(await page.locator('#chart polyline').count(), 1);
    assert.match((await page.locator('#chart-title').textContent()) ?? '', /default\/t1 · temperature/);
    const problems = (await page.locator('#problems').textContent()) ?? '';
    assert.match(problems, /broken\.yaml:\d+: Device default\/orphan: spec\.deviceModelRef\.name: DeviceModel default\/no-such-model not found/);
    assert.match((await page.locator('#mappers').textContent()) ?? '', /virtual-mapper/);
  });

  it('a desired value set in the form reaches the device', async () => {
    await page.selectOption('#desired-device', 'default/t1');
    await page.selectOption('#desired-property', 'setpoint');
    await page.fill('#desired-value', '27.5');
    await page.click('#desired-submit');
    await eventually(async () => /desired 27\.5/.test((await page.locator('#desired-result').textContent()) ?? ''), 10_000, 'the form result');
    await eventually(() => mapper!.device('default/t1')?.observedDesired.get('setpoint') === '27.5', 10_000, 'the mapper to write 27.5');
    await eventually(() => mapper!.device('default/t1')?.values.get('setpoint')?.sample?.text === '27.5', 10_000, 'the device to read back 27.5');
    await eventually(async () => (await text('twin-default/t1-setpoint-reported')) === '27.5', 10_000, 'the page to show reported 27.5');
    await eventually(async () => (await text('twin-default/t1-setpoint-observed')) === '27.5', 10_000, 'the page to show observed desired 27.5');
    assert.match(await text('twin-default/t1-setpoint-desired'), /^27\.5/);
  });

  it('an invalid desired value is refused in the page with the reason', async () => {
    await page.fill('#desired-value', 'warm');
    await page.click('#desired-submit');
    await eventually(async () => (await page.locator('#desired-result').getAttribute('class')) === 'error', 10_000, 'the form error');
    assert.match((await page.locator('#desired-result').textContent()) ?? '', /device default\/t1 property setpoint: "warm" is not a valid FLOAT/);
  });
});
