// The console and the buyer's page in a real browser (Debian's Chromium through playwright-core),
// against the app on PGlite on a real port: what an operator and a buyer see and can do, with
// the content security policy in force and nothing thrown in the page. Screenshots of the main
// screens are saved as the tests go (npm run screenshots puts them in docs/screenshots/).
//
// The live-update tests need the change feed's stream (GET /events/:id/stream). Without it the
// pages poll, and those tests are skipped with a message; everything else runs either way.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { installContractCheck, contractTest } from './support/contract.ts';
import {
  type Served,
  chromiumMissing,
  streamStatus,
  launchChromium,
  screenshotPath,
  serve,
  watchPage,
} from './support/browser.ts';
import { NO_LIMITS_BODY } from './support/helpers.ts';

installContractCheck();

interface Granted {
  hold_id: number;
  payment_token: string;
}

/** How soon a change made elsewhere must show on an open page when the stream is there. */
const LIVE_WITHIN_MS = 1000;

const createEvent = async (s: Served, name: string, totalSeats: number, headers: Record<string, string> = {}) =>
  (await s.call<{ event_id: number }>('POST', '/events', { event: { name, total_seats: totalSeats } }, headers))
    .event_id;
const holdSeats = (s: Served, eventId: number, qty: number) =>
  s.call<Granted>('POST', '/holds', { hold: { event_id: eventId, qty } });
const bookHold = async (s: Served, { hold_id, payment_token }: Granted) =>
  (await s.call<{ booking_id: number }>('POST', '/book', { booking: { hold_id, payment_token } })).booking_id;
const snapshot = (s: Served, eventId: number) =>
  s.call<{ available: number; held: number; booked: number }>('GET', `/events/${eventId}`);

/** The figures an availability bar shows, as data attributes. */
const bar = (page: Page, scope = '#event-bar') => page.locator(`${scope} .availability`);

