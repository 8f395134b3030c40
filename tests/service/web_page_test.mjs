// End-to-end test of the clinician's web page in headless Chromium (Debian's chromium, driven by
// playwright-core): choose a photo, drop a photo, pick another model, see an error; and a
// screenshot check that the bar chart really renders each class's probability.
//
// Expected values come from the numpy + Pillow reference (make_service_repository.py), not from
// the server, so a wrong number on the page cannot agree with itself.
//
// usage: node web_page_test.mjs PMS_DERM_CDS FIXTURE_DIR WORK_DIR PLAYWRIGHT_CORE_DIR
import {spawn} from 'node:child_process';
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';

const [binary, fixtureDir, workDir, playwrightDir] = process.argv.slice(2);
if (!playwrightDir) {
  console.error('usage: node web_page_test.mjs PMS_DERM_CDS FIXTURE_DIR WORK_DIR PLAYWRIGHT_CORE_DIR');
  process.exit(2);
}
const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 20) {
  console.error(`web_page_test: playwright-core 1.65 needs Node.js 20 or newer; this is ${process.version}`);
  process.exit(1);
}
if (!existsSync(path.join(playwrightDir, 'package.json'))) {
  console.error(`web_page_test: playwright-core is not at ${playwrightDir}; run scripts/provision.sh`);
  process.exit(1);
}
const {chromium} = createRequire(import.meta.url)(path.resolve(playwrightDir));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BAR_RGB = [0x24, 0x56, 0xa6];    // --bar in style.css
const TRACK_RGB = [0xe6, 0xeb, 0xf3];  // --track

let failures = 0;
function check(description, condition, detail = '') {
  if (condition) console.log(`web_page_test: ok: ${description}`);
  else {
    failures++;
    console.error(`web_page_test: FAILED: ${description} ${detail}`);
  }
}

// The tier the fixture manifest's rules give (labels MEL NV BCC AK BKL DF VASC SCC).
function expectedTier(p) {
  if (p[0] + p[2] + p[7] >= 0.30) return 'urgent_referral';
  if (p[0] + p[2] + p[7] + p[3] >= 0.15) return 'dermatology_review';
  return 'routine';
}

