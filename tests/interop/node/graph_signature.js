#!/usr/bin/env node
/**
 * Prints, as JSON lines, what web code sees of TF.js graph-models once loaded with real
 * @tensorflow/tfjs: `model.inputs` and `model.outputs` ({name, shape, dtype}) and the
 * signature (`model.modelSignature`) and userDefinedMetadata (`model.metadata`), one line per
 * model.json given; and `warmup`: the output shapes of one run on zeros sized the way web code
 * sizes them, from `model.inputs[i].shape` (free dims as 1), or the error it met.
 *
 *   node graph_signature.js <model.json> [...]
 */
'use strict';

const {tf, handler} = require('../../../modelport/runtime/tfjs_node/wire');

async function main() {
  for (const file of process.argv.slice(2)) {
    const model = await tf.loadGraphModel(handler(file));
    const info = (ts) => ts.map((t) => ({name: t.name, shape: t.shape === undefined ? null : t.shape,
                                        dtype: t.dtype === undefined ? null : t.dtype}));
    let warmup;
    try {
      const feeds = {};
      for (const t of model.inputs) {
        feeds[t.name] = tf.zeros(t.shape.map((d) => (d < 0 ? 1 : d)), t.dtype);
      }
      let ys = await model.executeAsync(feeds);
      ys = Array.isArray(ys) ? ys : [ys];
      warmup = ys.map((y) => y.shape);
      tf.dispose([...ys, ...Object.values(feeds)]);
    } catch (e) {
      warmup = {error: String(e && e.message || e)};
    }
    process.stdout.write(JSON.stringify({model: file, inputs: info(model.inputs), warmup,
                                         outputs: info(model.outputs),
                                         signature: model.modelSignature === undefined ? null : model.modelSignature,
                                         metadata: model.metadata === undefined ? null : model.metadata}) + '\n');
    model.dispose();
  }
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
