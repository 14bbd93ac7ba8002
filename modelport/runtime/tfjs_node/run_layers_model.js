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
  const xs = spec.inputs.map(t => tf.tensor(t.data, t.shape, t.dtype));
  let ys = model.predict(xs.length === 1 ? xs[0] : xs);
  if (!Array.isArray(ys)) ys = [ys];
  const outputs = ys.map((y, i) => ({
    name: model.outputNames[i],
    dtype: y.dtype,
    shape: y.shape,
    data: Array.from(y.dataSync()),
  }));
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
