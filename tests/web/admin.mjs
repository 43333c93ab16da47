// Drives Debian's Chromium through the admin page and a person's own page, over HTTPS (the
// box's self-signed certificate), at phone and desktop size: log in as the administrator, see
// the status refresh itself, run the health checks, press the USB backup button, retry one
// queued message and delete another, add a person, reset a password, set their space; log in
// as that person, change the password, and meet 403 on the admin URLs.
// tests/web_admin.rs starts the daemon, the DNS server and the receiver, and runs this.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const base = env('BASE');          // https://127.0.0.1:PORT
const plain = env('PLAIN');        // http://127.0.0.1:PORT
const shots = env('SHOTS');
const dataDir = env('DATA_DIR');
const admin = { address: env('ADMIN'), password: env('ADMIN_PASSWORD') };
const person = { address: env('PERSON'), password: 'harbour lantern quiet 31', newer: 'pencil otter maple 77' };
const retried = env('RETRIED_ID');
const dropped = env('DROPPED_ID');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const say = (what) => console.log(`ok - ${what}`);
const phone = { viewport: { width: 360, height: 640 }, ignoreHTTPSErrors: true };
const desktop = { viewport: { width: 1280, height: 800 }, ignoreHTTPSErrors: true };

async function submit(page, selector) {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return response;
}

async function logIn(page, who, password) {
  await page.goto(`${base}/login`);
  await page.fill('#address', who);
  await page.fill('#password', password);
  return submit(page, 'form[action="/login"] button');
}

// Plain HTTP is sent to HTTPS before a password crosses it.
{
  const context = await browser.newContext(phone);
  const response = await context.request.get(`${plain}/login`, { maxRedirects: 0 });
  assert.equal(response.status(), 303);
  assert.match(response.headers()['location'], /^https:\/\/127\.0\.0\.1:\d+\/login$/);
  say('the login page over plain HTTP redirects to HTTPS');
  await context.close();
}

// The administrator, on a desktop.
const context = await browser.newContext(desktop);
const page = await context.newPage();
let response = await logIn(page, admin.address, 'not the password at all');
assert.equal(response.status(), 401);
assert.equal(await page.inputValue('#address'), admin.address, 'the address stays typed');
assert.match(await page.textContent('#login-error'), /not right/);
response = await logIn(page, admin.address, admin.password);
assert.equal(new URL(page.url()).pathname, '/admin');
const session = (await context.cookies()).find((c) => c.name === 'letterbox_session');
assert.ok(session && session.secure && session.httpOnly && session.sameSite === 'Strict', 'a safe session cookie');
assert.match(await page.textContent('[data-fact=queue]'), /2 message/);
assert.match(await page.textContent('[data-fact=spam]'), /^1 refused, 0 greylisted, 0 sent to Junk$/);
say('the administrator logs in; the status shows 2 messages waiting and 1 refused today');

// Health: "Check now" runs the box's own checks and shows each with what to do.
assert.match(await page.textContent('#health + p'), /first check is still running/);
await submit(page, 'form[action="/admin/health"] button');
assert.equal(new URL(page.url()).hash, '#health');
const checks = page.locator('ul.health li');
assert.equal(await checks.count(), 8);
assert.match(await page.textContent('#health + p'), /checked itself/);
const port25 = checks.filter({ hasText: 'Sending to other servers' });
assert.equal(await port25.getAttribute('class'), 'verdict-ok', 'the loopback receiver answered on "port 25"');
assert.match(await checks.filter({ hasText: 'Mail server record' }).textContent(), /no MX record/);
assert.ok((await page.locator('ul.health li.verdict-problem').count()) > 0, 'the test zone has problems');
say('Check now: eight checks, port 25 reached, the missing MX record said');
// The USB backup button: no drive carries the label, and the page says so.
await submit(page, 'form[action="/admin/backup/usb"] button');
assert.match(await page.textContent('#last-backup'), /No drive labelled LBX-NO-DRIVE is plugged in/);
say('Back up to the USB drive now: the page says no drive is plugged in');
await page.screenshot({ path: `${shots}/admin-status-desktop.png`, fullPage: true });

// The status refreshes itself (no reload): a fact is changed in the page, the script puts it back.
await page.evaluate(() => { document.querySelector('[data-fact=messages]').textContent = 'stale'; });
await page.waitForFunction(() => document.querySelector('[data-fact=messages]').textContent !== 'stale', null, { timeout: 15000 });
say('the status refreshes without a reload');

// A backup, downloaded as a browser does.
{
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[href="/admin/backup"]')]);
  assert.match(download.suggestedFilename(), /^letterbox-localhost-\d+\.tar$/);
  await download.saveAs(env('BACKUP'));
  say('a backup downloaded');
}

