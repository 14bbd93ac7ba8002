#!/usr/bin/env node
/**
 * Runs many TF.js graph-models in one Node process (tfjs loads once), for modelport's suites.
 *
 *   node run_graph_batch.js <jobs.json> <results.json>
 *
 * jobs.json: {"jobs": [{"model": <model.json path>, "inputs": [<wire tensors, as in
 * run_graph_model.js>], "outputs": [<tensor names>]}]}. results.json: {"results": [{"outputs":
 * [<wire tensors>]} or {"error": <tfjs's message>}]}, one per job in order, up to and including
 * the first job that fails (the caller runs the rest in a new process); tensors are disposed
 * after each job.
 */
'use strict';

const fs = require('fs');
const path = require('path');

console.log = console.warn = console.info = () => {};
const tf = require('@tensorflow/tfjs');

const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};
const ORIGIN = 'http://modelport.invalid';

function fromWire(t) {
  if (t.dtype === 'string') return tf.tensor(t.data, t.shape, 'string');
  const bytes = Buffer.from(t.b64, 'base64');
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

function localFetch(url) {
  const file = decodeURIComponent(new URL(url).pathname);
  if (!fs.existsSync(file)) return Promise.resolve(new Response('not found', {status: 404}));
  return Promise.resolve(new Response(fs.readFileSync(file), {status: 200}));
}

async function runJob(job) {
  const url = ORIGIN + encodeURI(path.resolve(job.model));
  const model = await tf.loadGraphModel(tf.io.http(url, {fetchFunc: localFetch}));
  const feeds = {};
  for (const t of job.inputs) feeds[t.name] = fromWire(t);
  const names = job.outputs && job.outputs.length ? job.outputs : model.outputNodes;
  try {
    let ys = await model.executeAsync(feeds, names);
    if (!Array.isArray(ys)) ys = [ys];
    const outputs = [];
    for (let i = 0; i < ys.length; i++) outputs.push(await toWire(names[i], ys[i]));
    tf.dispose(ys);
    return {outputs};
  } finally {
    tf.dispose(Object.values(feeds));
    model.dispose();
  }
}

async function main() {
  const [jobsPath, resultsPath] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const {jobs} = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
  const results = [];
  for (const job of jobs) {
    try {
      results.push(await runJob(job));
    } catch (err) {
      // A failure inside tfjs can leave its engine's scopes unbalanced, which changes what
      // later models compute: stop here; the caller runs the rest in a fresh process.
      results.push({error: `${err && err.message ? err.message : err}`});
      break;
    }
  }
  fs.writeFileSync(resultsPath, JSON.stringify({results}));
}

main().catch(err => {
  process.stderr.write(`${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
