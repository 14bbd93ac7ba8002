#!/usr/bin/env node
/**
 * Runs a TF.js graph-model with real @tensorflow/tfjs (pure-JS CPU backend), for modelport.
 *
 *   node run_graph_model.js <model.json> <inputs.json> <outputs.json>
 *
 * The model is loaded as a browser loads it: tf.loadGraphModel(tf.io.http(url)) with a fetch
 * that serves files from disk. inputs.json: {"inputs": [{"name": <signature tensor, e.g.
 * "x:0">, "dtype", "shape", "data": [...]}], "outputs": [<tensor names>]}. The result file holds
 * {"outputs": [{"name", "dtype", "shape", "data"}]}. Errors go to stderr, exit code 1.
 */
'use strict';

const fs = require('fs');
const path = require('path');

// tfjs prints a banner about tfjs-node; results go to a file, so console output is noise.
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
  const model = await tf.loadGraphModel(tf.io.http(url, {fetchFunc: localFetch}));
  const spec = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const feeds = {};
  for (const t of spec.inputs) feeds[t.name] = fromWire(t);
  const names = spec.outputs && spec.outputs.length ? spec.outputs : model.outputNodes;
  let ys = await model.executeAsync(feeds, names);
  if (!Array.isArray(ys)) ys = [ys];
  const outputs = [];
  for (let i = 0; i < ys.length; i++) outputs.push(await toWire(names[i], ys[i]));
  fs.writeFileSync(outputsPath, JSON.stringify({outputs}));
}

main().catch(err => {
  process.stderr.write(`${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
