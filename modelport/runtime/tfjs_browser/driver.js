#!/usr/bin/env node
/**
 * Runs TF.js models with real @tensorflow/tfjs inside headless Chromium, on each backend asked
 * for, through puppeteer-core (which downloads nothing: it drives the Chromium named in the jobs
 * file). The page and the models are served by a local HTTP server on 127.0.0.1; nothing is
 * fetched from the network.
 *
 *   node driver.js <jobs.json> <results.jsonl>
 *
 * jobs.json: {"chromium": <executable>, "modules": <node_modules holding @tensorflow/tfjs and
 * @tensorflow/tfjs-backend-wasm>, "backends": ["cpu", "wasm", "webgl", "mobile", "webgpu"],
 * "jobs": [{"model": <model.json path>, "kind": "graph" | "layers", "inputs": [<wire
 * tensors>], "outputs": [<tensor names>]}]}. results.jsonl gets one line per job and backend as
 * soon as it finishes: {"job", "backend", "outputs", "ms"} or {"job", "backend", "error", "ms"}.
 *
 * A job may take spec.job_seconds (default 120 s); past that it is charged with the overrun and
 * the browser is started afresh for the next one.
 *
 * The plain backends share one page load (tf.setBackend switches between them); "mobile" is
 * WebGL with float32 render targets off, which must be set before the WebGL backend starts, so
 * it gets a page load of its own. After a failing job the page is loaded afresh: a failure
 * inside tfjs can leave its engine's scopes unbalanced (see tfjs_node/run_graph_batch.js).
 */
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const HERE = __dirname;
const [jobsPath, resultsPath] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
const puppeteer = require(path.join(spec.modules, 'puppeteer-core'));

const TYPES = {'.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json',
               '.wasm': 'application/wasm'};

/** Files the page may load: its own, the npm packages, modelport's layers, the models' folders. */
function resolve(urlPath) {
  const p = decodeURIComponent(urlPath.split('?')[0]);
  if (p === '/page.html' || p === '/page.js') return path.join(HERE, p.slice(1));
  if (p === '/modelport_layers.js') return path.join(HERE, '..', '..', 'js', 'modelport_layers.js');
  if (p.startsWith('/npm/')) {
    const file = path.resolve(spec.modules, p.slice(5));
    return file.startsWith(path.resolve(spec.modules) + path.sep) ? file : null;
  }
  if (p.startsWith('/model/')) {
    const file = path.resolve(p.slice(6));
    const allowed = spec.jobs.some(j => path.dirname(path.resolve(j.model)) === path.dirname(file));
    return allowed ? file : null;
  }
  return null;
}

function serve() {
  const server = http.createServer((req, res) => {
    const file = resolve(req.url);
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end('not found');
      return;
    }
    res.writeHead(200, {'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream'});
    fs.createReadStream(file).pipe(res);
  });
  return new Promise(ok => server.listen(0, '127.0.0.1', () => ok(server)));
}

function message(err) {
  return `${err && err.message ? err.message : err}`.split('\n')[0];
}

/**
 * Kill a browser and everything it started: puppeteer starts it as the leader of its own
 * process group, and a distribution's launcher script (Debian's /usr/bin/chromium-headless-shell)
 * runs the real binary as a child that killing the script alone would leave behind.
 */
function kill(proc) {
  if (!proc || proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch (err) {
    try { proc.kill('SIGKILL'); } catch (ignored) { /* already gone */ }
  }
}

function withLimit(promise, seconds, what) {
  let timer;
  const limit = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} ran over its ${seconds} s limit`)),
                       seconds * 1000);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function main() {
  const server = await serve();
  const origin = `http://127.0.0.1:${server.address().port}`;
  const jobSeconds = spec.job_seconds || 120;
  let browser = null;
  let page = null;
  let loaded = null;
  const errors = [];
  const launched = [];  // every browser process started, killed at the end whatever happens
  let generation = 0;  // a job cut off by its limit goes on running: it must not touch state
  const launch = async () => {
    browser = await puppeteer.launch({
      executablePath: spec.chromium, headless: 'shell', protocolTimeout: 0,
      // WebGL on the CPU (SwiftShader) where the machine has no GPU; root needs --no-sandbox.
      args: ['--no-sandbox', '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
             '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--no-first-run',
             '--disable-background-networking', '--disable-component-update'],
    });
    launched.push(browser.process());
    page = await browser.newPage();
    page.on('pageerror', err => errors.push(message(err)));
    loaded = null;
  };
  // A job over its time (a kernel that never finishes, a hung GPU process): the browser is
  // killed and started afresh for the next job, which no other cleanup can guarantee.
  const relaunch = async () => {
    kill(browser && browser.process());
    await launch();
  };
  const load = async mobile => {
    await page.goto(`${origin}/page.html${mobile ? '?mobile=1' : ''}`, {waitUntil: 'load'});
    const ready = await page.evaluate(() => !!(window.modelport && window.tf));
    if (!ready) throw new Error(`the page did not start: ${errors.join('; ') || 'tfjs missing'}`);
    loaded = mobile;
  };
  await launch();
  try {
    for (const backend of spec.backends) {
      const mobile = backend === 'mobile';
      const tfBackend = mobile ? 'webgl' : backend;
      let broken = null;  // the backend itself did not start: every job gets why
      for (let i = 0; i < spec.jobs.length; i++) {
        const job = spec.jobs[i];
        const started = Date.now();
        let line;
        try {
          if (broken) throw new Error(broken);
          const mine = ++generation;
          const run = async () => {
            if (loaded !== mobile) await load(mobile);
            try {
              await page.evaluate(b => window.modelport.useBackend(b), tfBackend);
            } catch (err) {
              if (mine === generation) broken = message(err);
              throw err;
            }
            const request = Object.assign({}, job, {model: '/model' + path.resolve(job.model)});
            return page.evaluate(j => window.modelport.runJob(j), request);
          };
          const outputs = await withLimit(run(), jobSeconds, `the job on ${backend}`);
          line = {job: i, backend, outputs, ms: Date.now() - started};
        } catch (err) {
          line = {job: i, backend, error: message(err), ms: Date.now() - started};
          if (/over its .* limit/.test(line.error)) await relaunch();
          loaded = null;  // start the next job on a fresh page
        }
        fs.appendFileSync(resultsPath, JSON.stringify(line) + '\n');
      }
    }
  } finally {
    await withLimit(browser.close(), 10, 'closing the browser').catch(() => {});
    launched.forEach(kill);
    server.close();
  }
}

main().catch(err => {
  process.stderr.write(`${message(err)}\n`);
  process.exit(1);
});
