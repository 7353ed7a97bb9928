#include "common/safetensors.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"
#include "common/status_matchers.h"

namespace vptq {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::vptq::testing::IsOk;
using ::vptq::testing::StatusIs;

// Deterministic filler: byte i of tensor `seed` is (seed * 31 + i * 7) & 0xff.
std::vector<uint8_t> Pattern(size_t n, int seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed * 31 + i * 7);
  return out;
}

// A raw file: little-endian length prefix, header text as given, then data.
std::string RawFile(std::string_view header, std::string_view data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.append(header);
  out.append(data);
  return out;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(const std::string& raw) {
  return SafetensorsFile::FromBuffer(
      {reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, "mem.st");
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vptq_st_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, ec);
    fs::remove_all(path_, ec);
  }
  std::string operator/(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }
  const std::string& path() const { return path_; }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

// --- dtypes -------------------------------------------------------------------

TEST(DTypeTest, NamesAndSizesRoundTrip) {
  const std::vector<std::pair<DType, size_t>> all = {
      {DType::kF32, 4}, {DType::kF16, 2}, {DType::kBF16, 2}, {DType::kI64, 8},
      {DType::kI32, 4}, {DType::kI16, 2}, {DType::kU8, 1}};
  for (const auto& [d, size] : all) {
    EXPECT_EQ(DTypeSize(d), size) << DTypeName(d);
    VPTQ_ASSERT_OK_AND_ASSIGN(DType parsed, ParseDType(DTypeName(d)));
    EXPECT_EQ(parsed, d);
  }
  EXPECT_THAT(ParseDType("F64"), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("'F64'")));
  EXPECT_THAT(ParseDType("f32"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- write then read ------------------------------------------------------------

TEST(SafetensorsTest, WriteThenReadEveryDtype) {
  TempDir dir;
  SafetensorsWriter w;
  struct Spec {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  // Added out of name order on purpose.
  const std::vector<Spec> specs = {
      {"z.u8", DType::kU8, {5}},          {"a.f32", DType::kF32, {2, 3}},
      {"m.f16", DType::kF16, {4}},        {"b.bf16", DType::kBF16, {1, 2}},
      {"q.i64", DType::kI64, {3}},        {"c.i32", DType::kI32, {1, 1, 2}},
      {"k.i16", DType::kI16, {2, 2}},     {"empty", DType::kF32, {0, 7}},
      {"scalar", DType::kI32, {}}};
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& s = specs[i];
    int64_t numel = 1;
    for (int64_t d : s.shape) numel *= d;
    ASSERT_THAT(w.Add(s.name, s.dtype, s.shape,
                      Pattern(numel * DTypeSize(s.dtype), static_cast<int>(i))),
                IsOk());
  }
  w.SetMetadata("format", "pt");
  w.SetMetadata("bits", "2");
  const std::string path = dir / "model.safetensors";
  ASSERT_THAT(w.WriteAtomic(path), IsOk());
  EXPECT_THAT(dir.Entries(), ElementsAre("model.safetensors"));

  VPTQ_ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(path));
  EXPECT_EQ(file->path(), path);
  std::vector<std::string> names;
  for (const TensorView& t : file->tensors()) names.push_back(t.name);
  // Laid out in name order, and tensors() is in offset order.
  EXPECT_THAT(names, ElementsAre("a.f32", "b.bf16", "c.i32", "empty", "k.i16",
                                 "m.f16", "q.i64", "scalar", "z.u8"));
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& s = specs[i];
    const TensorView* t = file->Find(s.name);
    ASSERT_NE(t, nullptr) << s.name;
    EXPECT_EQ(t->dtype, s.dtype) << s.name;
    EXPECT_EQ(t->shape, s.shape) << s.name;
    const std::vector<uint8_t> want =
        Pattern(t->numel() * DTypeSize(s.dtype), static_cast<int>(i));
    EXPECT_EQ(std::vector<uint8_t>(t->data.begin(), t->data.end()), want)
        << s.name;
  }
  EXPECT_EQ(file->Find("scalar")->numel(), 1);
  EXPECT_EQ(file->Find("empty")->numel(), 0);
  EXPECT_EQ(file->Find("missing"), nullptr);
  EXPECT_EQ(file->metadata(),
            (std::map<std::string, std::string>{{"bits", "2"}, {"format", "pt"}}));

  // The file holds exactly what Serialize() produces.
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string on_disk, ReadFile(path));
  EXPECT_EQ(on_disk, w.Serialize());
  EXPECT_EQ(on_disk.size(), w.SerializeHeader().size() + w.total_bytes());
}

