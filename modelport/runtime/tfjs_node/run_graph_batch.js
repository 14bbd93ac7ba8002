#!/usr/bin/env node
/**
 * Runs TF.js graph-models with real @tensorflow/tfjs (pure-JS CPU backend), one after another
 * in one Node process: starting Node and importing tfjs costs about a second, paid once.
 *
 *   node run_graph_batch.js <jobs.json> <results.jsonl>
 *
 * jobs.json: {"jobs": [{"model": <model.json path>, "inputs": [<wire tensors by signature
 * tensor name>], "outputs": [<tensor names>]}]} (see wire.js). results.jsonl gets one line per
 * job as soon as it finishes: {"outputs": [<wire tensors>], "ms"} or {"error", "ms"}, so when
 * the process dies (out of memory, killed for time) the caller knows which job was running.
 * The batch stops after the first failing job: a failure inside tfjs can leave its engine's
 * scopes unbalanced, which changes what later models compute; the caller runs the rest in a
 * fresh process.
 */
'use strict';

const {tf, fromWire, toWire, handler, runJobs} = require('./wire');

async function runJob(job) {
  const model = await tf.loadGraphModel(handler(job.model));
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

runJobs(runJob);
