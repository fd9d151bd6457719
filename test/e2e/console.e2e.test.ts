/**
 * The live console (`GET /`) in a real browser: Debian's Chromium, headless, driven by
 * playwright-core, against the production gateway with the real speech engine while the Twilio
 * emulator streams a two-party conference (spoken fixtures) and a lone call (a tone). The
 * streams appear, their level meters move, a transcript line shows, and the Stop button (after
 * its confirm dialog) stops the stream at the emulator.
 *
 * CONSOLE_SCREENSHOT=docs/console.png keeps a screenshot of the page under that load.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, startStream, toneMulaw, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/gateway.js';
import { ROOT } from '../helpers/process.js';

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SPEECH = join(ROOT, 'test', 'fixtures', 'speech');

let stack: Stack;
let profile: string;
let browser: BrowserContext;
let page: Page;
let conferenceSid: string;
let toneStreamSid: string;

/** The dBFS a meter shows (data-db), or null when it shows none. */
async function meterDb(streamSid: string, track: string): Promise<number | null> {
  const db = await page.locator(`.row[data-stream-sid="${streamSid}"] .meter[data-track="${track}"]`).getAttribute('data-db');
  return db === null || db === '' ? null : Number(db);
}

beforeAll(async () => {
  stack = await startStack({ speed: 1, env: { TRANSCRIPTION: 'pocketsphinx', MAX_EVENT_LOOP_DELAY_MS: '60000' } });
  const conference = await stack.sim.createConference({
    statusCallback: `${stack.http}/twilio/conference-events`,
    statusCallbackEvent: 'start end join leave',
    participants: [
      { label: 'alice', audio: join(SPEECH, 'demo-alice.ulaw'), loop: true },
      { label: 'bob', audio: join(SPEECH, 'demo-bob.ulaw'), loop: true },
    ],
  });
  conferenceSid = conference.sid;
  const call = await stack.sim.createCall({ audio: { type: 'mulaw', data: toneMulaw(120_000) } });
  toneStreamSid = await startStream(stack, call.sid);
  await waitFor(() => stack.started.size === 3, 30_000, 'three streams started');

  profile = await mkdtemp(join(tmpdir(), 'sg-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 800 },
  });
  page = await browser.newPage();
  await page.goto(`${stack.http}/`);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  await stack?.close();
}, 60_000);

describe('live console in Chromium', () => {
  it('lists the live streams with their conference', async () => {
    for (const sid of stack.started) await page.locator(`.row[data-stream-sid="${sid}"]`).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('#n-streaming').textContent(), { timeout: 10_000 }).toBe('3');
    expect(await page.locator('#n-conferences').textContent()).toBe('1');
    const conferenceRows = page.locator(`.row .sid[title="${conferenceSid}"]`);
    expect(await conferenceRows.count()).toBe(2);
  });

  it('moves the level meters as the audio goes on', async () => {
    // The tone holds a steady level well above silence; speech rises and falls.
    await expect.poll(() => meterDb(toneStreamSid, 'inbound'), { timeout: 15_000 }).toBeGreaterThan(-20);
    const speaker = [...stack.started].find((s) => s !== toneStreamSid)!;
    const seen = new Set<number | null>();
    await waitFor(
      async () => {
        seen.add(await meterDb(speaker, 'inbound'));
        return seen.size >= 3;
      },
      30_000,
      'three different levels on a speaking track',
    );
  });

  it('shows a transcript line from the speech engine', async () => {
    const line = page.locator('#transcripts p').first();
    await line.waitFor({ timeout: 60_000 });
    expect((await line.textContent())!.length).toBeGreaterThan(3);
  });

  it('stops a stream at the emulator with the Stop button, after a confirm', async () => {
    const dialogs: string[] = [];
    page.once('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.locator(`.row[data-stream-sid="${toneStreamSid}"] button[data-action="stop"]`).click();
    await waitFor(() => stack.sim.stream(toneStreamSid)?.status === 'stopped', 15_000, 'the emulator stopped the stream');
    expect(dialogs).toEqual([expect.stringContaining(toneStreamSid)]);
    await page.locator(`.row[data-stream-sid="${toneStreamSid}"]`).waitFor({ state: 'detached', timeout: 15_000 });
    // The conference's streams go on.
    expect(await page.locator('#n-streaming').textContent()).toBe('2');
  });

  it('leaves a stream alone when the confirm is dismissed', async () => {
    const speaker = [...stack.started].find((s) => s !== toneStreamSid)!;
    let asked = false;
    page.once('dialog', (d) => {
      asked = true;
      void d.dismiss();
    });
    await page.locator(`.row[data-stream-sid="${speaker}"] button[data-action="stop"]`).click();
    await waitFor(() => asked, 5_000, 'the confirm dialog');
    // A later poll has rendered (the status line's time moves) and the stream is still live.
    const before = await page.locator('#status').textContent();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 10_000 }).not.toBe(before);
    expect(stack.sim.stream(speaker)?.status).not.toBe('stopped');
    expect(await page.locator(`.row[data-stream-sid="${speaker}"]`).count()).toBe(1);
  });

  it('keeps only the rows in view in the page when many streams are live (virtualised list)', async () => {
    const extra = 20;
    for (let i = 0; i < extra; i++) {
      const call = await stack.sim.createCall({ audio: { type: 'mulaw', data: toneMulaw(60_000, 300 + 20 * i) } });
      await startStream(stack, call.sid);
    }
    await waitFor(() => stack.started.size === 3 + extra, 90_000, 'the extra streams started');
    await expect.poll(async () => Number(await page.locator('#n-streaming').textContent()), { timeout: 30_000 }).toBeGreaterThanOrEqual(extra);
    // A 450 px window holds about 7 rows of 44 px; with the overscan, well under the 22 streams.
    await page.setViewportSize({ width: 1400, height: 450 });
    await expect.poll(() => page.locator('.row').count(), { timeout: 5_000 }).toBeLessThan(20);
    expect(await page.locator('.row').count()).toBeGreaterThan(3);
    // Scrolling to the bottom brings the last rows in (and drops the first).
    const firstSid = await page.locator('.row[style*="top: 0px"]').getAttribute('data-stream-sid');
    await page.locator('#list').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await expect.poll(() => page.locator(`.row[data-stream-sid="${firstSid}"]`).count(), { timeout: 5_000 }).toBe(0);
    // The filter finds one stream among them.
    const lastSid = [...stack.started].at(-1)!;
    await page.locator('#filter').fill(lastSid.slice(-10));
    await expect.poll(() => page.locator('.row').count(), { timeout: 5_000 }).toBe(1);
    await page.locator('#filter').fill('');
    await page.setViewportSize({ width: 1400, height: 800 });
    if (process.env.CONSOLE_SCREENSHOT) {
      await page.locator('#list').evaluate((el) => (el.scrollTop = 0));
      await page.waitForTimeout(1500); // the next poll paints fresh levels for the picture
      await page.screenshot({ path: join(ROOT, process.env.CONSOLE_SCREENSHOT) });
    }
  }, 120_000);
});