// The queue: why each message waits, in words; retry one, delete the other.
await page.goto(`${base}/admin/queue`);
const queueText = await page.textContent('main');
assert.match(queueText, /try again later/);
assert.match(queueText, /could not be reached/);
await page.screenshot({ path: `${shots}/admin-queue-desktop.png`, fullPage: true });
response = await submit(page, `#message-${dropped} form[action="/admin/queue/delete"] button`);
assert.equal(response.status(), 422, 'deleting needs the box ticked');
await page.check(`#message-${dropped} input[name=confirm]`);
await submit(page, `#message-${dropped} form[action="/admin/queue/delete"] button`);
assert.equal(await page.locator(`#message-${dropped}`).count(), 0);
await submit(page, `#message-${retried} form[action="/admin/queue/retry"] button`);
for (let i = 0; i < 60 && (await page.locator(`#message-${retried}`).count()) > 0; i++) {
  await page.waitForTimeout(500);
  await page.goto(`${base}/admin/queue`);
}
assert.equal(await page.locator(`#message-${retried}`).count(), 0, 'the retried message went out');
assert.match(await page.textContent('main'), /Nothing is waiting/);
say('a queued message retried (the receiver accepted it the second time), another deleted');

// People: add one, reset a password.
await page.goto(`${base}/admin/accounts`);
await page.fill('#name', person.address.split('@')[0]);
await page.fill('#new-password', 'password1');
await page.fill('#new-repeat', 'password1');
response = await submit(page, 'form[action="/admin/accounts/add"] button');
assert.equal(response.status(), 422, 'a weak password is refused');
assert.equal(await page.inputValue('#name'), person.address.split('@')[0], 'the name stays typed');
await page.fill('#name', person.address.split('@')[0]);
await page.fill('#new-password', person.password);
await page.fill('#new-repeat', person.password);
await submit(page, 'form[action="/admin/accounts/add"] button');
assert.match(await page.textContent('[role=status]'), new RegExp(`${person.address} can now log in`));
const card = page.locator('section.card', { hasText: person.address });
await card.locator('summary', { hasText: 'New password' }).click();
await card.locator('input[name=password]').fill(person.newer);
await card.locator('input[name=repeat]').fill(person.newer);
await Promise.all([page.waitForNavigation(), card.locator('form[action="/admin/accounts/password"] button').click()]);
assert.match(await page.textContent('[role=status]'), /has a new password/);
// How much mail the person may hold: a bare number is refused (2 what?), a size is kept and
// shown on the card, in the form it was given.
await card.locator('summary', { hasText: 'Space for mail' }).click();
await card.locator('input[name=quota]').fill('2');
response = await Promise.all([page.waitForNavigation(), card.locator('form[action="/admin/accounts/quota"] button').click()]);
assert.equal(response[0].status(), 422, 'a size without its unit is refused');
assert.match(await page.textContent('[role=alert]'), /Say the unit/);
await card.locator('summary', { hasText: 'Space for mail' }).click();
await card.locator('input[name=quota]').fill('1.5 GiB');
await Promise.all([page.waitForNavigation(), card.locator('form[action="/admin/accounts/quota"] button').click()]);
assert.match(await page.textContent('[role=status]'), /may now hold 1\.5 GiB of mail/);
assert.match(await card.textContent(), /of the 1\.5 GiB it may hold/);
assert.equal(await card.locator('input[name=quota]').inputValue(), '1.5 GiB');
await page.screenshot({ path: `${shots}/admin-people-desktop.png`, fullPage: true });
await page.goto(`${base}/admin/log`);
assert.match(await page.textContent('pre.log'), /web: account added/);
assert.doesNotMatch(await page.textContent('pre.log'), new RegExp(person.password));
say('a person added (a weak password refused first), their password reset and their space set');

// Settings: a domain still in use cannot go; another one is added.
await page.goto(`${base}/admin/settings`);
await page.fill('#domains', 'family.test');
response = await submit(page, 'form[action="/admin/settings/names"] button');
assert.equal(response.status(), 422);
assert.match(await page.textContent('[role=alert]'), /still uses its domain/);
assert.equal(await page.inputValue('#domains'), 'family.test', 'the names stay as typed');
await page.fill('#domains', 'home.test, family.test, kids.test');
await submit(page, 'form[action="/admin/settings/names"] button');
assert.match(await page.textContent('[role=status]'), /Saved/);
await page.screenshot({ path: `${shots}/admin-settings-desktop.png`, fullPage: true });
say('settings: a domain in use is kept, another added');

