// Drives Debian's Chromium (through playwright-core) through the setup wizard on a 360×640
// phone screen, as a parent would: the one-time code, the names, two people, a smarthost
// (tested for real), the Wi-Fi network, the certificate kept, the summary, finish. Checks the
// refusals on the way (a wrong code and its throttle, a weak password, a form without its CSRF
// token, a Finish the services cannot use) and saves a screenshot of every step under $SHOTS. tests/web_setup.rs starts the
// daemon and the relay and runs this; it exits non-zero at the first failed check.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const base = env('BASE');
const code = env('CODE');
const shots = env('SHOTS');
const dkimKey = env('DKIM_KEY');   // the box's DKIM key, which every settings change loads again
const relay = { host: env('RELAY_HOST'), port: env('RELAY_PORT'), user: env('RELAY_USER'), password: env('RELAY_PASSWORD') };
const people = [
  { name: 'anna', password: 'otter maple lantern 42' },
  { name: 'ben', password: 'quiet harbour pencil 7' },
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 360, height: 640 }, deviceScaleFactor: 1 });
const page = await context.newPage();
const shot = (name) => page.screenshot({ path: `${shots}/setup-${name}.png`, fullPage: true });
const say = (what) => console.log(`ok - ${what}`);

async function submit(button = 'button[type=submit]') {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(button)]);
  return response;
}

// The wizard starts at the code page: this test talks to the box over the (wired) LAN.
let response = await page.goto(`${base}/setup`);
assert.equal(new URL(page.url()).pathname, '/setup/code');
assert.equal(response.status(), 200);
const cookie = (await context.cookies()).find((c) => c.name === 'letterbox_setup');
assert.ok(cookie, 'a session cookie');
assert.equal(cookie.httpOnly, true);
assert.equal(cookie.sameSite, 'Strict');
const headers = response.headers();
assert.match(headers['content-security-policy'], /default-src 'none'/);
assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
assert.equal(headers['referrer-policy'], 'no-referrer');
say('the code page, a strict HttpOnly cookie and the security headers');
await shot('1-code');

// Wrong codes are refused; after the free guesses even the right code waits.
for (let i = 0; i < 3; i++) {
  await page.fill('#code', 'WRONG' + i);
  response = await submit();
  assert.equal(response.status(), 403);
  assert.match(await page.textContent('#code-error'), /not the code/);
}
await shot('1-code-wrong');
await page.fill('#code', code);
response = await submit();
assert.equal(response.status(), 429, 'the right code is not even checked while the wait lasts');
assert.match(await page.textContent('#code-error'), /Too many wrong codes\. Wait \d+ seconds/);
say('wrong codes refused, then throttled');
const wait = Number((await page.textContent('#code-error')).match(/Wait (\d+) seconds/)[1]);
await page.waitForTimeout((wait + 1) * 1000);
await page.fill('#code', code.slice(0, 4).toLowerCase() + '-' + code.slice(4));
response = await submit();
assert.equal(new URL(page.url()).pathname, '/setup/names');
say('the code (typed in lower case with a dash) admits the browser');

// A form without its CSRF token is refused, and changes nothing.
const forged = await context.request.post(`${base}/setup/names`, {
  form: { domain: 'evil.example', hostname: '' }, maxRedirects: 0,
});
assert.equal(forged.status(), 403);
const forgedWrong = await context.request.post(`${base}/setup/names`, {
  form: { csrf: 'not-the-token', domain: 'evil.example', hostname: '' }, maxRedirects: 0,
});
assert.equal(forgedWrong.status(), 403);
say('forms without their CSRF token are refused');

// Names: a bad domain first.
await page.fill('#domain', 'smith');
response = await submit();
assert.equal(response.status(), 422);
assert.match(await page.textContent('#domain-error'), /not a domain name/);
await page.fill('#domain', 'smith.test');
await page.fill('#hostname', '');
await shot('2-names');
await submit();
assert.equal(new URL(page.url()).pathname, '/setup/accounts');
say('names validated on the server');

