// The page of `buzon ui` in headless Chromium, driven as a user would: upload a 50-row CSV with
// one bad address, fix the message's lint error, preview row 3, send a test to oneself, send
// all 50 to `buzon serve`, watch the results fill in, stop half way and resume, check that
// every Maildir delivery happened exactly once, and download the failed rows.
//
// Run by tests/interop.sh (check group "ui"), which installs Debian's chromium and
// playwright-core from npm and starts the servers. Environment:
//   UI_URL          the address `buzon ui` printed (with its access key)
//   MAIL_STORAGE    `buzon serve`'s storage folder
//   MAIL_DOMAIN     a domain it takes mail for (the recipients are userN@MAIL_DOMAIN)
//   SMTP_PORT       its plain SMTP port on 127.0.0.1
//   PLAYWRIGHT_DIR  the folder whose node_modules holds playwright-core
//   ARTIFACTS       where the screenshots and the downloaded CSV go

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR, 'package.json'));
const { chromium } = require('playwright-core');

const url = process.env.UI_URL;
const origin = new URL(url).origin;
const storage = process.env.MAIL_STORAGE;
const domain = process.env.MAIL_DOMAIN || 'example.com';
const artifacts = process.env.ARTIFACTS;
fs.mkdirSync(artifacts, { recursive: true });

/** Messages in a Maildir's new/ and cur/. */
function delivered(user) {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    const dir = path.join(storage, domain, user, sub);
    if (fs.existsSync(dir)) n += fs.readdirSync(dir).length;
  }
  return n;
}

/** The 50 rows; row 7's address lacks its @. */
function csv() {
  const lines = ['email,name,plan'];
  for (let i = 1; i <= 50; i++) {
    lines.push(`${i === 7 ? `user${i}.${domain}` : `user${i}@${domain}`},User ${i},plan ${i}`);
  }
  return lines.join('\n') + '\n';
}

