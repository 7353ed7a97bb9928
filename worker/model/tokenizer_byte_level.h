// GPT-2's reversible byte <-> character map used by byte-level BPE (GPT-2,
// Llama-3, Qwen2): printable bytes map to themselves, the other 68 bytes to
// U+0100.. in order, so every byte string becomes printable text ("Ġ" = space).
//
//   std::string mapped = ByteLevelEncode("a b");   // "aĠb"
//   std::optional<uint8_t> b = ByteLevelDecodeChar(U'Ġ');  // 0x20
//
// Tables are built once (thread-safe static init); lookups are O(1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vptq::tokenizer {

// The UTF-8 of the character byte `b` maps to.
std::string_view ByteLevelChar(uint8_t b);

// Maps every byte of `bytes` to its character.
std::string ByteLevelEncode(std::string_view bytes);

// The byte a character stands for, or nullopt if it is not in the map.
std::optional<uint8_t> ByteLevelDecodeChar(char32_t cp);

}  // namespace vptq::tokenizer
