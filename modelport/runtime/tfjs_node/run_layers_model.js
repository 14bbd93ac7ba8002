#!/usr/bin/env node
/**
 * Loads a TF.js layers-model with real @tensorflow/tfjs and runs it, for modelport's tests.
 *
 *   node run_layers_model.js <model.json> <inputs.json> <outputs.json>
 *
 * The model is loaded the way a browser loads it: tf.loadLayersModel(tf.io.http(url)) with a
 * fetch that serves files from disk, so tfjs's own manifest, shard and dequantization code runs
 * and weights are matched by name in strict mode.
 *
 * inputs.json:  {"inputs": [{"name", "dtype", "shape", "data": [...]}]}  (model input order)
 * outputs.json: {"outputs": [{"name", "dtype", "shape", "data": [...]}], "weights": [names]}
 * Exit 0 on success; on failure the error message goes to stderr and the exit code is 1.
 */
'use strict';

const fs = require('fs');
const path = require('path');

// tfjs prints a banner about tfjs-node when its backend starts; results go to a file, errors
// to stderr below, so console output is only noise here.
console.log = console.warn = console.info = () => {};
const tf = require('@tensorflow/tfjs');

// Tensors travel as base64 of their little-endian bytes: JSON numbers cannot hold NaN or Inf.
const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};

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
const ORIGIN = 'http://modelport.invalid';

function localFetch(url) {
  const file = decodeURIComponent(new URL(url).pathname);
  if (!fs.existsSync(file)) {
    return Promise.resolve(new Response('not found', {status: 404}));
  }
  return Promise.resolve(new Response(fs.readFileSync(file), {status: 200}));
}

async function main() {
  const [modelJson, inputsPath, outputsPath] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const url = ORIGIN + encodeURI(path.resolve(modelJson));
  const model = await tf.loadLayersModel(tf.io.http(url, {fetchFunc: localFetch}),
                                         {strict: true});
  const spec = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const xs = spec.inputs.map(fromWire);
  let ys = model.predict(xs.length === 1 ? xs[0] : xs);
  if (!Array.isArray(ys)) ys = [ys];
  const outputs = [];
  for (let i = 0; i < ys.length; i++) outputs.push(await toWire(model.outputNames[i], ys[i]));
  fs.writeFileSync(outputsPath, JSON.stringify({
    outputs,
    inputNames: model.inputNames,
    weights: model.weights.map(w => w.originalName),
    // The values tfjs decoded (dequantized) for each variable, to compare with modelport's.
    weightValues: Object.fromEntries(model.weights.map(
        w => [w.originalName, Array.from(w.read().dataSync())])),
  }));
}

main().catch(err => {
  process.stderr.write(`${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