describe('the console and the buyer in Chromium', { skip: chromiumMissing }, () => {
  let browser: Browser;
  let s: Served;
  let context: BrowserContext;
  let problems: string[];

  before(async () => {
    browser = await launchChromium();
    s = await serve();
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  /** A fresh tab (its own sessionStorage) whose errors the test checks at the end. */
  async function open(url: string): Promise<Page> {
    context = await browser.newContext({ viewport: { width: 1200, height: 860 }, acceptDownloads: true });
    const page = await context.newPage();
    problems = watchPage(page);
    await page.goto(`${s.base}${url}`);
    return page;
  }
  const done = async () => {
    await context.close();
    assert.deepEqual(problems, []);
  };

  test('an operator creates an event, renames and resizes it, and sees a resize below the seats in use refused', async () => {
    const page = await open('/');
    await page.getByText('Admin actions are open').waitFor();
    const create = page.getByRole('region', { name: 'Create an event' });
    await create.getByLabel('Name').fill('Spring concert');
    await create.getByLabel('Total seats').fill('100');
    await create.getByRole('button', { name: 'Create event' }).click();
    await create.getByRole('status').getByText('Created “Spring concert”').waitFor();
    const row = page.locator('tr', { hasText: 'Spring concert' });
    await row.locator('.availability[data-total="100"][data-available="100"]').waitFor();
    const eventId = Number(await row.getAttribute('data-event-id'));

    await holdSeats(s, eventId, 3);
    await row.getByText('Edit').click();
    await row.getByLabel('Total seats').fill('2');
    await row.getByRole('button', { name: 'Save changes' }).click();
    const refusal = row.getByRole('alert');
    await refusal.getByText('Seats are held or booked').waitFor();
    assert.match(await refusal.innerText(), /3 seats are held and 0 booked, so the event needs at least 3 seats/);
    await page.screenshot({ path: screenshotPath('console-resize-refused.png') });

    await row.getByLabel('Name', { exact: true }).fill('Spring concert (matinee)');
    await row.getByLabel('Total seats').fill('50');
    await row.getByRole('button', { name: 'Save changes' }).click();
    await row.getByText('Saved: “Spring concert (matinee)”, 50 seats.').waitFor();
    await row.locator('.availability[data-total="50"][data-available="47"][data-held="3"]').waitFor();
    assert.equal(await row.getByRole('link').innerText(), 'Spring concert (matinee)');
    await row.getByText('Edit').click();
    await createEvent(s, 'Opera night', 40);
    await page.locator('tr', { hasText: 'Opera night' }).waitFor(); // by the stream, or the next poll
    await page.screenshot({ path: screenshotPath('console-events.png') });
    await done();
  });

  test("an event's page shows holds and bookings; expiring a hold and cancelling a booking bring seats back", async () => {
    const eventId = await createEvent(s, 'Jazz club', 10);
    const first = await holdSeats(s, eventId, 2);
    const second = await holdSeats(s, eventId, 3);
    const bookingId = await bookHold(s, first);

    const page = await open(`/console/events/${eventId}`);
    await page.getByRole('heading', { name: `#${eventId} Jazz club` }).waitFor();
    await bar(page).and(page.locator('[data-available="5"][data-held="3"][data-booked="2"]')).waitFor();
    assert.equal(await page.locator('#count-available').innerText(), '5');
    const holds = page.getByRole('region', { name: 'Holds', exact: true });
    const bookings = page.getByRole('region', { name: 'Bookings', exact: true });
    await holds.getByRole('cell', { name: `#${second.hold_id}`, exact: true }).waitFor();
    await bookings
      .getByRole('cell', { name: `#${bookingId}`, exact: true })
      .first()
      .waitFor();
    const recent = page.locator('#recent');
    await recent.getByText(`Hold #${second.hold_id}`).waitFor();
    await recent.getByText(`Booking #${bookingId}`).waitFor();
    await page.getByText(/Last 3 minutes: 2 holds and 1 booking/).waitFor();
    await page.screenshot({ path: screenshotPath('console-event.png'), fullPage: true });

    await holds.getByRole('button', { name: `Expire now: hold #${second.hold_id}` }).click();
    await page.getByRole('status').getByText(`Hold #${second.hold_id} expired: 3 seats back on sale.`).waitFor();
    await bar(page).and(page.locator('[data-available="8"][data-held="0"]')).waitFor();
    await holds.getByLabel('Show').selectOption('expired');
    await holds.getByRole('row', { name: new RegExp(`#${second.hold_id} 3 expired`) }).waitFor();

    await bookings.getByRole('button', { name: `Cancel booking #${bookingId}` }).click();
    await page.getByRole('status').getByText(`Booking #${bookingId} cancelled: 2 seats back on sale.`).waitFor();
    await bar(page).and(page.locator('[data-available="10"][data-booked="0"]')).waitFor();
    assert.deepEqual(await snapshot(s, eventId), {
      ...NO_LIMITS_BODY,
      event_id: eventId,
      name: 'Jazz club',
      total: 10,
      available: 10,
      held: 0,
      booked: 0,
    });
    await bookings.getByRole('row', { name: new RegExp(`#${bookingId} #${first.hold_id} 2 cancelled`) }).waitFor();

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      bookings.getByRole('link', { name: 'Download every booking (CSV)' }).click(),
    ]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^booking_id,hold_id,event_id,qty,status,created_at,cancelled_at,customer\r\n/);
    assert.match(csv, new RegExp(`^${bookingId},${first.hold_id},${eventId},2,cancelled,.*,$`, 'm'));
    await done();
  });

  test('a hold made elsewhere moves the open pages within a second; so do a booking, a cancellation and an expiry', async () => {
    const eventId = await createEvent(s, 'Live check', 20);
    // The pages go live through the stream: a broken stream route is a failure, not a skip.
    assert.equal(await streamStatus(s.base, eventId), 200, 'GET /events/:id/stream answers 200');
    const page = await open(`/console/events/${eventId}`);
    await page.locator('#mode[data-mode="live"]').waitFor();
    const list = await context.newPage();
    await list.goto(`${s.base}/`);
    await list.locator('#mode[data-mode="live"]').waitFor();
    const listBar = list.locator(`tr[data-event-id="${eventId}"] .availability`);

    /** Runs a change and checks both pages show `figures` within LIVE_WITHIN_MS of its answer. */
    const within = async (change: () => Promise<unknown>, figures: string) => {
      await change();
      const answered = Date.now();
      await bar(page).and(page.locator(figures)).waitFor({ timeout: LIVE_WITHIN_MS });
      await listBar
        .and(list.locator(figures))
        .waitFor({ timeout: Math.max(1, LIVE_WITHIN_MS - (Date.now() - answered)) });
    };
    const granted = await holdSeats(s, eventId, 2);
    await bar(page).and(page.locator('[data-held="2"]')).waitFor({ timeout: LIVE_WITHIN_MS });
    let bookingId = 0;
    await within(async () => (bookingId = await bookHold(s, granted)), '[data-held="0"][data-booked="2"]');
    await within(() => s.call('POST', `/bookings/${bookingId}/cancel`), '[data-booked="0"][data-available="20"]');
    const lapsing = await holdSeats(s, eventId, 4);
    await bar(page).and(page.locator('[data-held="4"]')).waitFor({ timeout: LIVE_WITHIN_MS });
    await within(
      () => s.call('POST', `/admin/holds/${lapsing.hold_id}/expire`),
      '[data-held="0"][data-available="20"]',
    );

    // A buyer on another page holds seats; the operator's bar moves.
    const buyer = await context.newPage();
    await buyer.goto(`${s.base}/buy?event=${eventId}`);
    await buyer.getByRole('spinbutton', { name: 'Seats' }).fill('3');
    await buyer.getByRole('button', { name: 'Hold seats' }).click();
    await buyer.getByRole('heading', { name: 'Your seats are held' }).waitFor();
    await bar(page).and(page.locator('[data-held="3"]')).waitFor({ timeout: LIVE_WITHIN_MS });
    await page
      .locator('#recent')
      .getByText(/Hold #\d+ granted · 3 seats/)
      .waitFor({ timeout: LIVE_WITHIN_MS });
    await done();
  });

  test('a buyer holds seats, sees the time left, extends, and books', async () => {
    const eventId = await createEvent(s, 'Blues evening', 20);
    const page = await open(`/buy?event=${eventId}`);
    await page.getByText('Blues evening: 20 of 20 seats available').waitFor();
    assert.equal(await page.getByLabel('Event').inputValue(), String(eventId));
    await page.getByRole('spinbutton', { name: 'Seats' }).fill('2');
    await page.getByRole('button', { name: 'Hold seats' }).click();

    const card = page.getByRole('region', { name: 'Your seats are held' });
    await card.getByText(/^Hold #\d+: 2 seats for Blues evening\.$/).waitFor();
    const timer = page.getByRole('timer');
    assert.match(await timer.innerText(), /^(2:00|1:5\d)$/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'book', 'focus moves to Book');
    await page.getByText('Blues evening: 18 of 20 seats available').waitFor();
    await page.screenshot({ path: screenshotPath('buy-held.png') });

    await card.getByRole('button', { name: 'Keep them 60 s longer' }).click();
    await page.waitForFunction(() => /^(3:00|2:5\d)$/.test(document.getElementById('countdown')?.textContent ?? ''));
    await card.getByRole('button', { name: 'Book these seats' }).click();
    const booked = page.locator('[data-outcome="booked"]');
    await booked.getByRole('heading', { name: 'Booked!' }).waitFor();
    assert.match(await booked.innerText(), /Booking #\d+: 2 seats for Blues evening\. Booked at \d\d:\d\d:\d\d\./);
    await page.getByText('Blues evening: 18 of 20 seats available (0 held, 2 booked).').waitFor();
    assert.equal((await snapshot(s, eventId)).booked, 2);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('box-office.hold')), null, 'the token is forgotten');
    await page.screenshot({ path: screenshotPath('buy-booked.png') });
    await done();
  });

  test('a buyer reads refusals in words: too few seats, too many asked for; and releases a hold', async () => {
    const eventId = await createEvent(s, 'Small room', 5);
    await holdSeats(s, eventId, 4);
    const page = await open(`/buy?event=${eventId}`);
    await page.getByText('Small room: 1 of 5 seats available').waitFor();
    const seats = page.getByRole('spinbutton', { name: 'Seats' });
    await seats.fill('3');
    await page.getByRole('button', { name: 'Hold seats' }).click();
    const alert = page.getByRole('alert');
    await alert.getByText('Not enough seats available').waitFor();
    assert.match(
      await alert.innerText(),
      /Only 1 of the 3 seats asked for are available\.\s+1 seat is left: ask for 1 or fewer\./,
    );
    await page.screenshot({ path: screenshotPath('buy-refused.png') });

    await seats.fill('11');
    await page.getByRole('button', { name: 'Hold seats' }).click();
    await alert.getByText('Request failed validation').waitFor();
    assert.match(await alert.innerText(), /hold › qty: must be at most 10/);

    await seats.fill('1');
    await page.getByRole('button', { name: 'Hold seats' }).click();
    await page.getByText('Small room: 0 of 5 seats available').waitFor();
    await page.getByRole('button', { name: 'Release them' }).click();
    await page.getByRole('heading', { name: 'Seats released' }).waitFor();
    await page.getByText(/You released hold #\d+\. Its 1 seat are back on sale\./).waitFor();
    await page.getByText('Small room: 1 of 5 seats available').waitFor();
    await done();
  });

  test("staff set an event's limits on its page and see them; a buyer over a limit reads why, in words", async () => {
    const eventId = await createEvent(s, 'Limited gig', 10);
    const page = await open(`/console/events/${eventId}`);
    await page.getByRole('heading', { name: `#${eventId} Limited gig` }).waitFor();
    const limits = page.locator('#limits');
    await limits.getByText('Optional').waitFor();
    assert.equal(await page.locator('#limit-per-customer').innerText(), 'No limit');

    await page.getByText('Set limits').click();
    const form = page.getByRole('form', { name: 'Limits of Limited gig' });
    // Checked as the server would: no limit above the event's seats.
    await form.getByLabel('Seats per customer').fill('11');
    await form.getByRole('button', { name: 'Save limits' }).click();
    await form.getByRole('alert').getByText('Request failed validation').waitFor();
    assert.match(
      await form.getByRole('alert').innerText(),
      /event › max_seats_per_customer: must be at most total_seats \(10\)/,
    );
    await form.getByLabel('Seats per customer').fill('4');
    await form.getByLabel('Seats per hold').fill('3');
    await form.getByLabel('Customer required').check();
    await form.getByRole('button', { name: 'Save limits' }).click();
    await form
      .getByRole('status')
      .getByText('Limits saved: 4 seats per customer, 3 seats per hold, customer required.')
      .waitFor();
    await limits.getByText('Required on every hold').waitFor();
    assert.equal(await page.locator('#limit-per-customer').innerText(), '4 seats');
    assert.equal(await page.locator('#limit-per-hold').innerText(), '3 seats');
    const saved = await s.call<Record<string, unknown>>('GET', `/events/${eventId}`);
    assert.deepEqual([saved.max_seats_per_customer, saved.max_seats_per_hold, saved.customer_required], [4, 3, true]);
    await page.screenshot({ path: screenshotPath('console-limits.png') });

    const buyer = await context.newPage();
    problems.push(...watchPage(buyer));
    await buyer.goto(`${s.base}/buy?event=${eventId}`);
    await buyer
      .getByText(
        'This event sells at most 4 seats per customer, at most 3 seats per hold. ' +
          'Enter your email address or account id to hold seats.',
      )
      .waitFor();
    const seats = buyer.getByRole('spinbutton', { name: 'Seats' });
    const who = buyer.getByLabel('Your email or account id');
    const hold = buyer.getByRole('button', { name: 'Hold seats' });
    const alert = buyer.getByRole('alert');
    await seats.fill('2');
    await hold.click();
    await alert.getByText('This event needs a customer on every hold').waitFor();
    assert.match(await alert.innerText(), /Enter your email address or account id as the customer/);
    assert.equal(await buyer.evaluate(() => document.activeElement?.id), 'customer', 'focus moves to the customer');

    await who.fill('Ann+gig@Example.com');
    await seats.fill('4');
    await hold.click();
    await alert.getByText('More seats than one hold of this event may take').waitFor();
    assert.match(await alert.innerText(), /One hold of this event may take at most 3 seats: ask for 3 or fewer\./);

    await seats.fill('3');
    await hold.click();
    await buyer.getByText(/^Hold #\d+: 3 seats for Limited gig\. Customer: Ann\+gig@Example\.com\.$/).waitFor();
    await buyer.getByRole('button', { name: 'Book these seats' }).click();
    await buyer.getByRole('heading', { name: 'Booked!' }).waitFor();
    await buyer.getByRole('button', { name: 'Hold more seats' }).click();
    // The same person by another spelling of the address: one allowance.
    await who.fill('ann@example.com');
    await seats.fill('2');
    await hold.click();
    await alert.getByText('This customer has reached the limit of seats for this event').waitFor();
    assert.match(
      await alert.innerText(),
      /3 seats are already held or booked for this customer, of the 4 allowed: ask for 1 or fewer\./,
    );
    await buyer.screenshot({ path: screenshotPath('buy-customer-limit.png') });
    await seats.fill('1');
    await hold.click();
    await buyer.getByRole('heading', { name: 'Your seats are held' }).waitFor();
    await done();
  });

  test('the create form takes the optional limits, checked against the total first', async () => {
    const page = await open('/');
    const create = page.getByRole('region', { name: 'Create an event' });
    await create.getByLabel('Name').fill('Capped matinee');
    await create.getByLabel('Total seats').fill('5');
    await create.getByLabel('Seats per customer').fill('6');
    await create.getByRole('button', { name: 'Create event' }).click();
    assert.match(
      await create.getByRole('alert').innerText(),
      /event › max_seats_per_customer: must be at most total_seats \(5\)/,
    );
    await create.getByLabel('Seats per customer').fill('2');
    await create.getByLabel('Customer required').check();
    await create.getByRole('button', { name: 'Create event' }).click();
    await create.getByRole('status').getByText('Created “Capped matinee”').waitFor();
    const eventId = Number(await page.locator('tr', { hasText: 'Capped matinee' }).getAttribute('data-event-id'));
    const created = await s.call<Record<string, unknown>>('GET', `/events/${eventId}`);
    assert.deepEqual(
      [created.max_seats_per_customer, created.max_seats_per_hold, created.customer_required],
      [2, null, true],
    );
    await done();
  });

  test("staff list one customer's holds and bookings, with their seats against the limit", async () => {
    const { event_id: eventId } = await s.call<{ event_id: number }>('POST', '/events', {
      event: { name: 'Filter night', total_seats: 20, max_seats_per_customer: 5 },
    });
    const holdFor = (customer: string | null, qty: number) =>
      s.call<Granted>('POST', '/holds', {
        hold: { event_id: eventId, qty, ...(customer === null ? {} : { customer }) },
      });
    const annBooked = await holdFor('ann@example.com', 2);
    const annBookingId = await bookHold(s, annBooked);
    const annHeld = await holdFor('ann@example.com', 1);
    const bob = await holdFor('bob-42', 3);
    const nobody = await holdFor(null, 1);
    // A customer is the integrator's text: shown as text, never read as markup.
    const markup = await holdFor('<b>zoe</b>', 1);

    const page = await open(`/console/events/${eventId}`);
    const holds = page.getByRole('region', { name: 'Holds', exact: true });
    const bookings = page.getByRole('region', { name: 'Bookings', exact: true });
    const cell = (region: typeof holds, id: number) => region.getByRole('cell', { name: `#${id}`, exact: true });
    await cell(holds, bob.hold_id).waitFor();
    await cell(holds, nobody.hold_id).waitFor();
    await holds.getByRole('button', { name: 'Only customer <b>zoe</b>' }).waitFor();
    assert.equal(await holds.getByRole('row', { name: new RegExp(`^#${markup.hold_id} `) }).count(), 1);
    assert.equal(await page.locator('#holds-rows b').count(), 0, 'no markup from a customer');
    await bookings.getByRole('button', { name: 'Only customer ann@example.com' }).waitFor();

    const sent: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.searchParams.has('customer')) sent.push(`${url.pathname}?customer=${url.searchParams.get('customer')}`);
    });
    const filter = page.getByRole('region', { name: 'One customer' });
    await filter.getByLabel('Customer (email or account id)').fill('Ann+vip@Example.com');
    await filter.getByRole('button', { name: 'Show their holds and bookings' }).click();
    await filter
      .getByRole('status')
      .getByText('ann@example.com: 1 seat held, 2 booked; at most 5 seats per customer, 2 left.')
      .waitFor();
    await cell(holds, bob.hold_id).waitFor({ state: 'detached' });
    await cell(holds, annHeld.hold_id).waitFor();
    assert.equal(await cell(holds, nobody.hold_id).count(), 0);
    await cell(bookings, annBookingId).first().waitFor();
    assert.ok(sent.includes(`/events/${eventId}/holds?customer=Ann+vip@Example.com`), sent.join(' '));
    assert.ok(sent.includes(`/events/${eventId}/bookings?customer=Ann+vip@Example.com`), sent.join(' '));
    await page.screenshot({ path: screenshotPath('console-customer.png'), fullPage: true });

    await filter.getByRole('button', { name: 'Everyone' }).click();
    await cell(holds, bob.hold_id).waitFor();
    await holds.getByRole('button', { name: 'Only customer bob-42' }).click();
    await filter
      .getByRole('status')
      .getByText('bob-42: 3 seats held, 0 booked; at most 5 seats per customer, 2 left.')
      .waitFor();
    assert.equal(await filter.getByLabel('Customer (email or account id)').inputValue(), 'bob-42');
    await cell(holds, annHeld.hold_id).waitFor({ state: 'detached' });
    await bookings.getByText('None yet for “bob-42”.').waitFor();
    await done();
  });

  test('every control on every page has a name, and the console works from the keyboard', async () => {
    const eventId = await createEvent(s, 'Keyboard check', 10);
    for (const url of ['/', `/console/events/${eventId}`, `/buy?event=${eventId}`]) {
      const page = await open(url);
      await page.waitForLoadState('networkidle');
      const unnamed = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea, button, a[href], summary')]
          .filter((element) => (element as HTMLElement).offsetParent !== null)
          .filter((element) => {
            const labelled =
              ((element as HTMLInputElement).labels?.length ?? 0) > 0 ||
              element.hasAttribute('aria-label') ||
              element.hasAttribute('aria-labelledby');
            return !labelled && (element.textContent ?? '').trim() === '';
          })
          .map((element) => element.outerHTML.slice(0, 80)),
      );
      assert.deepEqual(unnamed, [], url);
      await done();
    }

    const page = await open('/');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to the events');
    for (let presses = 0; presses < 12; presses++) {
      if ((await page.evaluate(() => document.activeElement?.id)) === 'new-name') break;
      await page.keyboard.press('Tab');
    }
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'new-name', 'the create form is reachable');
    await page.keyboard.type('Typed gala');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('30');
    await page.keyboard.press('Enter');
    const row = page.locator('tr', { hasText: 'Typed gala' });
    await row.locator('.availability[data-total="30"]').waitFor();
    await row.getByText('Edit').focus();
    await page.keyboard.press('Enter');
    await row.getByLabel('Name', { exact: true }).waitFor();
    await done();
  });
});