async function startServer() {
  rmSync(workDir, {recursive: true, force: true});
  mkdirSync(workDir, {recursive: true});
  const portFile = path.join(workDir, 'port');
  const log = [];
  const server = spawn(binary, ['--repository', path.join(fixtureDir, 'repository'), '--model', 'tiny,tiny-conv',
                                '--default-model', 'tiny', '--host', '127.0.0.1', '--port', '0', '--port-file', portFile,
                                '--no-banner'], {stdio: ['ignore', 'ignore', 'pipe']});
  server.stderr.on('data', (chunk) => log.push(chunk));
  server.on('exit', () => writeFileSync(path.join(workDir, 'server.log'), Buffer.concat(log)));
  while (!existsSync(portFile) || readFileSync(portFile, 'utf8').trim() === '') {
    if (server.exitCode !== null) throw new Error('the server exited during start-up');
    await sleep(20);
  }
  const url = `http://127.0.0.1:${readFileSync(portFile, 'utf8').trim()}`;
  for (;;) {
    const ready = await fetch(`${url}/v2/health/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    await sleep(20);
  }
  return {server, url};
}

async function stopServer(server) {
  const exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
  server.kill('SIGTERM');
  return exited;
}

// Per bar, the share of its track that the screenshot shows in the bar's colour, measured along
// the bar's middle row of pixels, decoded in the page itself from the PNG Playwright took. The
// track is the longest run of pixels on the line between the bar and track colours (an
// anti-aliased bar end blends the two); a pixel counts as bar when it is nearer the bar colour.
async function measureBars(page, png) {
  return page.evaluate(async ({base64, bar, track}) => {
    const image = new Image();
    image.src = 'data:image/png;base64,' + base64;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const chart = document.getElementById('chart').getBoundingClientRect();
    const scale = image.width / chart.width;  // device pixels per CSS pixel
    const span = [0, 1, 2].map((c) => track[c] - bar[c]);
    const spanSquared = span.reduce((sum, d) => sum + d * d, 0);
    // Position along bar -> track (0..1) of a pixel on that line, or null for any other colour.
    const along = (data, i) => {
      const offset = [0, 1, 2].map((c) => data[i + c] - bar[c]);
      const t = Math.min(1, Math.max(0, offset.reduce((sum, d, c) => sum + d * span[c], 0) / spanSquared));
      const distance = [0, 1, 2].reduce((sum, c) => sum + Math.abs(data[i + c] - (bar[c] + t * span[c])), 0);
      return distance < 24 ? t : null;
    };
    return [...document.querySelectorAll('#chart .bar')].map((rect) => {
      const box = rect.getBoundingClientRect();
      const y = Math.round((box.top + box.height / 2 - chart.top) * scale);
      const row = context.getImageData(0, y, image.width, 1).data;
      let best = {length: 0, barPixels: 0}, run = {length: 0, barPixels: 0};
      for (let x = 0; x < image.width; x++) {
        const t = along(row, 4 * x);
        if (t === null) {
          run = {length: 0, barPixels: 0};
          continue;
        }
        run.length++;
        if (t < 0.5) run.barPixels++;
        if (run.length > best.length) best = {...run};
      }
      return {code: rect.parentNode.dataset.code, probability: Number(rect.dataset.probability),
              barPixels: best.barPixels, trackLength: best.length};
    });
  }, {base64: png.toString('base64'), bar: BAR_RGB, track: TRACK_RGB});
}

async function waitForOutcome(page) {
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'Classifying…' &&
                                   (!document.getElementById('result').hidden || !document.getElementById('error').hidden));
}

async function main() {
  const references = JSON.parse(readFileSync(path.join(fixtureDir, 'service_reference.json'), 'utf8'));
  const {server, url} = await startServer();
  const browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args: ['--no-sandbox']});
  try {
    const page = await browser.newPage({viewport: {width: 900, height: 1000}});
    const consoleErrors = [];
    page.on('console', (message) => {
      // A failed fetch is logged by the browser itself; the page shows it (checked below).
      if (message.type() === 'error' && !message.text().includes('the server responded with a status of')) consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));

    await page.goto(url + '/');
    await page.waitForFunction(() => document.querySelectorAll('#model option').length >= 2);
    const options = await page.$$eval('#model option', (os) => os.map((o) => ({value: o.value, selected: o.selected})));
    check('the model list offers the loaded models, default selected',
          options.some((o) => o.value === 'tiny' && o.selected) && options.some((o) => o.value === 'tiny-conv'),
          JSON.stringify(options));

    // 1. Choose a file.
    const photo = references[0];
    await page.setInputFiles('#file', photo.image);
    await waitForOutcome(page);
    check('choosing a photo shows a result', await page.isVisible('#result'));
    const field = (name) => page.textContent(`#provenance dd[data-field="${name}"]`);
    check('the page names the model', (await field('model')) === 'tiny');
    check('the page names the version', (await field('version')) === '1');
    check('the page names the runtime', (await field('runtime')).startsWith('onnxruntime '), await field('runtime'));
    check('the page names the execution provider', (await field('execution_provider')) === 'cpu');
    check('the page names the precision', (await field('precision')) === 'fp32');
    const expected = photo.probabilities['1'];
    const tier = await page.getAttribute('#triage', 'data-tier');
    check('the triage tier is the reference tier', tier === expectedTier(expected), `${tier} vs ${expectedTier(expected)}`);
    check('the triage tier is shown in words', (await page.textContent('#triage')).length > 0);

    // The screenshot shows each bar at its probability's share of the track.
    const png = await page.locator('#chart').screenshot();
    writeFileSync(path.join(workDir, 'chart.png'), png);
    await page.screenshot({path: path.join(workDir, 'page.png'), fullPage: true});
    const bars = await measureBars(page, png);
    check('the chart has one bar per class', bars.length === 8, String(bars.length));
    const trackLength = Math.max(...bars.map((b) => b.trackLength));
    check('the chart rendered its tracks', trackLength > 100 && bars.every((b) => Math.abs(b.trackLength - trackLength) <= 1),
          JSON.stringify(bars.map((b) => b.trackLength)));
    for (let i = 0; i < bars.length; i++) {
      const b = bars[i];
      check(`bar ${b.code} carries the reference probability`, Math.abs(b.probability - expected[i]) < 1e-4,
            `${b.probability} vs ${expected[i]}`);
      const drawn = b.barPixels / trackLength;
      check(`bar ${b.code} is drawn at its probability (${(100 * expected[i]).toFixed(1)}%)`,
            Math.abs(drawn - expected[i]) <= 1.5 / trackLength, `drawn ${(100 * drawn).toFixed(2)}%`);
    }
    const top = expected.indexOf(Math.max(...expected));
    check('the most probable class has the longest bar',
          bars[top].barPixels === Math.max(...bars.map((b) => b.barPixels)) && bars[top].barPixels > 0);

    // 2. Drop a PNG on the drop zone, with another model chosen.
    await page.selectOption('#model', 'tiny-conv');
    const dropped = references[1];
    await page.evaluate(async ({base64}) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }, {base64: readFileSync(dropped.image).toString('base64')});
    await page.waitForFunction(() => document.querySelector('#provenance dd[data-field="model"]').textContent === 'tiny-conv');
    check('a dropped photo is classified by the chosen model', (await field('model')) === 'tiny-conv');

    // 3. Back to tiny: a dropped PNG gives the reference answer for that photograph.
    await page.selectOption('#model', 'tiny');
    await page.setInputFiles('#file', dropped.image);
    await page.waitForFunction(() => document.querySelector('#provenance dd[data-field="model"]').textContent === 'tiny');
    const shown = await page.$$eval('#chart .bar', (rects) => rects.map((r) => Number(r.dataset.probability)));
    check('the second photograph shows its own reference probabilities',
          shown.every((p, i) => Math.abs(p - dropped.probabilities['1'][i]) < 1e-4), JSON.stringify(shown));

    // 4. An undecodable file: the service's reason is shown plainly, the old result is hidden.
    await page.setInputFiles('#file', {name: 'notes.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('this is not a photograph')});
    await page.waitForSelector('#error:not([hidden])');
    const error = await page.textContent('#error');
    check('an undecodable file shows the error', error.includes('(400)') && error.length > 40, error);
    check('the earlier result is hidden on error', !(await page.isVisible('#result')));
    await page.screenshot({path: path.join(workDir, 'error.png'), fullPage: true});

    check('no script errors or policy violations in the console', consoleErrors.length === 0, consoleErrors.join(' | '));
  } finally {
    await browser.close();
    const status = await stopServer(server);
    check('the server stopped cleanly on SIGTERM', status === 0, `exit status ${status}`);
  }
  if (failures > 0) {
    console.error(`web_page_test: ${failures} check(s) failed; screenshots in ${workDir}`);
    process.exit(1);
  }
  console.log(`web_page_test: all checks passed; screenshots in ${workDir}`);
}

main().catch((error) => {
  console.error('web_page_test:', error);
  process.exit(1);
});