// People: a weak password is refused with the reason.
await page.fill('#name', 'anna');
await page.fill('#password', 'password123');
await page.fill('#repeat', 'password123');
response = await submit('button[value=add]');
assert.equal(response.status(), 422);
const weakness = await page.textContent('#password-error');
assert.ok(weakness.length > 10, `a reason: ${weakness}`);
await shot('3-people-weak-password');
say(`a weak password refused: "${weakness.trim()}"`);
for (const person of people) {
  await page.fill('#name', person.name);
  await page.fill('#password', person.password);
  await page.fill('#repeat', person.password);
  await submit('button[value=add]');
  assert.match(await page.textContent('.list'), new RegExp(`${person.name}@smith\\.test`));
}
await shot('3-people');
await submit('form[action="/setup/accounts/done"] button');
assert.equal(new URL(page.url()).pathname, '/setup/outgoing');
say('two people added');

// Outgoing: the smarthost, tested for real (STARTTLS, AUTH), first with a wrong password.
await page.check('input[name=way][value=relay]');
await page.selectOption('#provider', '');
await page.fill('#host', relay.host);
await page.fill('#port', relay.port);
await page.selectOption('#tls', 'starttls');
await page.fill('#username', relay.user);
await page.fill('#relay-password', 'not the password');
await submit('button[value=test]');
assert.match(await page.textContent('.report h2'), /failed/);
assert.match(await page.textContent('.report'), /535/);
say('the smarthost test reports the refused password with the server\'s answer');
await page.fill('#relay-password', relay.password);
await submit('button[value=test]');
assert.match(await page.textContent('.report h2'), /works/, await page.textContent('.report'));
assert.doesNotMatch(await page.content(), new RegExp(relay.password), 'the password is never shown back');
await shot('4-outgoing-tested');
say('the smarthost test connects, STARTTLS, AUTH');
await submit('button[value=next]');

// Wi-Fi (the simulated radio lists networks).
assert.equal(new URL(page.url()).pathname, '/setup/wifi');
assert.equal(await page.inputValue('#country'), 'US', 'the country defaults from the browser language (en-US)');
await page.fill('#passphrase', 'short');
await page.check('input[name=ssid] >> nth=0');
response = await submit();
assert.equal(response.status(), 422);
const ssid = await page.getAttribute('input[name=ssid] >> nth=0', 'value');
await page.check('input[name=ssid] >> nth=0');
await page.fill('#passphrase', 'a long wifi passphrase');
await shot('5-wifi');
await submit();
say(`Wi-Fi: a short passphrase refused, "${ssid}" chosen`);

// Certificate: keep the box's own.
assert.equal(new URL(page.url()).pathname, '/setup/tls');
await page.check('input[name=choice][value=keep]');
await shot('6-certificate');
await submit();

// Summary: DNS records and client settings; then finish.
assert.equal(new URL(page.url()).pathname, '/setup/summary');
const summary = await page.textContent('main');
assert.match(summary, /smith\.test\.\s+MX\s+10 mail\.smith\.test\./);
assert.match(summary, /anna@smith\.test/);
assert.match(summary, /mail\.smith\.test, port \d+, SSL\/TLS/);
await shot('7-summary');
say('the summary shows the DNS records and the client settings');

// The services cannot use the new settings (the DKIM key was damaged meanwhile): Finish says
// so, nothing has changed (no settings file, no account), and it can be sent again.
// (The second Finish would say "exists already" had the first made the accounts.)
const settingsFile = path.join(path.dirname(path.dirname(dkimKey)), 'settings.toml');
const settingsNow = () => (fs.existsSync(settingsFile) ? fs.readFileSync(settingsFile, 'utf8') : null);
const settingsBefore = settingsNow();
const goodKey = fs.readFileSync(dkimKey);
fs.writeFileSync(dkimKey, 'not a key');
response = await submit();
assert.equal(response.status(), 409);
assert.match(await page.textContent('[role=alert]'), /could not be applied/);
assert.equal(settingsNow(), settingsBefore, 'the settings file is as it was');
fs.writeFileSync(dkimKey, goodKey);
say('a Finish the services cannot use says why and changes nothing');
response = await submit();
assert.equal(response.status(), 200);
assert.match(await page.textContent('h1'), /All set/);
await shot('8-done');
say('finished');

// Setup mode has ended: every setup URL is gone.
for (const path of ['/setup', '/setup/code', '/setup/names', '/setup/summary']) {
  const after = await context.request.get(`${base}${path}`, { maxRedirects: 0 });
  assert.equal(after.status(), 404, path);
}
const finishAgain = await context.request.post(`${base}/setup/finish`, { form: {}, maxRedirects: 0 });
assert.equal(finishAgain.status(), 404);
say('setup URLs answer 404 after the wizard');

await browser.close();
console.log(JSON.stringify({ ssid }));