describe('the waiting room, in Chromium', { skip: chromiumMissing }, () => {
  // A real queue on the system clock: admission ticks every 100 ms, so a few places at a rate of
  // some per second go through in seconds, as they would in a sale.
  let browser: Browser;
  let s: Served;
  let context: BrowserContext;
  let problems: string[];
  before(async () => {
    browser = await launchChromium();
    s = await serve({ QUEUE_TICK_MS: '100', ADMISSION_SECRET: 'k1:browser-queue-secret-0123456789abcdef' });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  async function open(url: string): Promise<Page> {
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    problems = watchPage(page);
    await page.goto(`${s.base}${url}`);
    return page;
  }
  const done = async () => {
    await context.close();
    assert.deepEqual(problems, []);
  };

  /** An event on sale since a second ago, through a queue admitting `rate` a minute. */
  const queuedEvent = async (name: string, rate: number) =>
    (
      await s.call<{ event_id: number }>('POST', '/events', {
        event: {
          name,
          total_seats: 20,
          max_seats_per_customer: 4,
          sale_opens_at: new Date(Date.now() - 1000).toISOString(),
          queue: { admit_per_minute: rate, admission_ttl_seconds: 900 },
        },
      })
    ).event_id;
  const joinAs = (eventId: number, customer: string) =>
    s.call<{ ticket: string; position: number }>('POST', `/events/${eventId}/queue`, { customer });
  const room = (page: Page) => page.locator('#waiting-room');

  test('a buyer waits in the queue, keeps the place over a reload, is admitted, and holds seats with the token', async () => {
    const eventId = await queuedEvent('Stadium on-sale', 120);
    // Paused while three join, so that the places are known when the page shows them.
    await s.call('POST', `/events/${eventId}/queue/pause`);
    await joinAs(eventId, 'early-1@example.com');
    await joinAs(eventId, 'early-2@example.com');

    const page = await open(`/buy?event=${eventId}`);
    await room(page).getByRole('heading', { name: 'This sale has a waiting room' }).waitFor();
    await room(page)
      .getByText(/Stadium on-sale sells through a queue\..* you have 15 min to hold seats/)
      .waitFor();
    await page.getByLabel('Your email or account id').fill('Fan@Example.com');
    await page.getByRole('button', { name: 'Join the queue' }).click();

    await room(page).and(page.locator('[data-state="paused"]')).waitFor();
    await room(page).getByRole('heading', { name: 'The queue is paused' }).waitFor();
    assert.equal(await page.locator('#waiting-position').innerText(), '3');
    assert.equal(await page.locator('#waiting-ahead').innerText(), '2');
    assert.match(
      await page.locator('#waiting-text').innerText(),
      /paused admission for a moment\. You keep your place\. You are number 3 in line, with 2 people ahead of you\./,
    );
    assert.equal(await page.getByRole('button', { name: 'Join the queue' }).isDisabled(), true);
    await page.screenshot({ path: screenshotPath('buy-queue.png') });

    // A reload keeps the place: the ticket is in the tab's sessionStorage.
    await page.reload();
    await room(page).and(page.locator('[data-state="paused"]')).waitFor();
    assert.equal(await page.locator('#waiting-position').innerText(), '3');
    assert.equal(await page.getByLabel('Your email or account id').inputValue(), 'Fan@Example.com');

    const sent: Array<string | undefined> = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/holds')
        sent.push(request.headers()['admission-token']);
    });
    await s.call('POST', `/events/${eventId}/queue/resume`);
    await room(page).and(page.locator('[data-state="waiting"], [data-state="admitted"]')).waitFor();
    await room(page).getByRole('heading', { name: "It's your turn" }).waitFor({ timeout: 15_000 });
    assert.match(await page.locator('#waiting-text').innerText(), /^Hold your seats now, before \d\d:\d\d:\d\d\./);
    await page.screenshot({ path: screenshotPath('buy-queue-admitted.png') });

    await page.getByRole('spinbutton', { name: 'Seats' }).fill('2');
    await page.getByRole('button', { name: 'Hold seats' }).click();
    await page.getByRole('heading', { name: 'Your seats are held' }).waitFor();
    assert.equal(sent.length, 1);
    assert.match(sent[0] ?? '', /^at1\./, 'the hold carried the admission token');
    const { holds } = await s.call<{ holds: Array<{ qty: number; customer: string | null; status: string }> }>(
      'GET',
      `/events/${eventId}/holds`,
    );
    assert.deepEqual(
      holds.map(({ qty, customer, status }) => ({ qty, customer, status })),
      [{ qty: 2, customer: 'fan@example.com', status: 'active' }],
    );
    await done();
  });

  test("staff set a queue on an event, watch it, pause it (the buyer's page says so), change the rate, resume it and remove it", async () => {
    const { event_id: eventId } = await s.call<{ event_id: number }>('POST', '/events', {
      event: { name: 'Arena night', total_seats: 30 },
    });
    const page = await open(`/console/events/${eventId}`);
    await page.getByRole('heading', { name: `#${eventId} Arena night` }).waitFor();
    const panel = page.locator('#queue-panel');
    assert.equal(await panel.isVisible(), false, 'no queue, no panel');

    await page.getByText('Sale opening and queue').click();
    const form = page.getByRole('form', { name: 'Sale opening and queue of Arena night' });
    const opened = await page.evaluate(() => {
      const at = new Date(Date.now() - 60_000);
      return new Date(at.getTime() - at.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    });
    await form.getByLabel('Sale opens at').fill(opened);
    await form.getByLabel('Sell through a queue').check();
    await form.getByLabel('Admit per minute').fill('60');
    await form.getByLabel('Seconds to buy once admitted').fill('900');
    await form.getByRole('button', { name: 'Save sale settings' }).click();
    // A queue needs a cap per customer: refused, in words.
    const refusal = form.getByRole('alert');
    await refusal.getByText('Request failed validation').waitFor();
    assert.match(await refusal.innerText(), /event › max_seats_per_customer: is required with a queue/);

    await s.call('PATCH', `/events/${eventId}`, { event: { max_seats_per_customer: 4 } });
    await form.getByRole('button', { name: 'Save sale settings' }).click();
    await form
      .getByRole('status')
      .getByText(/^Saved: opens at \d\d:\d\d:\d\d, a queue admitting 60 buyers a minute, 15 min each to buy\.$/)
      .waitFor();
    await panel.waitFor();
    await panel.locator('#queue-state[data-mode="admitting"]').waitFor();
    assert.equal(await panel.locator('#queue-rate').innerText(), '60');

    await panel.getByRole('button', { name: 'Pause admission' }).click();
    await panel.getByRole('status').getByText('Admission paused.', { exact: false }).waitFor();
    await panel.locator('#queue-state[data-mode="paused"]').waitFor();
    for (let i = 1; i <= 4; i++) await joinAs(eventId, `fan-${i}@example.com`);

    const buyerContext = await browser.newContext();
    const buyer = await buyerContext.newPage();
    const buyerProblems = watchPage(buyer);
    // This buyer's status stream is refused: the page follows the queue by polling instead.
    const streamed: string[] = [];
    await buyer.route(/\/queue\/[^/]+\/stream$/, (route) => {
      streamed.push(route.request().url());
      return route.abort();
    });
    await buyer.goto(`${s.base}/buy?event=${eventId}`);
    await buyer.getByLabel('Your email or account id').fill('late@example.com');
    await buyer.getByRole('button', { name: 'Join the queue' }).click();
    await room(buyer).getByRole('heading', { name: 'The queue is paused' }).waitFor();
    assert.equal(await buyer.locator('#waiting-position').innerText(), '5');

    await panel.locator('#queue-waiting', { hasText: /^5$/ }).waitFor();
    assert.equal(await panel.locator('#queue-through').innerText(), '0');
    assert.equal(await panel.locator('#queue-last-eta').innerText(), '5 s', '5 places at 60 a minute');

    await panel.getByLabel('Admit per minute').fill('6000');
    await panel.getByRole('button', { name: 'Set rate' }).click();
    await panel.getByRole('status').getByText('Rate set: 6,000 buyers admitted per minute.').waitFor();
    await panel.locator('#queue-rate', { hasText: '6,000' }).waitFor();
    const event = await s.call<{ queue: unknown }>('GET', `/events/${eventId}`);
    assert.deepEqual(event.queue, { admit_per_minute: 6000, admission_ttl_seconds: 900, prequeue_opens_at: null });
    await page.screenshot({ path: screenshotPath('console-queue.png'), fullPage: true });

    await panel.getByRole('button', { name: 'Resume admission' }).click();
    await panel.getByRole('status').getByText('Admission resumed.').waitFor();
    await panel.locator('#queue-waiting', { hasText: /^0$/ }).waitFor();
    assert.equal(await panel.locator('#queue-through').innerText(), '5');
    await room(buyer).getByRole('heading', { name: "It's your turn" }).waitFor();
    assert.ok(streamed.length > 0, 'the page tried the stream first');
    await buyerContext.close();
    assert.deepEqual(buyerProblems, []);

    // Removing the queue: the panel goes.
    await form.getByLabel('Sell through a queue').uncheck();
    await form.getByRole('button', { name: 'Save sale settings' }).click();
    await form
      .getByRole('status')
      .getByText(/no queue\.$/)
      .waitFor();
    await panel.waitFor({ state: 'hidden' });
    await done();
  });
});

describe('a hold that runs out, in Chromium', { skip: chromiumMissing }, () => {
  let browser: Browser;
  let s: Served;
  before(async () => {
    browser = await launchChromium();
    // Two seconds to book, and no hold may live past a minute: the buyer's extension by a
    // minute is refused, and the buyer watches the hold expire.
    s = await serve({ HOLD_TTL_SECONDS: '2', MAX_HOLD_LIFETIME_SECONDS: '60' });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  test('the buyer sees the countdown end, the seats return, and an extension past the limit refused', async () => {
    const eventId = await createEvent(s, 'Flash sale', 10);
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(`${s.base}/buy?event=${eventId}`);
    await page.getByText('Flash sale: 10 of 10 seats available').waitFor();
    await page.getByRole('spinbutton', { name: 'Seats' }).fill('2');
    await page.getByRole('button', { name: 'Hold seats' }).click();
    await page.getByRole('heading', { name: 'Your seats are held' }).waitFor();
    assert.match(await page.getByRole('timer').innerText(), /^0:0[12]$/);

    await page.getByRole('button', { name: 'Keep them 60 s longer' }).click();
    const refusal = page.getByRole('alert');
    await refusal.getByText('Hold cannot live that long').waitFor();
    assert.match(await refusal.innerText(), /This hold cannot last past \d\d:\d\d:\d\d\. Book before then\./);

    const expired = page.locator('[data-outcome="expired"]');
    await expired.getByRole('heading', { name: 'Your hold expired' }).waitFor({ timeout: 6000 });
    assert.match(
      await expired.innerText(),
      /Your hold #\d+ ran out at \d\d:\d\d:\d\d\. Its 2 seats went back on sale\./,
    );
    await page.getByText('Flash sale: 10 of 10 seats available').waitFor();
    await page.screenshot({ path: screenshotPath('buy-expired.png') });
    assert.equal((await snapshot(s, eventId)).available, 10);
    await context.close();
    assert.deepEqual(problems, []);
  });
});

describe('signing in to the console, in Chromium', { skip: chromiumMissing }, () => {
  const token = 'console-admin-token-0123456789abcdef';
  let browser: Browser;
  let s: Served;
  before(async () => {
    browser = await launchChromium();
    s = await serve({ ADMIN_TOKEN: token });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  test('read-only without the token; signed in, the token lives in the tab and goes out as a bearer header', async () => {
    const eventId = await createEvent(s, 'Members only', 8, { authorization: `Bearer ${token}` });
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = watchPage(page);
    const sent: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/admin/session') sent.push(request.headers().authorization ?? '');
    });

    await page.goto(`${s.base}/`);
    await page.getByText(/^Read-only\. Sign in with the admin token/).waitFor();
    await page.locator(`tr[data-event-id="${eventId}"] .availability[data-available="8"]`).waitFor();
    assert.equal(await page.getByRole('region', { name: 'Create an event' }).isVisible(), false);
    assert.equal(await page.locator('summary', { hasText: 'Edit' }).isVisible(), false);

    const tokenField = page.getByLabel('Admin token');
    await tokenField.fill('not-the-admin-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('Missing or invalid admin credentials').waitFor();
    await tokenField.fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Signed in with the admin token.').waitFor();
    await page.getByRole('region', { name: 'Create an event' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('box-office.admin-token')), token);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.deepEqual(await context.cookies(), []);
    assert.ok(sent.includes(`Bearer ${token}`), 'the token goes out as a bearer header');

    // The same tab keeps it across pages; a new tab starts read-only.
    await page.goto(`${s.base}/console/events/${eventId}`);
    await page.getByRole('region', { name: 'Holds', exact: true }).waitFor();
    const other = await (await browser.newContext()).newPage();
    await other.goto(`${s.base}/console/events/${eventId}`);
    await other.getByText('Sign in with the admin token to see every hold and booking').waitFor();
    assert.equal(await other.getByRole('region', { name: 'Holds', exact: true }).isVisible(), false);
    await other.context().close();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText(/^Read-only\./).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('box-office.admin-token')), null);
    await context.close();
    assert.deepEqual(problems, []);
  });

  test("a queued event's page, read-only, shows the queue's settings but neither its staff figures nor its controls", async () => {
    const admin = { authorization: `Bearer ${token}` };
    const { event_id: eventId } = await s.call<{ event_id: number }>(
      'POST',
      '/events',
      {
        event: {
          name: 'Queued, read-only',
          total_seats: 10,
          max_seats_per_customer: 2,
          sale_opens_at: new Date(Date.now() + 3_600_000).toISOString(),
          queue: { admit_per_minute: 300, admission_ttl_seconds: 600 },
        },
      },
      admin,
    );
    await s.call('POST', `/events/${eventId}/queue`, { customer: 'early@example.com' });
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(`${s.base}/console/events/${eventId}`);
    const panel = page.locator('#queue-panel');
    await panel.locator('#queue-state[data-mode="read-only"]').waitFor();
    assert.match(
      await panel.locator('#queue-settings').innerText(),
      /^Sale opens .*; joining open now; 300 buyers admitted per minute, each with 10 min to hold seats\.$/,
    );
    await panel.getByText('Sign in with the admin token to see how many wait').waitFor();
    assert.equal(await panel.locator('#queue-waiting').innerText(), '–');
    assert.equal(await panel.getByRole('button', { name: 'Pause admission' }).isVisible(), false);
    assert.equal(await panel.getByRole('button', { name: 'Set rate' }).isVisible(), false);
    assert.equal(await page.getByText('Sale opening and queue').isVisible(), false);

    await page.getByLabel('Admin token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await panel.locator('#queue-state[data-mode="prequeue"]').waitFor();
    assert.equal(await panel.locator('#queue-prequeue').innerText(), '1');
    await panel.getByRole('button', { name: 'Pause admission' }).waitFor();
    await context.close();
    assert.deepEqual(problems, []);
  });
});

contractTest(chromiumMissing);
