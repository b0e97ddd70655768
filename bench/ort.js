#!/usr/bin/env node
// tmpipe bench: the same forward pass in ONNX Runtime (onnxruntime-node).
//
//   NODE_PATH=bench/out/node_modules node bench/ort.js MODEL_DIR \
//       [-r RUNS] [-b BATCH] [--check tmpipe.f32]
//
// MODEL_DIR is one folder written by gen_models.py (model.onnx,
// input.npy, meta.txt). One thread: intraOpNumThreads 1,
// interOpNumThreads 1, sequential execution, all graph optimizations.
// Prints, as bench/run parses:
//
//   info ort ...
//   result ort <model> best=<samples/s> median=<samples/s> runs=R ...
//   check ort <model> maxabs=<max |out - tmpipe|> maxref=<max |tmpipe|>
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

// A little-endian float32 C-order .npy (what gen_models.py writes).
function loadNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY')
    throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header) ||
      !/'fortran_order':\s*False/.test(header))
    throw new Error(`${file}: want little-endian float32 in C order, ` +
                    `got ${header.trim()}`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1]
    .split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const off = start + hlen;
  // Copy into an aligned buffer: the data offset need not be a multiple
  // of 4 within the file's Buffer.
  const data = new Float32Array(buf.length - off >> 2);
  Buffer.from(data.buffer).set(buf.subarray(off, off + data.length * 4));
  return { shape, data };
}

function parseArgs(argv) {
  const a = { runs: 10, batch: 100, check: null, folder: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-r') a.runs = Number(argv[++i]);
    else if (argv[i] === '-b') a.batch = Number(argv[++i]);
    else if (argv[i] === '--check') a.check = argv[++i];
    else if (a.folder === null) a.folder = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (a.folder === null || !(a.runs > 0) || !(a.batch > 0))
    throw new Error('usage: ort.js MODEL_DIR [-r RUNS] [-b BATCH] ' +
                    '[--check tmpipe.f32]');
  return a;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const meta = {};
  for (const line of fs.readFileSync(path.join(a.folder, 'meta.txt'),
    'latin1').split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) meta[line.slice(0, i)] = line.slice(i + 1);
  }
  const x = loadNpy(path.join(a.folder, 'input.npy'));
  const n = x.shape[0];
  const sample = x.shape.slice(1);
  const inNumel = sample.reduce((p, d) => p * d, 1);
  const outNumel = Number(meta.outputs);
  const session = await ort.InferenceSession.create(
    path.join(a.folder, 'model.onnx'), {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const y = new Float32Array(n * outNumel);

  async function pass() {
    for (let s = 0; s < n; s += a.batch) {
      const b = Math.min(a.batch, n - s);
      const t = new ort.Tensor('float32',
        x.data.subarray(s * inNumel, (s + b) * inNumel), [b, ...sample]);
      const r = await session.run({ [inName]: t });
      y.set(r[outName].data, s * outNumel);
    }
  }

  const version = require('onnxruntime-node/package.json').version;
  console.log(`info ort onnxruntime-node ${version} intra=1 inter=1 ` +
              'sequential');
  await pass(); // warm-up
  const rates = [];
  for (let r = 0; r < a.runs; r++) {
    const t0 = process.hrtime.bigint();
    await pass();
    rates.push(n / (Number(process.hrtime.bigint() - t0) * 1e-9));
  }
  rates.sort((p, q) => p - q);
  const mid = rates.length >> 1;
  const median = rates.length % 2 ? rates[mid]
    : (rates[mid - 1] + rates[mid]) / 2;
  console.log(`result ort ${meta.name} best=${rates[rates.length - 1]
    .toFixed(1)} median=${median.toFixed(1)} runs=${a.runs} ` +
              `samples=${n} batch=${a.batch}`);
  if (a.check) {
    const buf = fs.readFileSync(a.check);
    const ref = new Float32Array(buf.buffer.slice(buf.byteOffset,
      buf.byteOffset + buf.length));
    if (ref.length !== y.length)
      throw new Error(`${a.check}: ${ref.length} values, expected ` +
                      `${y.length}`);
    let maxabs = 0;
    let maxref = 0;
    for (let i = 0; i < y.length; i++) {
      maxabs = Math.max(maxabs, Math.abs(y[i] - ref[i]));
      maxref = Math.max(maxref, Math.abs(ref[i]));
    }
    console.log(`check ort ${meta.name} maxabs=${maxabs.toPrecision(3)} ` +
                `maxref=${maxref.toPrecision(3)}`);
  }
}

main().catch((e) => {
  console.error(`ort.js: ${e.message}`);
  process.exit(1);
});