TEST(SafetensorsTest, ReadHeaderMatchesOpenWithoutData) {
  TempDir dir;
  SafetensorsWriter w;
  ASSERT_THAT(w.Add("b", DType::kI16, {3}, Pattern(6, 1)), IsOk());
  ASSERT_THAT(w.Add("a", DType::kF32, {2, 2}, Pattern(16, 2)), IsOk());
  w.SetMetadata("k", "v");
  const std::string path = dir / "x.safetensors";
  ASSERT_THAT(w.WriteAtomic(path), IsOk());

  VPTQ_ASSERT_OK_AND_ASSIGN(SafetensorsHeader h,
                            SafetensorsFile::ReadHeader(path));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].dtype, DType::kF32);
  EXPECT_THAT(h.tensors[0].shape, ElementsAre(2, 2));
  EXPECT_EQ(h.tensors[0].data_begin, 0u);
  EXPECT_EQ(h.tensors[0].data_end, 16u);
  EXPECT_EQ(h.tensors[1].name, "b");
  EXPECT_EQ(h.tensors[1].numel(), 3);
  EXPECT_EQ(h.tensors[1].nbytes(), 6u);
  EXPECT_EQ(h.metadata.at("k"), "v");
  EXPECT_EQ(h.data_start, w.SerializeHeader().size());
  EXPECT_EQ(h.data_start % 8, 0u);
  EXPECT_EQ(h.file_size, h.data_start + 22);
}

TEST(SafetensorsTest, ReadHeaderOfHugeSparseFileIsCheap) {
  // A 16 GiB tensor in a sparse file: ReadHeader and Open must not touch the
  // data (a planner for 70B models reads hundreds of such headers).
  TempDir dir;
  const uint64_t kBytes = uint64_t{16} << 30;
  const std::string header =
      "{\"w\":{\"dtype\":\"BF16\",\"shape\":[65536,131072],\"data_offsets\":[0," +
      std::to_string(kBytes) + "]}}";
  const std::string path = dir / "big.safetensors";
  {
    std::ofstream out(path, std::ios::binary);
    const std::string raw = RawFile(header);
    out.write(raw.data(), static_cast<std::streamsize>(raw.size()));
  }
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(8 + header.size() + kBytes)),
            0);
  VPTQ_ASSERT_OK_AND_ASSIGN(SafetensorsHeader h,
                            SafetensorsFile::ReadHeader(path));
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors[0].numel(), int64_t{65536} * 131072);
  VPTQ_ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(path));
  EXPECT_EQ(file->Find("w")->data.size(), kBytes);
}

TEST(SafetensorsTest, OutputIsByteDeterministicAndMatchesReferenceLayout) {
  auto build = [](bool reverse) {
    SafetensorsWriter w;
    std::vector<std::string> names = {"b", "a"};
    if (reverse) std::swap(names[0], names[1]);
    for (const std::string& n : names) {
      EXPECT_THAT(w.Add(n, n == "a" ? DType::kF32 : DType::kU8, {1},
                        n == "a" ? Pattern(4, 0) : Pattern(1, 1)),
                  IsOk());
    }
    w.SetMetadata(reverse ? "z" : "format", reverse ? "1" : "pt");
    w.SetMetadata(reverse ? "format" : "z", reverse ? "pt" : "1");
    return w;
  };
  const std::string one = build(false).Serialize();
  EXPECT_EQ(one, build(true).Serialize());
  // The reference implementation's layout: __metadata__ first, compact JSON,
  // fields dtype/shape/data_offsets, spaces up to a multiple of 8.
  const std::string json =
      "{\"__metadata__\":{\"format\":\"pt\",\"z\":\"1\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]}}";
  const std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  std::string want = RawFile(padded);
  for (uint8_t b : Pattern(4, 0)) want.push_back(static_cast<char>(b));
  want.push_back(static_cast<char>(Pattern(1, 1)[0]));
  EXPECT_EQ(one, want);
}

