// Reference encoder for the Llama-2 tokenizer (SentencePiece-style BPE with
// byte fallback), used by worker/model tokenizer tests. Encodes every text of
// a JSON array with the npm package llama-tokenizer-js and writes
// {"ids": [[...]], "decoded": ["..."]}.
//   node tests/reference/tokenize_llama2.mjs texts.json out.json
// Like HF's Llama tokenizer without special tokens: a leading "▁" is added to
// non-empty text and no <s>.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = path.resolve(
    here, '../../third_party/npm/node_modules/llama-tokenizer-js/llama-tokenizer.js');
const { default: llamaTokenizer } = await import(pathToFileURL(lib).href);

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node tokenize_llama2.mjs texts.json out.json');
  process.exit(2);
}
const texts = JSON.parse(fs.readFileSync(input, 'utf8'));
const ids = [];
const decoded = [];
for (const text of texts) {
  const t = llamaTokenizer.encode(text, /*add_bos_token=*/false,
                                  /*add_preceding_space=*/true);
  ids.push(t);
  decoded.push(t.length ? llamaTokenizer.decode(t, false, true) : '');
}
fs.writeFileSync(output, JSON.stringify({ ids, decoded }));
