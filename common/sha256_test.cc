#include "common/sha256.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq {
namespace {

using ::testing::HasSubstr;
using ::vptq::testing::StatusIs;

// FIPS 180-2 / NIST example vectors.
constexpr char kEmpty[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbc[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlocks[] =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr char kMillionA[] =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

std::string Data(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
  return s;
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), kEmpty);
  EXPECT_EQ(Sha256Hex("abc"), kAbc);
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            kTwoBlocks);
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')), kMillionA);
}

TEST(Sha256Test, DigestBytesMatchHex) {
  Sha256 h;
  h.Update("abc");
  const std::array<uint8_t, 32> d = h.Digest();
  EXPECT_EQ(d[0], 0xba);
  EXPECT_EQ(d[31], 0xad);
  EXPECT_EQ(h.HexDigest(), kAbc);  // idempotent after finishing
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  const std::string data = Data(10000);
  const std::string want = Sha256Hex(data);
  // Chunk sizes around the 64-byte block boundary and odd primes.
  for (size_t chunk : {1u, 3u, 63u, 64u, 65u, 127u, 1000u, 4096u, 9999u}) {
    Sha256 h;
    for (size_t pos = 0; pos < data.size(); pos += chunk) {
      h.Update(data.data() + pos, std::min(chunk, data.size() - pos));
    }
    EXPECT_EQ(h.HexDigest(), want) << "chunk " << chunk;
  }
  Sha256 with_empty;
  with_empty.Update("");
  with_empty.Update(data);
  with_empty.Update(nullptr, 0);
  EXPECT_EQ(with_empty.HexDigest(), want);
}

TEST(Sha256Test, UpdateAfterFinishIsIgnored) {
  Sha256 h;
  h.Update("abc");
  EXPECT_EQ(h.HexDigest(), kAbc);
  h.Update("more");
  EXPECT_EQ(h.HexDigest(), kAbc);
}

TEST(Sha256Test, MovedHasherKeepsState) {
  Sha256 a;
  a.Update("ab");
  Sha256 b(std::move(a));
  b.Update("c");
  EXPECT_EQ(b.HexDigest(), kAbc);
  Sha256 c;
  c = std::move(b);
  EXPECT_EQ(c.HexDigest(), kAbc);
}

TEST(Sha256Test, FileMatchesInMemoryHash) {
  namespace fs = std::filesystem;
  const std::string path =
      (fs::temp_directory_path() / ("vptq_sha_" + std::to_string(::getpid())))
          .string();
  // Larger than one 1 MiB read chunk, not a multiple of it.
  const std::string data = Data((1 << 20) * 2 + 12345);
  ASSERT_TRUE(WriteFileAtomic(path, data).ok());
  auto got = Sha256File(path);
  fs::remove(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Sha256Hex(data));

  ASSERT_TRUE(WriteFileAtomic(path, "").ok());
  got = Sha256File(path);
  fs::remove(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, kEmpty);

  EXPECT_THAT(Sha256File(path), StatusIs(absl::StatusCode::kNotFound,
                                         HasSubstr(path)));
}

}  // namespace
}  // namespace vptq