// Files written by the reference implementation (kept in the fuzz corpus) are
// reproduced byte for byte when their tensors are written again.
TEST(SafetensorsTest, RewritingReferenceFilesReproducesTheirBytes) {
  const char* src = std::getenv("VPTQ_SOURCE_DIR");
  const std::string corpus =
      std::string(src ? src : ".") + "/tests/fuzz/corpus/";
  for (const char* name : {"ok_reference_plain_12bit.safetensors",
                           "ok_reference_packed.safetensors",
                           "ok_all_dtypes.safetensors"}) {
    SCOPED_TRACE(name);
    VPTQ_ASSERT_OK_AND_ASSIGN(std::string raw, ReadFile(corpus + name));
    VPTQ_ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(corpus + name));
    ASSERT_FALSE(file->tensors().empty());
    SafetensorsWriter w;
    for (const TensorView& t : file->tensors()) {
      ASSERT_THAT(w.Add(t.name, t.dtype, t.shape, t.data), IsOk());
    }
    for (const auto& [k, v] : file->metadata()) w.SetMetadata(k, v);
    EXPECT_EQ(w.Serialize(), raw);
  }
}

TEST(SafetensorsTest, AcceptsValidEdgeCases) {
  // Empty file: no tensors, no data.
  // FromBuffer does not copy: the buffers must outlive the parsed files.
  const std::string empty_raw = RawFile("{}");
  VPTQ_ASSERT_OK_AND_ASSIGN(auto empty, Parse(empty_raw));
  EXPECT_THAT(empty->tensors(), IsEmpty());
  // Padding, null metadata, unknown fields, zero-size tensors sharing an
  // offset with a real one.
  const std::string raw =
      RawFile("{\"__metadata__\":null,"
              "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
              "\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],"
              "\"extra\":{\"x\":[1,2]}}}       ",
              "ab");
  VPTQ_ASSERT_OK_AND_ASSIGN(auto f, Parse(raw));
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "z");
  EXPECT_EQ(std::string(f->Find("w")->data.begin(), f->Find("w")->data.end()),
            "ab");
  EXPECT_THAT(f->metadata(), IsEmpty());
}

// --- lying headers: INVALID_ARGUMENT naming the file and the tensor ----------

struct LieCase {
  std::string label;
  std::string raw;
  std::string tensor;   // expected "tensor '<name>'" in the message, or ""
  std::string detail;   // expected substring
};

std::string T(std::string_view dtype, std::string_view shape, uint64_t b,
              uint64_t e) {
  return "{\"dtype\":\"" + std::string(dtype) + "\",\"shape\":" +
         std::string(shape) + ",\"data_offsets\":[" + std::to_string(b) + "," +
         std::to_string(e) + "]}";
}

std::string Prefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

