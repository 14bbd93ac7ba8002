/**
 * What modelport's Node runners share: tfjs itself (quiet, CPU backend), tensors on the wire,
 * and loading a model the way a browser does.
 *
 * Tensors travel as base64 of their little-endian bytes ({name, dtype, shape, b64}; strings as
 * {..., data: [...]}) because JSON numbers cannot hold NaN or Inf. Models are loaded with
 * tf.io.http from a fake origin whose fetch serves files from disk, so tfjs's own manifest,
 * shard and dequantization code runs.
 */
'use strict';

const fs = require('fs');
const path = require('path');

// tfjs prints a banner about tfjs-node; results go to files, errors to stderr, so console
// output is only noise.
console.log = console.warn = console.info = () => {};
const tf = require('@tensorflow/tfjs');
// modelport's own layers (modelport/js), which a converted layers-model may use.
require('../../js/modelport_layers.js').register(tf);

const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};
const ORIGIN = 'http://modelport.invalid';

function fromWire(t) {
  if (t.dtype === 'string') return tf.tensor(t.data, t.shape, 'string');
  const bytes = Buffer.from(t.b64, 'base64');
  // A fresh buffer: Buffer.from may share a pool at an offset a typed array cannot view.
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const values = new ARRAYS[t.dtype](copy.buffer);
  return tf.tensor(t.dtype === 'bool' ? Array.from(values, v => v !== 0) : values, t.shape,
                   t.dtype);
}

async function toWire(name, y) {
  const data = await y.data();
  if (y.dtype === 'string') return {name, dtype: y.dtype, shape: y.shape, data: Array.from(data)};
  // tfjs may hand back a tensor whose data is of another array type than its dtype (a
  // graph-model's NonMaxSuppression count: dtype float32, data an Int32Array): the bytes sent
  // are those of the dtype the wire names.
  const Want = ARRAYS[y.dtype];
  const typed = y.dtype === 'bool' ? Uint8Array.from(data)
    : (Want && !(data instanceof Want) ? Want.from(data) : data);
  return {name, dtype: y.dtype, shape: y.shape,
          b64: Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString('base64')};
}

function localFetch(url) {
  const file = decodeURIComponent(new URL(url).pathname);
  if (!fs.existsSync(file)) return Promise.resolve(new Response('not found', {status: 404}));
  return Promise.resolve(new Response(fs.readFileSync(file), {status: 200}));
}

/** An IOHandler that loads ``modelJson`` (a path) through tfjs's HTTP loader. */
function handler(modelJson) {
  return tf.io.http(ORIGIN + encodeURI(path.resolve(modelJson)), {fetchFunc: localFetch});
}

function message(err) {
  return `${err && err.message ? err.message : err}`;
}

/** Runs ``main`` with the CPU backend; a failure is one line on stderr and exit code 1. */
function run(main) {
  tf.setBackend('cpu').then(main).catch(err => {
    process.stderr.write(`${message(err)}\n`);
    process.exit(1);
  });
}

/**
 * The batch runners' main: `node <runner>.js <jobs.json> <results.jsonl>`. Each job goes through
 * `runJob(job) -> [wire tensors]`; results.jsonl gets one line per job as soon as it finishes,
 * {"outputs", "ms"} or {"error", "ms"}, and the batch stops after the first failing job (see
 * run_graph_batch.js for why).
 */
function runJobs(runJob) {
  run(async () => {
    const [jobsPath, resultsPath] = process.argv.slice(2);
    const {jobs} = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
    for (const job of jobs) {
      const started = Date.now();
      try {
        const outputs = await runJob(job);
        fs.appendFileSync(resultsPath, JSON.stringify({outputs, ms: Date.now() - started}) + '\n');
      } catch (err) {
        fs.appendFileSync(resultsPath,
                          JSON.stringify({error: message(err), ms: Date.now() - started}) + '\n');
        break;
      }
    }
  });
}

module.exports = {tf, fromWire, toWire, handler, message, run, runJobs};
