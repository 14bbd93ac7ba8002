/**
 * TF.js twins of the Keras layers modelport writes where stock layers have none
 * (modelport/keras_layers.py). Register them before loading such a layers-model:
 *
 *   const tf = require('@tensorflow/tfjs');
 *   require('modelport_layers.js').register(tf);   // or, in a browser: modelportLayers.register(tf)
 *   const model = await tf.loadLayersModel('web_model/model.json');
 *
 * LocalResponseNormalization is ONNX's LRN over the last axis:
 *   y = x / (bias + alpha / size * sum(x[c - lo .. c + hi] ** 2)) ** beta,
 *   lo = floor((size - 1) / 2), hi = size - 1 - lo, channels outside the tensor counting as 0.
 * tf.localResponseNormalization is not used: it scales by alpha (not alpha / size), is 4-D only
 * and has a symmetric window, so an even size would differ.
 */
'use strict';

function register(tf) {
  class LocalResponseNormalization extends tf.layers.Layer {
    constructor(config) {
      super(config);
      this.size = config.size;
      this.alpha = config.alpha === undefined ? 1e-4 : config.alpha;
      this.beta = config.beta === undefined ? 0.75 : config.beta;
      this.bias = config.bias === undefined ? 1.0 : config.bias;
      this.supportsMasking = true;
    }

    computeOutputShape(inputShape) {
      return inputShape;
    }

    call(inputs) {
      return tf.tidy(() => {
        const x = Array.isArray(inputs) ? inputs[0] : inputs;
        const lo = Math.floor((this.size - 1) / 2);
        const hi = this.size - 1 - lo;
        const rank = x.shape.length;
        const channels = x.shape[rank - 1];
        const pads = x.shape.map((_, i) => (i === rank - 1 ? [lo, hi] : [0, 0]));
        const squared = tf.pad(tf.square(x), pads);
        const begin = x.shape.map(() => 0);
        const parts = [];
        for (let i = 0; i < this.size; i++) {
          begin[rank - 1] = i;
          parts.push(tf.slice(squared, begin, [...x.shape.slice(0, rank - 1), channels]));
        }
        const total = parts.length === 1 ? parts[0] : tf.addN(parts);
        const scale = tf.add(tf.scalar(this.bias), tf.mul(tf.scalar(this.alpha / this.size), total));
        return tf.div(x, tf.pow(scale, tf.scalar(this.beta)));
      });
    }

    getConfig() {
      return Object.assign({}, super.getConfig(),
                           {size: this.size, alpha: this.alpha, beta: this.beta, bias: this.bias});
    }
  }
  LocalResponseNormalization.className = 'modelport>LocalResponseNormalization';
  tf.serialization.registerClass(LocalResponseNormalization);
  return {LocalResponseNormalization};
}

if (typeof module !== 'undefined' && module.exports) {
  module.exports = {register};
} else if (typeof window !== 'undefined') {
  window.modelportLayers = {register};
}