std::vector<LieCase> LieCases() {
  const std::string z8(8, '\0');
  return {
      {"empty_file", "", "", "shorter than the 8-byte"},
      {"seven_bytes", "\x02\0\0\0\0\0\0", "", "shorter than the 8-byte"},
      {"header_over_100mb", Prefix(100'000'001) + "{}", "", "exceeds the 100000000"},
      {"header_length_max_u64", Prefix(~uint64_t{0}) + "{}", "", "exceeds"},
      {"header_past_eof", Prefix(64) + "{}", "", "runs past the end"},
      {"bad_json", RawFile("{\"w\":"), "", "not valid JSON"},
      {"trailing_garbage", RawFile("{}x"), "", "not valid JSON"},
      {"nul_padding", RawFile(std::string("{}\0\0", 4)), "", "not valid JSON"},
      {"invalid_utf8", RawFile("{\"w\xff\":" + T("U8", "[1]", 0, 1) + "}", "a"), "",
       "not valid JSON"},
      {"non_object_array", RawFile("[1,2]"), "", "must be a JSON object, got array"},
      {"non_object_number", RawFile("42"), "", "must be a JSON object, got number"},
      {"entry_not_object", RawFile("{\"w\":3}"), "w", "must be a JSON object"},
      {"unknown_dtype", RawFile("{\"w\":" + T("F64", "[1]", 0, 8) + "}", z8), "w",
       "unsupported dtype 'F64'"},
      {"missing_dtype",
       RawFile("{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", "a"), "w",
       "\"dtype\""},
      {"missing_shape",
       RawFile("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", "a"), "w",
       "\"shape\""},
      {"missing_offsets", RawFile("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", "a"),
       "w", "data_offsets"},
      {"offsets_arity", RawFile("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                                "\"data_offsets\":[0,1,2]}}", "a"),
       "w", "data_offsets"},
      {"offsets_float", RawFile("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                                "\"data_offsets\":[0,1.0]}}", "a"),
       "w", "data_offsets"},
      {"offsets_negative", RawFile("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                                   "\"data_offsets\":[-1,0]}}", "a"),
       "w", "data_offsets"},
      {"duplicate_name",
       RawFile("{\"w\":" + T("U8", "[1]", 0, 1) + ",\"w\":" + T("U8", "[1]", 1, 2) + "}",
               "ab"),
       "", "duplicate tensor name 'w'"},
      {"duplicate_field",
       RawFile("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,1]}}", "a"),
       "w", "duplicate field 'dtype'"},
      {"out_of_range", RawFile("{\"w\":" + T("U8", "[64]", 0, 64) + "}", z8), "w",
       "out of range: the data section has 8 bytes"},
      {"offsets_reversed", RawFile("{\"w\":" + T("U8", "[4]", 8, 4) + "}", z8), "w",
       "end before they begin"},
      {"overlap",
       RawFile("{\"a\":" + T("F32", "[2]", 0, 8) + ",\"b\":" + T("F32", "[2]", 4, 12) + "}",
               std::string(12, '\0')),
       "b", "overlap tensor 'a' which ends at 8"},
      {"same_range_twice",
       RawFile("{\"a\":" + T("F32", "[1]", 0, 4) + ",\"b\":" + T("F32", "[1]", 0, 4) + "}",
               std::string(4, '\0')),
       "b", "overlap tensor 'a'"},
      {"gap",
       RawFile("{\"a\":" + T("F32", "[1]", 0, 4) + ",\"b\":" + T("F32", "[1]", 8, 12) + "}",
               std::string(12, '\0')),
       "b", "gap of 4 unclaimed bytes"},
      {"gap_at_start", RawFile("{\"a\":" + T("F32", "[1]", 4, 8) + "}", z8), "a",
       "gap of 4"},
      {"not_covering", RawFile("{\"a\":" + T("F32", "[1]", 0, 4) + "}", z8), "a",
       "does not cover the data"},
      {"no_tensors_but_data", RawFile("{}", z8), "", "lists no tensors but"},
      {"size_mismatch", RawFile("{\"w\":" + T("F32", "[3]", 0, 8) + "}", z8), "w",
       "F32 x [3] is 12 bytes but data_offsets span 8"},
      {"negative_dim", RawFile("{\"w\":" + T("F32", "[-1,2]", 0, 8) + "}", z8), "w",
       "shape entry -1"},
      {"float_dim", RawFile("{\"w\":" + T("F32", "[1.5]", 0, 8) + "}", z8), "w",
       "shape entry 1.5"},
      {"string_dim", RawFile("{\"w\":" + T("F32", "[\"2\"]", 0, 8) + "}", z8), "w",
       "shape entry \"2\""},
      {"dim_over_int64",
       RawFile("{\"w\":" + T("U8", "[18446744073709551615]", 0, 8) + "}", z8), "w",
       "not a non-negative 64-bit integer"},
      {"numel_overflow",
       RawFile("{\"w\":" + T("F32", "[4294967296,4294967296]", 0, 8) + "}", z8), "w",
       "overflows 64 bits"},
      {"bytes_overflow",
       RawFile("{\"w\":" + T("F32", "[4611686018427387904]", 0, 8) + "}", z8), "w",
       "overflows 64 bits"},
      // numel is 0, but strides computed from these dims overflow.
      {"partial_product_overflow",
       RawFile("{\"w\":" + T("U8", "[9223372036854775807,2,0]", 0, 0) + "}"), "w",
       "overflows 64 bits"},
      {"metadata_not_object", RawFile("{\"__metadata__\":[1]}"), "", "__metadata__"},
      {"metadata_value_not_string", RawFile("{\"__metadata__\":{\"k\":1}}"), "",
       "__metadata__ value for 'k' must be a string"},
      {"metadata_duplicate_key",
       RawFile("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), "",
       "__metadata__ has duplicate key 'k'"},
  };
}

TEST(SafetensorsLyingHeaderTest, EachKindIsInvalidArgumentNamingFileAndTensor) {
  for (const LieCase& c : LieCases()) {
    SCOPED_TRACE(c.label);
    auto result = Parse(c.raw);
    ASSERT_FALSE(result.ok());
    const std::string msg(result.status().message());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << msg;
    EXPECT_THAT(msg, HasSubstr("mem.st: "));
    if (!c.tensor.empty()) {
      EXPECT_THAT(msg, HasSubstr("tensor '" + c.tensor + "'"));
    }
    EXPECT_THAT(msg, HasSubstr(c.detail));
  }
}

// The same lies through Open() and ReadHeader() name the path.
TEST(SafetensorsLyingHeaderTest, OpenAndReadHeaderNameThePath) {
  TempDir dir;
  for (const LieCase& c : LieCases()) {
    SCOPED_TRACE(c.label);
    const std::string path = dir / (c.label + ".safetensors");
    {
      std::ofstream out(path, std::ios::binary);  // no fsync: keeps it fast
      out.write(c.raw.data(), static_cast<std::streamsize>(c.raw.size()));
      ASSERT_TRUE(out.good());
    }
    auto opened = SafetensorsFile::Open(path);
    EXPECT_THAT(opened, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr(path + ": ")));
    auto header = SafetensorsFile::ReadHeader(path);
    EXPECT_THAT(header, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr(path + ": ")));
    if (!opened.ok() && !header.ok()) {
      // Both paths apply the same checks.
      EXPECT_EQ(opened.status().message(), header.status().message());
    }
  }
}

