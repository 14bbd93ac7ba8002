/**
 * What runs inside the page (see page.html): switching backends and running one job.
 *
 * Tensors travel as base64 of their little-endian bytes, as in tfjs_node/wire.js, because JSON
 * numbers cannot hold NaN or Inf.
 */
'use strict';

const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};

if (new URLSearchParams(location.search).get('mobile') === '1') {
  // Phones without float32 render targets: tfjs then keeps every texture in float16.
  tf.env().set('WEBGL_FORCE_F16_TEXTURES', true);
  tf.env().set('WEBGL_RENDER_FLOAT32_ENABLED', false);
}
if (window.modelportLayers) window.modelportLayers.register(tf);
tf.wasm.setWasmPaths('/npm/@tensorflow/tfjs-backend-wasm/dist/');

function fromBase64(b64) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function toBase64(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let raw = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(raw);
}

function fromWire(t) {
  if (t.dtype === 'string') return tf.tensor(t.data, t.shape, 'string');
  const values = new ARRAYS[t.dtype](fromBase64(t.b64).buffer);
  return tf.tensor(t.dtype === 'bool' ? Array.from(values, v => v !== 0) : values, t.shape,
                   t.dtype);
}

async function toWire(name, y) {
  const data = await y.data();
  if (y.dtype === 'string') return {name, dtype: y.dtype, shape: y.shape, data: Array.from(data)};
  const typed = y.dtype === 'bool' ? Uint8Array.from(data) : data;
  return {name, dtype: y.dtype, shape: y.shape, b64: toBase64(typed)};
}

/** Make ``backend`` (cpu, wasm, webgl, webgpu) current; an error says why it cannot start. */
async function useBackend(backend) {
  if (backend === 'webgpu' && !tf.findBackendFactory('webgpu')) {
    throw new Error('the webgpu backend is not installed (npm @tensorflow/tfjs-backend-webgpu)');
  }
  if (backend === 'webgpu' && !(navigator.gpu && await navigator.gpu.requestAdapter())) {
    throw new Error('this browser gives no WebGPU adapter');
  }
  const ok = await tf.setBackend(backend);
  if (!ok || tf.getBackend() !== backend) {
    throw new Error(`the ${backend} backend did not start in this browser`);
  }
  await tf.ready();
  return tf.getBackend();
}

/** Load ``job.model`` (a URL on this origin) and run it on ``job.inputs``: wire outputs. */
async function runJob(job) {
  const xs = job.inputs.map(fromWire);
  let model = null;
  try {
    let ys;
    if (job.kind === 'layers') {
      model = await tf.loadLayersModel(job.model, {strict: true});
      ys = model.predict(xs.length === 1 ? xs[0] : xs);
      if (!Array.isArray(ys)) ys = [ys];
      job.outputs = model.outputNames;
    } else {
      model = await tf.loadGraphModel(job.model);
      const feeds = {};
      job.inputs.forEach((t, i) => { feeds[t.name] = xs[i]; });
      const names = job.outputs && job.outputs.length ? job.outputs : model.outputNodes;
      ys = await model.executeAsync(feeds, names);
      if (!Array.isArray(ys)) ys = [ys];
      job.outputs = names;
    }
    const outputs = [];
    for (let i = 0; i < ys.length; i++) outputs.push(await toWire(job.outputs[i], ys[i]));
    tf.dispose(ys);
    return outputs;
  } finally {
    tf.dispose(xs);
    if (model) model.dispose();
  }
}

window.modelport = {useBackend, runJob};