// "Test connection" answers with its report and the form as it was typed (but the password).
await page.check('input[name=way][value=relay]');
await page.fill('#host', 'smtp.nowhere.test');
await page.fill('#port', '2525');
await page.selectOption('#tls', 'tls');
await page.fill('#username', 'anna');
await page.fill('#relay-password', 'relay secret');
await Promise.all([page.waitForNavigation(), page.click('form[action="/admin/settings/outgoing"] button[value=test]')]);
assert.equal(await page.inputValue('#host'), 'smtp.nowhere.test');
assert.equal(await page.inputValue('#port'), '2525');
assert.equal(await page.inputValue('#tls'), 'tls');
assert.equal(await page.inputValue('#username'), 'anna');
assert.equal(await page.isChecked('input[name=way][value=relay]'), true);
assert.equal(await page.inputValue('#relay-password'), '', 'a password is never sent back');
assert.match(await page.textContent('main'), /Type the password again/);
say('settings: "Test connection" keeps what was typed');

// A settings file broken by hand (a certificate that is not there): the next change from the
// page is refused with the reason, the file is put back as it was, and the services go on.
{
  const file = `${dataDir}/settings.toml`;
  const good = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, `${good}\n[tls]\ncert = "${dataDir}/no-such-cert.pem"\nkey = "${dataDir}/no-such-key.pem"\n`);
  await page.goto(`${base}/admin/settings`);
  await page.fill('#domains', 'home.test, family.test, kids.test, more.test');
  response = await submit(page, 'form[action="/admin/settings/names"] button');
  assert.equal(response.status(), 422);
  assert.match(await page.textContent('[role=alert]'), /could not be applied/);
  const after = fs.readFileSync(file, 'utf8');
  assert.match(after, /no-such-cert/);
  assert.doesNotMatch(after, /more\.test/);
  fs.writeFileSync(file, good);
  await page.goto(`${base}/admin/settings`);
  assert.equal(await page.inputValue('#domains'), 'home.test, family.test, kids.test');
  say('a change the services cannot use is refused and the settings file put back');
}

// A form without the session's token is refused.
const forged = await context.request.post(`${base}/admin/accounts/delete`, {
  form: { address: person.address, confirm: 'yes' }, maxRedirects: 0,
});
assert.equal(forged.status(), 403);
for (const path of ['/admin/health', '/admin/backup/usb']) {
  const forgedCheck = await context.request.post(`${base}${path}`, { form: {}, maxRedirects: 0 });
  assert.equal(forgedCheck.status(), 403, path);
}
say('an admin form without its CSRF token is refused');
await context.close();

// The same pages at phone size.
{
  const small = await browser.newContext(phone);
  const p = await small.newPage();
  await logIn(p, admin.address, admin.password);
  await p.screenshot({ path: `${shots}/admin-status-phone.png`, fullPage: true });
  await p.goto(`${base}/admin/accounts`);
  await p.screenshot({ path: `${shots}/admin-people-phone.png`, fullPage: true });
  for (const path of ['/admin', '/admin/queue', '/admin/accounts', '/admin/settings', '/admin/log']) {
    await p.goto(`${base}${path}`);
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `${path} fits a 360 px phone (${width} px)`);
  }
  say('the admin pages fit a phone without sideways scrolling');
  await small.close();
}

// The person: their own page, a password change, and no admin page.
{
  const own = await browser.newContext(phone);
  const p = await own.newPage();
  await logIn(p, person.address, person.newer);
  assert.equal(new URL(p.url()).pathname, '/me');
  assert.equal(await p.locator('figure.qr svg').count(), 1, 'the profile as a QR code');
  assert.equal(await p.locator('a[href="/me/letterbox.mobileconfig"]').count(), 1);
  assert.match(await p.textContent('main'), /0 B of 1\.5 GiB allowed/, 'the space the admin set');
  await p.fill('#current', 'wrong current password');
  await p.fill('#password', 'tulip garden window 58');
  await p.fill('#repeat', 'tulip garden window 58');
  response = await submit(p, 'form[action="/me/password"] button');
  assert.equal(response.status(), 403);
  await p.fill('#current', person.newer);
  await p.fill('#password', 'tulip garden window 58');
  await p.fill('#repeat', 'tulip garden window 58');
  await submit(p, 'form[action="/me/password"] button');
  assert.match(await p.textContent('[role=status]'), /password is changed/);
  await p.screenshot({ path: `${shots}/person-phone.png`, fullPage: true });
  for (const path of ['/admin', '/admin/queue', '/admin/accounts', '/admin/status.json']) {
    const answer = await own.request.get(`${base}${path}`, { maxRedirects: 0 });
    assert.equal(answer.status(), 403, path);
  }
  const post = await own.request.post(`${base}/admin/accounts/delete`, { form: { address: admin.address }, maxRedirects: 0 });
  assert.equal(post.status(), 403);
  const check = await own.request.post(`${base}/admin/health`, { form: {}, maxRedirects: 0 });
  assert.equal(check.status(), 403);
  say('a person changes their password (the current one checked) and gets 403 on admin URLs');
  await own.close();
}

await browser.close();
