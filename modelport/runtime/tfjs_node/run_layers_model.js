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
const {tf, fromWire, toWire, handler, run} = require('./wire');

run(async () => {
  const [modelJson, inputsPath, outputsPath] = process.argv.slice(2);
  const model = await tf.loadLayersModel(handler(modelJson), {strict: true});
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
});
