#include "worker/model/tokenizer_byte_level.h"

#include <array>

#include "worker/model/tokenizer_utf8.h"

namespace vptq::tokenizer {
namespace {

struct ByteLevelTables {
  std::array<std::string, 256> byte_to_char;
  std::array<int16_t, 324> char_to_byte;  // code points < 324 only

  ByteLevelTables() {
    char_to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                             (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b)
                                    : static_cast<char32_t>(next++);
      AppendUtf8(cp, &byte_to_char[b]);
      char_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables* tables = new ByteLevelTables();
  return *tables;
}

}  // namespace

std::string_view ByteLevelChar(uint8_t b) { return Tables().byte_to_char[b]; }

std::string ByteLevelEncode(std::string_view bytes) {
  const auto& t = Tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out.append(t.byte_to_char[static_cast<unsigned char>(c)]);
  return out;
}

std::optional<uint8_t> ByteLevelDecodeChar(char32_t cp) {
  const auto& t = Tables();
  if (cp >= t.char_to_byte.size() || t.char_to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(t.char_to_byte[cp]);
}

}  // namespace vptq::tokenizer
