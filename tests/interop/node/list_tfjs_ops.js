#!/usr/bin/env node
/**
 * Prints, as JSON, the TF ops that the installed @tensorflow/tfjs-converter executes and the
 * attributes each one reads: {"version": "4.22.0", "ops": {"Conv2D": {"category":
 * "convolution", "inputs": [...], "attrs": {"strides": {"name": "strides", "type": "number[]",
 * "notSupported": false, "default": null}, ...}}}}. An attribute tfjs also reads under an older
 * TF name is listed under both (the older one with "deprecatedFor"). "notSupported" attributes
 * are parsed but ignored by tfjs.
 *
 *   node list_tfjs_ops.js [node_modules]
 *
 * The op lists ship as ES modules (dist/operations/op_list/*.js, `export const json = [...]`):
 * each file's array literal is evaluated in an empty sandbox, so no Node module-format support
 * is needed and nothing in the files can reach the process.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const vm = require('vm');

function converterDir(nodeModules) {
  const roots = [nodeModules, process.env.NODE_PATH, path.join(__dirname, 'node_modules')];
  for (const root of roots) {
    if (!root) continue;
    for (const r of root.split(path.delimiter)) {
      const dir = path.join(r, '@tensorflow', 'tfjs-converter');
      if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    }
  }
  throw new Error('@tensorflow/tfjs-converter is not installed');
}

function main() {
  const dir = converterDir(process.argv[2]);
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  const listDir = path.join(dir, 'dist', 'operations', 'op_list');
  const ops = {};
  for (const file of fs.readdirSync(listDir).sort()) {
    if (!file.endsWith('.js')) continue;
    const text = fs.readFileSync(path.join(listDir, file), 'utf8');
    const start = text.indexOf('export const json =');
    if (start < 0) throw new Error(`${file}: no 'export const json ='`);
    const body = text.slice(start + 'export const json ='.length).replace(/;\s*$/, '');
    const list = vm.runInNewContext(`(${body.replace(/;\s*(\/\/.*)?\s*$/, '')})`, {});
    for (const op of list) {
      const attrs = {};
      for (const a of op.attrs || []) {
        const entry = {name: a.name, type: a.type, notSupported: !!a.notSupported,
                       default: a.defaultValue === undefined ? null : a.defaultValue};
        attrs[a.tfName] = entry;
        // tfjs also reads the attribute under TF's older name (Squeeze: squeeze_dims).
        if (a.tfDeprecatedName) attrs[a.tfDeprecatedName] = Object.assign({}, entry, {deprecatedFor: a.tfName});
      }
      ops[op.tfOpName] = {
        category: op.category,
        inputs: (op.inputs || []).map(i => ({name: i.name, type: i.type, start: i.start,
                                              end: i.end === undefined ? null : i.end})),
        attrs,
      };
    }
  }
  process.stdout.write(JSON.stringify({version, ops}, null, 1) + '\n');
}

main();
