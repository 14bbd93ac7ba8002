#!/usr/bin/env node
/**
 * Prints, as JSON lines, what web code sees of TF.js graph-models once loaded with real
 * @tensorflow/tfjs: `model.inputs` and `model.outputs` ({name, shape, dtype}) and the
 * signature (`model.modelSignature`) and userDefinedMetadata (`model.metadata`), one line per
 * model.json given.
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
    process.stdout.write(JSON.stringify({model: file, inputs: info(model.inputs),
                                         outputs: info(model.outputs),
                                         signature: model.modelSignature === undefined ? null : model.modelSignature,
                                         metadata: model.metadata === undefined ? null : model.metadata}) + '\n');
    model.dispose();
  }
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
