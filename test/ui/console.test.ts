// The web console at /ui, end to end in headless Chromium (Debian's chromium driven by playwright-core, never a
// downloaded browser) against a real broker: every view shows the broker's real data, the actions (create a
// topic, produce, seek and follow messages, reset a group's offsets) have their effect on the broker, and the
// page raises no script error. A screenshot of each view is written to test-output/ui/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { call, startTestBroker, type TestBroker } from '../broker/harness.js';

const screenshots = fileURLToPath(new URL('../../test-output/ui/', import.meta.url));

function chromiumPath(): string | null {
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const executablePath = chromiumPath();
let broker: TestBroker;
let context: BrowserContext;
let page: Page;
let profileDir: string;
const pageErrors: string[] = [];

/** Past times for records, so that seeking by time has a known answer. */
const baseTimeMs = Date.parse('2024-03-01T10:00:00Z');

before(async () => {
  if (executablePath === null) return;
  broker = await startTestBroker({ sessionTimeoutMs: 120_000 });
  // A 503 is retriable (the API says so with Retry-After): on a loaded machine the metadata commit behind a
  // topic creation can take longer than the broker waits for it.
  const api = async (method: string, path: string, body?: unknown) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answer = await call(broker.base, method, path, body);
      if (answer.status === 503 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1000 * Number(answer.headers.get('retry-after') ?? 1)));
        continue;
      }
      assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer;
    }
  };
  await api('POST', '/topics/orders', { num_partitions: 2 });
  await api('POST', '/topics/orders/records', {
    records: Array.from({ length: 6 }, (_, i) => ({
      key: `user-${i}`,
      value: `order-${i}`,
      headers: { source: 'seed' },
      partition: 0,
      timestamp: baseTimeMs + i * 60_000,
    })),
  });
  await api('POST', '/consumer-groups/billing/offsets/orders/0', { offset: 4 });
  await api('POST', '/consumer-groups/shipping/register', { consumer_id: 'shipper-1', topics: ['orders'] });
  mkdirSync(screenshots, { recursive: true });
  profileDir = mkdtempSync(join(tmpdir(), 'console-profile-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 860 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

after(async () => {
  await context?.close();
  if (profileDir !== undefined) rmSync(profileDir, { recursive: true, force: true });
  await broker?.stop();
});

async function open(view: string): Promise<void> {
  const name = view.split('/')[0]!;
  await page.goto(`${broker.base}/ui/#/${view}`);
  // The router marks the view ready once it has rendered the broker's answers.
  await page.waitForSelector(`#view[data-ready="${name}"] [data-view="${name}"]`);
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

describe('web console in Chromium', {
  skip: executablePath === null ? 'chromium is not installed' : false,
}, () => {
  test('the console is served by the broker: /ui redirects to the page, unknown assets are 404', async () => {
    const page301 = await fetch(`${broker.base}/ui`, { redirect: 'manual' });
    assert.equal(page301.status, 301);
    assert.equal(page301.headers.get('location'), '/ui/');
    const index = await fetch(`${broker.base}/ui/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    const script = await fetch(`${broker.base}/ui/app.js`);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await fetch(`${broker.base}/ui/../package.json`)).status, 404);
    assert.equal((await fetch(`${broker.base}/ui/nothing.js`)).status, 404);
  });

  test('brokers: this node, alive, Raft leader, leading every partition', async () => {
    await open('brokers');
    const row = page.locator('tr[data-broker="broker-1"]');
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /broker-1\s+alive\s+voter\s+leader/);
    assert.match(text, /127\.0\.0\.1:\d+\s+2/, 'leads both partitions of orders');
    await shot('brokers');
  });

  test('topics: a topic created in the form exists on the broker, its partitions show leader, ISR, offsets and size', async () => {
    await open('topics');
    assert.match(await page.locator('tr[data-topic="orders"]').innerText(), /orders\s+2\s+1\s+0/);
    await shot('topics');
    await page.fill('#create-topic input[name=name]', 'created-in-ui');
    await page.fill('#create-topic input[name=partitions]', '3');
    await page.click('#create-topic button[type=submit]');
    await page.waitForSelector('#view[data-ready="topics"] h1:text("Topic created-in-ui")');
    const created = await call(broker.base, 'GET', '/topics/created-in-ui');
    assert.equal(created.status, 200);
    assert.equal(created.body.num_partitions, 3);
    assert.equal(await page.locator('tr[data-partition]').count(), 3);

    await open('topics/orders');
    const p0 = await page.locator('tr[data-partition="0"]').innerText();
    assert.match(p0, /^0\s+broker-1\s+0\s+broker-1\s+broker-1\s+0\s+6\s+\d+(\.\d)? (B|KiB)\s+1$/);
    await shot('topic-orders');
  });

  test('topics: delete asks for a confirmation, then deletes the topic on the broker', async () => {
    await open('topics');
    const button = page.locator('button[data-delete="created-in-ui"]');
    await button.click();
    assert.equal(await button.innerText(), 'Confirm delete');
    assert.equal((await call(broker.base, 'GET', '/topics/created-in-ui')).status, 200, 'not yet deleted');
    await button.click();
    await page.locator('tr[data-topic="created-in-ui"]').waitFor({ state: 'detached' });
    assert.equal((await call(broker.base, 'GET', '/topics/created-in-ui')).status, 404);
  });

  test('produce: the message sent from the form is on the broker with its key and headers', async () => {
    await open('produce/orders');
    await page.fill('#produce input[name=partition]', '1');
    await page.fill('#produce input[name=key]', 'k-ui');
    await page.fill('#produce textarea[name=headers]', 'src=console\ntrace=abc');
    await page.fill('#produce textarea[name=value]', 'hello from the console');
    await page.click('#produce button[type=submit]');
    const result = page.locator('#produce-result [data-offset]');
    await result.waitFor();
    assert.equal(await result.getAttribute('data-partition'), '1');
    const offset = Number(await result.getAttribute('data-offset'));
    await shot('produce');
    const read = await call(
      broker.base,
      'GET',
      `/topics/orders/partitions/1/consume?offset=${offset}&limit=1`,
    );
    const record = read.body.messages[0];
    assert.equal(record.value, 'hello from the console');
    assert.equal(record.key, 'k-ui');
    assert.deepEqual(record.headers, { src: 'console', trace: 'abc' });
  });

  test('messages: seek by offset and by time shows key, headers and timestamp; follow shows new records live', async () => {
    await open('messages/orders');
    await page.selectOption('#browse select[name=partition]', '0');
    await page.selectOption('#browse select[name=seek]', 'offset');
    await page.fill('#browse input[name=offset]', '2');
    await page.click('#browse button[type=submit]');
    await page.locator('#records tbody tr').first().waitFor();
    const firstByOffset = await page.locator('#records tbody tr').first().innerText();
    assert.match(firstByOffset, /^0\s+2\s+2024-03-01 10:02:00\.000\s+user-2\s+source=seed\s+order-2$/);
    assert.equal(await page.locator('#records tbody tr').count(), 4);

    // 10:03:30 falls between order-3 (10:03) and order-4 (10:04): the seek starts at order-4.
    await page.selectOption('#browse select[name=seek]', 'time');
    // datetime-local is read in the page's time zone; the records' times are UTC. Page code is passed as text:
    // the test's own functions carry the TypeScript loader's helpers, which the page does not have.
    await page.evaluate(`(() => {
      const utc = new Date(Date.UTC(2024, 2, 1, 10, 3, 30));
      const local = new Date(utc.getTime() - utc.getTimezoneOffset() * 60000);
      document.querySelector('#browse input[name=time]').value = local.toISOString().slice(0, 19);
    })()`);
    await page.click('#browse button[type=submit]');
    await page.waitForFunction(
      `document.querySelector('#records tbody tr')?.getAttribute('data-offset') === '4'`,
    );
    await shot('messages');

    await page.click('#follow');
    await page.waitForSelector('p[data-following="true"]');
    await call(broker.base, 'POST', '/topics/orders/produce', { value: 'live-one', partition: 0, key: 'kl' });
    const fresh = page.locator('#records tbody tr.fresh').first();
    await fresh.waitFor();
    assert.match(await fresh.innerText(), /^0\s+6\s+.*kl\s+-\s+live-one$/);
    await shot('messages-follow');
    await page.click('#follow');
  });

  test('groups: members, assignment and lag are shown, and a reset moves the committed offsets on the broker', async () => {
    await open('groups');
    assert.match(await page.locator('tr[data-group="billing"]').innerText(), /billing\s+empty\s+0/);
    assert.match(await page.locator('tr[data-group="shipping"]').innerText(), /shipping\s+stable\s+1/);
    await shot('groups');

    await open('groups/shipping');
    assert.match(await page.locator('#view').innerText(), /shipper-1\s+orders: 0, 1/);
    await shot('group-shipping');

    await open('groups/billing');
    // Partition 0 holds 7 records by now (6 seeded, 1 followed live): committed 4, lag 3.
    assert.match(await page.locator('tr[data-offset="orders-0"]').innerText(), /orders\s+0\s+4\s+7\s+3/);
    await page.selectOption('#reset-offsets select[name=to]', 'earliest');
    await page.click('#reset-offsets button[value=dry]');
    await page.waitForSelector('#view :text("Preview (nothing changed)")');
    assert.equal(
      (await call(broker.base, 'GET', '/consumer-groups/billing/offsets/orders/0')).body.offset,
      4,
    );
    await page.click('#reset-offsets button[value=execute]');
    await page.waitForFunction(
      `/orders\\s+0\\s+0\\s+7\\s+7/.test(document.querySelector('tr[data-offset="orders-0"]')?.innerText ?? '')`,
    );
    assert.equal(
      (await call(broker.base, 'GET', '/consumer-groups/billing/offsets/orders/0')).body.offset,
      0,
    );
    assert.equal(
      (await call(broker.base, 'GET', '/consumer-groups/billing/offsets/orders/1')).body.offset,
      0,
    );
    await shot('group-billing');
  });

  test('charts: records/s and bytes/s of the topic and produce p99 follow the traffic', async () => {
    await open('charts');
    await page.waitForSelector('#charts-status[data-scrapes]');
    // Traffic until a scrape has seen it: the rate of orders and the p99 become non-zero.
    const value = async (chart: string, series: string): Promise<number> => {
      const found = page.locator(`[data-chart^="${chart}"] [data-series="${series}"]`);
      return (await found.count()) === 0 ? 0 : Number(await found.getAttribute('data-value'));
    };
    const seen = async () =>
      (await value('Produced records/s', 'orders')) > 0 &&
      (await value('Produced bytes/s', 'orders')) > 0 &&
      (await value('Produce latency', 'p99')) > 0;
    let sent = 0;
    while (!(await seen())) {
      assert.ok(sent < 10, 'the charts never showed the traffic');
      const scrapes = await page.locator('#charts-status').getAttribute('data-scrapes');
      for (let i = 0; i < 5; i++) {
        await call(broker.base, 'POST', '/topics/orders/records', {
          records: Array.from({ length: 20 }, (_, k) => ({ value: `burst-${sent}-${i}-${k}`, partition: 1 })),
        });
      }
      sent++;
      // The next scrape (every 2 s) turns the burst into a rate.
      await page.waitForFunction(
        `document.querySelector('#charts-status')?.getAttribute('data-scrapes') !== ${JSON.stringify(scrapes)}`,
      );
    }
    await shot('charts');
    assert.deepEqual(pageErrors, [], 'the page raised no script error');
  });
});