TEST(SafetensorsLyingHeaderTest, HostileNamesAreEscapedAndTruncated) {
  const std::string name = "bad\nname" + std::string(1000, 'x');
  const std::string raw =
      RawFile("{\"bad\\nname" + std::string(1000, 'x') + "\":" +
              T("F64", "[1]", 0, 8) + "}", std::string(8, '\0'));
  auto result = Parse(raw);
  ASSERT_FALSE(result.ok());
  const std::string msg(result.status().message());
  EXPECT_THAT(msg, HasSubstr("tensor 'bad\\nname"));
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_LT(msg.size(), 400u);
}

TEST(SafetensorsTest, OpenReportsUnreadablePaths) {
  TempDir dir;
  EXPECT_THAT(SafetensorsFile::Open(dir / "missing.safetensors"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(dir / "missing.safetensors")));
  EXPECT_THAT(SafetensorsFile::ReadHeader(dir / "missing.safetensors"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(SafetensorsFile::Open(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a regular file")));
}

// --- writer input checks -----------------------------------------------------

TEST(SafetensorsWriterTest, RejectsBadTensors) {
  SafetensorsWriter w;
  ASSERT_THAT(w.Add("w", DType::kF32, {2}, Pattern(8, 0)), IsOk());
  EXPECT_THAT(w.Add("w", DType::kF32, {2}, Pattern(8, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 'w': added twice")));
  EXPECT_THAT(w.Add("x", DType::kF32, {2, 3}, Pattern(8, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("F32 x [2,3] needs 24 bytes, got 8")));
  EXPECT_THAT(w.Add("x", DType::kU8, {-2}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(w.Add("x", DType::kI64, {int64_t{1} << 62}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("overflows")));
  EXPECT_THAT(w.Add("__metadata__", DType::kU8, {1}, Pattern(1, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reserved")));
  EXPECT_THAT(w.Add("bad\xff", DType::kU8, {1}, Pattern(1, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_EQ(w.total_bytes(), 8u);  // only the first tensor was kept
}

TEST(SafetensorsWriterTest, RejectsInvalidUtf8MetadataOnWrite) {
  TempDir dir;
  SafetensorsWriter w;
  w.SetMetadata("k", "\xc0\x80");  // overlong NUL
  EXPECT_THAT(w.WriteAtomic(dir / "m.safetensors"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'k'")));
  EXPECT_THAT(dir.Entries(), IsEmpty());
}

TEST(SafetensorsWriterTest, NamesNeedingJsonEscapesRoundTrip) {
  SafetensorsWriter w;
  const std::string name = "q\"uote\\back\nline\x01\xc3\xa9";
  ASSERT_THAT(w.Add(name, DType::kU8, {1}, Pattern(1, 0)), IsOk());
  w.SetMetadata("\t", "\"");
  const std::string raw = w.Serialize();
  VPTQ_ASSERT_OK_AND_ASSIGN(auto f, Parse(raw));
  ASSERT_NE(f->Find(name), nullptr);
  EXPECT_EQ(f->metadata().at("\t"), "\"");
}

// --- failed writes leave nothing behind -----------------------------------------

SafetensorsWriter OneMegabyteWriter() {
  SafetensorsWriter w;
  EXPECT_THAT(w.Add("w", DType::kU8, {1 << 20}, Pattern(1 << 20, 3)), IsOk());
  return w;
}

TEST(SafetensorsWriteFailureTest, MissingDirectory) {
  TempDir dir;
  const std::string path = dir / "no/such/dir/model.safetensors";
  EXPECT_THAT(OneMegabyteWriter().WriteAtomic(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(dir.Entries(), IsEmpty());
}

TEST(SafetensorsWriteFailureTest, DirectoryInTheWayOfTheRename) {
  // Everything up to the rename succeeds, so the temp file exists and must
  // be removed when the rename fails.
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  ASSERT_TRUE(fs::create_directory(path));
  auto s = OneMegabyteWriter().WriteAtomic(path);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_THAT(dir.Entries(), ElementsAre("model.safetensors"));
  EXPECT_TRUE(fs::is_directory(path));
}

TEST(SafetensorsWriteFailureTest, WriteFailsMidStreamAndOldFileSurvives) {
  // RLIMIT_FSIZE makes write() fail with EFBIG part-way (like a full disk),
  // even as root.
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  ASSERT_THAT(WriteFileAtomic(path, "old contents"), IsOk());
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status s = OneMegabyteWriter().WriteAtomic(path);
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr(path), HasSubstr("write")));
  EXPECT_THAT(dir.Entries(), ElementsAre("model.safetensors"));
  VPTQ_ASSERT_OK_AND_ASSIGN(std::string still, ReadFile(path));
  EXPECT_EQ(still, "old contents");
}

TEST(SafetensorsWriteFailureTest, ReadOnlyDirectory) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir dir;
  const std::string sub = dir / "ro";
  ASSERT_TRUE(fs::create_directory(sub));
  fs::permissions(sub, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string path = sub + "/model.safetensors";
  EXPECT_THAT(OneMegabyteWriter().WriteAtomic(path),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(path)));
  EXPECT_TRUE(fs::is_empty(sub));
}

}  // namespace
}  // namespace vptq
