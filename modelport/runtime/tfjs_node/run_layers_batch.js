#!/usr/bin/env node
/**
 * Runs TF.js layers-models with real @tensorflow/tfjs (pure-JS CPU backend), one after another
 * in one Node process, as run_graph_batch.js runs graph-models.
 *
 *   node run_layers_batch.js <jobs.json> <results.jsonl>
 *
 * jobs.json: {"jobs": [{"model": <model.json path>, "inputs": [<wire tensors, model input
 * order>]}]} (see wire.js). Each model is loaded with tf.loadLayersModel(..., {strict: true})
 * (weights matched by name) and run with predict. results.jsonl gets one line per job as soon
 * as it finishes: {"outputs": [<wire tensors named by the model's outputNames>], "ms"} or
 * {"error", "ms"}. The batch stops after the first failing job, for the reason given in
 * run_graph_batch.js; the caller runs the rest in a fresh process.
 */
'use strict';

const {tf, fromWire, toWire, handler, runJobs} = require('./wire');

async function runJob(job) {
  const model = await tf.loadLayersModel(handler(job.model), {strict: true});
  const xs = [];
  try {
    for (const t of job.inputs) xs.push(fromWire(t));
    let ys = model.predict(xs.length === 1 ? xs[0] : xs);
    if (!Array.isArray(ys)) ys = [ys];
    const outputs = [];
    for (let i = 0; i < ys.length; i++) outputs.push(await toWire(model.outputNames[i], ys[i]));
    tf.dispose(ys);
    return outputs;
  } finally {
    tf.dispose(xs);
    model.dispose();
  }
}

runJobs(runJob);
