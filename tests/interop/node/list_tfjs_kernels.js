#!/usr/bin/env node
/**
 * Prints, as JSON, the kernel names each tfjs backend registers (its own kernel registry:
 * tf.getKernelsForBackend after importing the backend packages), for the table `inspect`
 * warns from (modelport/api/tfjs_kernels.json):
 *
 *   node list_tfjs_kernels.js > ../../../modelport/api/tfjs_kernels.json
 *
 * Importing @tensorflow/tfjs-backend-webgl and -wasm under Node registers their kernels even
 * though neither backend can start here (no WebGL context, no .wasm fetched): registration
 * happens at import, backend creation only when one is used.
 */
'use strict';

const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
require('@tensorflow/tfjs-backend-webgl');
require('@tensorflow/tfjs-backend-wasm');

const BACKENDS = ['cpu', 'webgl', 'wasm'];
try {  // listed where it is installed (it registers its kernels at import, as the others do)
  require('@tensorflow/tfjs-backend-webgpu');
  BACKENDS.push('webgpu');
} catch (e) { /* not installed: the table has the three others */ }
const version = (pkg) => require(path.join(pkg, 'package.json')).version;
const backends = {};
for (const b of BACKENDS) {
  backends[b] = [...new Set(tf.getKernelsForBackend(b).map((k) => k.kernelName))].sort();
}
process.stdout.write(JSON.stringify({
  made_by: 'tests/interop/node/list_tfjs_kernels.js',
  versions: {
    'tfjs-core': version('@tensorflow/tfjs-core'),
    'tfjs-backend-cpu': version('@tensorflow/tfjs-backend-cpu'),
    'tfjs-backend-webgl': version('@tensorflow/tfjs-backend-webgl'),
    'tfjs-backend-wasm': version('@tensorflow/tfjs-backend-wasm'),
    ...(BACKENDS.includes('webgpu') ?
      {'tfjs-backend-webgpu': version('@tensorflow/tfjs-backend-webgpu')} : {}),
  },
  backends,
}, null, 1) + '\n');
