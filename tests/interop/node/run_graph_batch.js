#!/usr/bin/env node
/**
 * Runs many TF.js graph-models, one after another, in one Node process with real
 * @tensorflow/tfjs (pure-JS CPU backend). Starting Node and importing tfjs costs about a second;
 * a suite of a hundred small models pays it once instead of a hundred times.
 *
 *   node run_graph_batch.js <jobs.json> <results.jsonl>
 *
 * jobs.json: [{"id", "model": <model.json path>, "inputs": [{"name": <signature tensor>,
 * "dtype", "shape", "b64" | "data"}], "outputs": [<tensor names>]}] — tensors in the wire form of
 * modelport/runtime/tfjs_node (base64 of little-endian bytes, so NaN and Inf survive).
 * results.jsonl gets one line per job as soon as it finishes: {"id", "ok": true, "outputs":
 * [...], "ms"} or {"id", "ok": false, "error", "ms"}. A job's failure (load or run) is recorded
 * and the batch goes on; the caller sees which job was running if the process itself dies
 * (out of memory, killed for time) because its line is missing.
 */
'use strict';

const fs = require('fs');
const path = require('path');

// tfjs prints a banner about tfjs-node; results go to a file, so console output is noise.
console.log = console.warn = console.info = () => {};
const tf = require('@tensorflow/tfjs');

const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};
const ORIGIN = 'http://modelport.invalid';

function fromWire(t) {
  if (t.dtype === 'string') return tf.tensor(t.data, t.shape, 'string');
  const bytes = Buffer.from(t.b64, 'base64');
  // Copy into a fresh, aligned buffer: the typed-array view needs 4-byte alignment.
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const values = new ARRAYS[t.dtype](copy.buffer);
  return tf.tensor(t.dtype === 'bool' ? Array.from(values, v => v !== 0) : values, t.shape,
                   t.dtype);
}

async function toWire(name, y) {
  const data = await y.data();
  if (y.dtype === 'string') return {name, dtype: y.dtype, shape: y.shape, data: Array.from(data)};
  const typed = y.dtype === 'bool' ? Uint8Array.from(data) : data;
  return {name, dtype: y.dtype, shape: y.shape,
          b64: Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString('base64')};
}

// The model is loaded as a browser loads it (tf.io.http), from files on disk.
function localFetch(url) {
  const file = decodeURIComponent(new URL(url).pathname);
  if (!fs.existsSync(file)) return Promise.resolve(new Response('not found', {status: 404}));
  return Promise.resolve(new Response(fs.readFileSync(file), {status: 200}));
}

async function runJob(job) {
  const url = ORIGIN + encodeURI(path.resolve(job.model));
  const model = await tf.loadGraphModel(tf.io.http(url, {fetchFunc: localFetch}));
  const feeds = {};
  try {
    for (const t of job.inputs) feeds[t.name] = fromWire(t);
    const names = job.outputs && job.outputs.length ? job.outputs : model.outputNodes;
    let ys = await model.executeAsync(feeds, names);
    if (!Array.isArray(ys)) ys = [ys];
    const outputs = [];
    for (let i = 0; i < ys.length; i++) outputs.push(await toWire(names[i], ys[i]));
    tf.dispose(ys);
    return outputs;
  } finally {
    // Free weights and inputs before the next model: a batch holds big models in sequence.
    tf.dispose(Object.values(feeds));
    model.dispose();
  }
}

async function main() {
  const [jobsPath, resultsPath] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const jobs = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
  for (const job of jobs) {
    const started = Date.now();
    let line;
    try {
      const outputs = await runJob(job);
      line = {id: job.id, ok: true, outputs, ms: Date.now() - started};
    } catch (err) {
      line = {id: job.id, ok: false, error: `${err && err.message ? err.message : err}`,
              ms: Date.now() - started};
    }
    fs.appendFileSync(resultsPath, JSON.stringify(line) + '\n');
  }
}

main().catch(err => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