test('a 50-row merge goes from CSV to sent in the page', { timeout: 240_000 }, async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 1400 } });
  const page = await context.newPage();
  const outside = [];
  const errors = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(origin + '/') && !r.url().startsWith('data:') && r.url() !== 'about:srcdoc') outside.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });

  try {
    await page.goto(url);
    await page.waitForSelector('#app:not([hidden])');

    // 1. Server: buzon serve, plain (its certificate is its own).
    await page.fill('#server-port', process.env.SMTP_PORT);
    await page.selectOption('#server-tls', 'none');
    await page.click('#server-test');
    await page.waitForFunction(() => /25\d|220/.test(document.querySelector('#server-test-result').textContent));
    assert.match(await page.textContent('#server-test-result'), /220 /);

    // 2. Recipients.
    const file = path.join(artifacts, 'fifty.csv');
    fs.writeFileSync(file, csv());
    await page.setInputFiles('#csv-file', file);
    await page.waitForFunction(() => document.querySelectorAll('#recipients-table tbody tr').length >= 50);
    const table = await page.textContent('#recipients-table');
    assert.ok(table.includes(`user7.${domain}`), table);
    assert.match(table, /is not an email address/);

    // 3. Message, with a misspelt field; 4. the check finds it; fixed, only row 7 is left.
    await page.fill('#msg-from', 'Shop <shop@example.com>');
    await page.fill('#msg-subject', 'Hello {{ name }}');
    await page.fill('#msg-text', 'Your plan: {{ plann }}\n');
    await page.waitForTimeout(700); // the page saves after a pause in typing
    await page.click('#check-run');
    await page.waitForFunction(() => /plann/.test(document.querySelector('#check-result').textContent));
    assert.match(await page.textContent('#check-result'), /\{\{ plann \}\} is not a column/);
    await shot('1-lint-error');
    await page.fill('#msg-text', 'Your plan: {{ plan }}\n');
    await page.waitForTimeout(700);
    await page.click('#check-run');
    await page.waitForFunction(() => !/plann/.test(document.querySelector('#check-result').textContent)
      && document.querySelector('#check-result').textContent.includes('user7.'));

    // Preview row 3, as the recipient sees it, then raw.
    await page.fill('#preview-row', '3');
    await page.click('#preview-run');
    await page.waitForSelector('#preview:not([hidden])');
    const seen = await page.textContent('#preview-body');
    assert.match(seen, /Hello User 3/);
    assert.match(seen, /Your plan: plan 3/);
    await page.click('#preview-raw-toggle');
    assert.match(await page.textContent('#preview-raw'), /Subject: Hello User 3\r?\n/);
    await shot('2-preview');

    // 5. A test message to oneself.
    await page.fill('#self-address', `me@${domain}`);
    await page.fill('#test-row', '1');
    await page.click('#test-send');
    await page.waitForFunction(() => /250/.test(document.querySelector('#test-result').textContent));
    assert.equal(delivered('me'), 1);
    assert.equal(delivered('user1'), 0);

    // 6. Send all, slowly enough to stop half way.
    await page.fill('#concurrency', '1');
    await page.fill('#rate', '5/s');
    await page.waitForTimeout(700);
    await page.click('#send-start');
    await page.waitForFunction(() => document.querySelectorAll('#results-table tbody tr').length >= 15);
    await shot('3-sending');
    // The README's picture: the Send section in the middle of a send.
    await page.locator('#send').screenshot({ path: path.join(artifacts, 'send-section.png') });
    await page.click('#send-stop');
    await page.waitForFunction(() => !document.querySelector('#send-resume').disabled);
    const stoppedAt = await page.$$eval('#results-table tbody tr', (rows) => rows.length);
    assert.ok(stoppedAt < 50, `stopped after ${stoppedAt} rows`);
    const sentBefore = Array.from({ length: 50 }, (_, i) => delivered(`user${i + 1}`)).reduce((a, b) => a + b, 0);
    assert.ok(sentBefore > 0 && sentBefore < 49, `${sentBefore} delivered at the stop`);

    // Reopening the page shows where the campaign stands; Resume sends the rest.
    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForFunction((n) => document.querySelectorAll('#results-table tbody tr').length === n, stoppedAt);
    await page.fill('#concurrency', '4');
    await page.fill('#rate', '');
    await page.waitForTimeout(700);
    await page.click('#send-resume');
    await page.waitForFunction(() => document.querySelectorAll('#results-table tbody tr').length === 50
      && !document.querySelector('#send-start').disabled, null, { timeout: 120_000 });
    assert.match(await page.textContent('#progress-text'), /^50 of 50 settled/);
    await shot('4-done');

    // Every good row exactly once; the bad one never.
    for (let i = 1; i <= 50; i++) {
      assert.equal(delivered(`user${i}`), i === 7 ? 0 : 1, `user${i}`);
    }

    // The failed rows, ready to fix: row 7 with its reason.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-failed')]);
    const saved = path.join(artifacts, 'failed.csv');
    await download.saveAs(saved);
    const failed = fs.readFileSync(saved, 'utf8');
    assert.equal(failed.split('\n')[0], 'email,name,plan,error');
    assert.ok(failed.split('\n')[1].startsWith(`user7.${domain},User 7,plan 7,"`), failed);
    assert.match(failed, /is not an email address/);
    assert.equal(failed.trim().split('\n').length, 2, failed);

    assert.deepEqual(outside, [], 'requests left the machine');
    assert.deepEqual(errors, [], 'the page logged errors');
  } catch (e) {
    await shot('failure').catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
});

test('a narrow window keeps every control reachable', { timeout: 60_000 }, async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 360, height: 800 } });
    await page.goto(url);
    await page.waitForSelector('#app:not([hidden])');
    // Nothing wider than the window but the tables' own scrolling wrappers.
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 360, `the page is ${wide}px wide`);
    // Every input has a label.
    const unlabelled = await page.$$eval('input:not([type=hidden]), select, textarea',
      (els) => els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id));
    assert.deepEqual(unlabelled, []);
    // Keyboard: the first Tab lands on a control with a visible focus outline.
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none');
    await page.screenshot({ path: path.join(artifacts, '5-narrow.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
