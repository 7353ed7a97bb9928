#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/status.h"

namespace vptq {
namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

// Debian's Abseil has its own string_view type.
absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }
constexpr size_t kPrefixBytes = 8;

// Names in messages are escaped and truncated: a hostile header must not
// smuggle control bytes or megabytes into a log line.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 160;
  std::string out = absl::StrCat(
      "'", absl::CHexEscape(Sv(s.substr(0, std::min(s.size(), kMax)))), "'");
  if (s.size() > kMax) absl::StrAppend(&out, "...");
  return out;
}

template <typename... Args>
absl::Status FileError(std::string_view file, const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(file), ": ", args...));
}

template <typename... Args>
absl::Status TensorError(std::string_view file, std::string_view tensor,
                         const Args&... args) {
  return absl::InvalidArgumentError(
      absl::StrCat(Sv(file), ": tensor ", Quote(tensor), ": ", args...));
}

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void StoreLe64(uint64_t v, char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Validates the 8-byte prefix against the file size; returns the header length.
absl::StatusOr<uint64_t> CheckPrefix(const uint8_t* prefix, uint64_t file_size,
                                     std::string_view file) {
  const uint64_t n = LoadLe64(prefix);
  if (n > kMaxSafetensorsHeaderBytes) {
    return FileError(file, "header length ", n, " exceeds the ",
                     kMaxSafetensorsHeaderBytes,
                     "-byte limit; the file is corrupt or not safetensors");
  }
  if (n > file_size - kPrefixBytes) {
    return FileError(file, "header length ", n, " runs past the end of the ",
                     file_size, "-byte file; the file is truncated or corrupt");
  }
  return n;
}

absl::Status CheckFileSize(uint64_t file_size, std::string_view file) {
  if (file_size < kPrefixBytes) {
    return FileError(file, "file is ", file_size,
                     " bytes, shorter than the 8-byte header length; not a "
                     "safetensors file");
  }
  return absl::OkStatus();
}

// JSON parse that also rejects duplicate keys at any depth (nlohmann keeps
// the last silently, which would hide a lying header).
absl::StatusOr<json> ParseJson(std::string_view text, std::string_view file) {
  std::vector<absl::flat_hash_set<std::string>> open_objects;
  std::string top_key;   // the tensor whose entry is being parsed
  std::string dup_key;   // first duplicate seen
  std::string dup_in;    // its enclosing top-level key ("" at top level)
  bool dup = false;
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        if (open_objects.empty() || !parsed.is_string()) break;
        const auto& k = parsed.get_ref<const std::string&>();
        if (open_objects.size() == 1) top_key = k;
        if (!open_objects.back().insert(k).second && !dup) {
          dup = true;
          dup_key = k;
          dup_in = open_objects.size() == 1 ? "" : top_key;
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  // No valid JSON holds a raw NUL, and the parser would take one as the end
  // of input, silently ignoring whatever follows it.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return FileError(file, "header is not valid JSON: NUL byte at offset ", nul);
  }
  json j;
  try {
    j = json::parse(text.begin(), text.end(), callback);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.size() > 300) what.resize(300);
    return FileError(file, "header is not valid JSON: ", absl::CHexEscape(what));
  }
  if (dup) {
    if (dup_in.empty()) {
      return FileError(file, "duplicate tensor name ", Quote(dup_key),
                       " in the header");
    }
    if (dup_in == kMetadataKey) {
      return FileError(file, "__metadata__ has duplicate key ", Quote(dup_key));
    }
    return TensorError(file, dup_in, "duplicate field ", Quote(dup_key));
  }
  return j;
}

// A non-negative JSON integer that fits in int64_t.
bool AsDim(const json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return false;
    }
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    *out = s;
    return true;
  }
  return false;
}

bool AsOffset(const json& v, uint64_t* out) {
  int64_t d;
  if (!AsDim(v, &d)) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// numel and byte size of dtype x shape, or false on 64-bit overflow.
bool CountBytes(DType dtype, const std::vector<int64_t>& shape, int64_t* numel,
                int64_t* nbytes) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return false;
  }
  int64_t b;
  if (__builtin_mul_overflow(n, static_cast<int64_t>(DTypeSize(dtype)), &b)) {
    return false;
  }
  *numel = n;
  *nbytes = b;
  return true;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<TensorInfo> ParseTensorEntry(const std::string& name,
                                            const json& entry,
                                            uint64_t data_size,
                                            std::string_view file) {
  if (!entry.is_object()) {
    return TensorError(file, name, "entry must be a JSON object with dtype, "
                                   "shape and data_offsets");
  }
  TensorInfo info;
  info.name = name;

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return TensorError(file, name, "missing or non-string \"dtype\"");
  }
  absl::StatusOr<DType> dtype =
      ParseDType(dtype_it->get_ref<const std::string&>());
  if (!dtype.ok()) return TensorError(file, name, dtype.status().message());
  info.dtype = *dtype;

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return TensorError(file, name, "missing or non-array \"shape\"");
  }
  info.shape.reserve(shape_it->size());
  for (const json& d : *shape_it) {
    int64_t dim;
    if (!AsDim(d, &dim)) {
      return TensorError(file, name, "shape entry ",
                         d.dump(-1, ' ', false, json::error_handler_t::replace),
                         " is not a non-negative 64-bit integer");
    }
    info.shape.push_back(dim);
  }

  auto off_it = entry.find("data_offsets");
  if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 ||
      !AsOffset((*off_it)[0], &info.data_begin) ||
      !AsOffset((*off_it)[1], &info.data_end)) {
    return TensorError(file, name,
                       "\"data_offsets\" must be [begin, end] of two "
                       "non-negative integers");
  }
  if (info.data_begin > info.data_end) {
    return TensorError(file, name, "data_offsets [", info.data_begin, ", ",
                       info.data_end, "] end before they begin");
  }
  if (info.data_end > data_size) {
    return TensorError(file, name, "data_offsets [", info.data_begin, ", ",
                       info.data_end, "] out of range: the data section has ",
                       data_size, " bytes");
  }

  int64_t numel, nbytes;
  if (!CountBytes(info.dtype, info.shape, &numel, &nbytes)) {
    return TensorError(file, name, "shape ", ShapeString(info.shape),
                       " overflows 64 bits");
  }
  if (static_cast<uint64_t>(nbytes) != info.nbytes()) {
    return TensorError(file, name, Sv(DTypeName(info.dtype)), " x ",
                       ShapeString(info.shape), " is ", nbytes,
                       " bytes but data_offsets span ", info.nbytes());
  }
  return info;
}

// Parses and validates a header whose data section has `data_size` bytes.
absl::StatusOr<SafetensorsHeader> ParseHeader(std::string_view text,
                                              uint64_t data_size,
                                              std::string_view file) {
  VPTQ_ASSIGN_OR_RETURN(json root, ParseJson(text, file));
  if (!root.is_object()) {
    return FileError(file, "header must be a JSON object, got ",
                     root.type_name());
  }
  SafetensorsHeader header;
  header.tensors.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        return FileError(file, "__metadata__ must be an object of strings");
      }
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          return FileError(file, "__metadata__ value for ", Quote(mk),
                           " must be a string, got ", mv.type_name());
        }
        header.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    VPTQ_ASSIGN_OR_RETURN(TensorInfo info,
                          ParseTensorEntry(key, value, data_size, file));
    header.tensors.push_back(std::move(info));
  }

  // The data section must be tiled exactly: no overlap, no gap, no tail.
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) {
              return std::tie(a.data_begin, a.data_end, a.name) <
                     std::tie(b.data_begin, b.data_end, b.name);
            });
  uint64_t covered = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : header.tensors) {
    if (t.data_begin < covered) {
      return TensorError(file, t.name, "data_offsets [", t.data_begin, ", ",
                         t.data_end, "] overlap tensor ", Quote(prev->name),
                         " which ends at ", covered);
    }
    if (t.data_begin > covered) {
      return TensorError(file, t.name, "data_offsets [", t.data_begin, ", ",
                         t.data_end, "] leave a gap of ",
                         t.data_begin - covered, " unclaimed bytes before it");
    }
    covered = t.data_end;
    prev = &t;
  }
  if (covered != data_size) {
    if (prev != nullptr) {
      return TensorError(file, prev->name, "the last tensor ends at ", covered,
                         " but the data section has ", data_size,
                         " bytes; the header does not cover the data");
    }
    return FileError(file, "header lists no tensors but the data section has ",
                     data_size, " bytes");
  }
  return header;
}

absl::Status PreadAll(int fd, void* buf, size_t len, uint64_t offset,
                      std::string_view path) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    const ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (n == 0) {
      return FileError(path, "file shrank while its header was being read");
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

// Opens a regular file for reading; returns the fd and its size.
absl::StatusOr<std::pair<int, uint64_t>> OpenRegular(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return FileError(path, "not a regular file");
  }
  return std::make_pair(fd, static_cast<uint64_t>(st.st_size));
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), the
// set the JSON writer accepts.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMinForLen[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len] || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

// --- dtypes -------------------------------------------------------------------

std::string_view DTypeName(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kU8: return "U8";
  }
  return "?";
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
                  DType::kI32, DType::kI16, DType::kU8}) {
    if (name == DTypeName(d)) return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported dtype ", Quote(name),
                   "; supported: F32, F16, BF16, I64, I32, I16, U8"));
}

size_t DTypeSize(DType d) {
  switch (d) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI64: return 8;
    case DType::kI32: return 4;
    case DType::kI16: return 2;
    case DType::kU8: return 1;
  }
  return 0;
}

namespace {
int64_t Product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow when parsed
  return n;
}
}  // namespace

int64_t TensorView::numel() const { return Product(shape); }
int64_t TensorInfo::numel() const { return Product(shape); }

// --- reading ------------------------------------------------------------------

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

absl::Status SafetensorsFile::Init(absl::Span<const uint8_t> bytes) {
  VPTQ_RETURN_IF_ERROR(CheckFileSize(bytes.size(), path_));
  VPTQ_ASSIGN_OR_RETURN(uint64_t header_len,
                        CheckPrefix(bytes.data(), bytes.size(), path_));
  const uint64_t data_start = kPrefixBytes + header_len;
  const std::string_view text(
      reinterpret_cast<const char*>(bytes.data()) + kPrefixBytes, header_len);
  VPTQ_ASSIGN_OR_RETURN(
      SafetensorsHeader header,
      ParseHeader(text, bytes.size() - data_start, path_));
  const uint8_t* data = bytes.data() + data_start;
  tensors_.reserve(header.tensors.size());
  index_.reserve(header.tensors.size());
  for (TensorInfo& t : header.tensors) {
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(TensorView{
        std::move(t.name), t.dtype, std::move(t.shape),
        absl::Span<const uint8_t>(data + t.data_begin, t.nbytes())});
  }
  metadata_ = std::move(header.metadata);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  VPTQ_ASSIGN_OR_RETURN(auto fd_size, OpenRegular(path));
  const auto [fd, size] = fd_size;
  if (absl::Status s = CheckFileSize(size, path); !s.ok()) {
    ::close(fd);
    return s;
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) return ErrnoStatus(err, "mmap", path);
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->map_ = map;
  file->map_size_ = size;
  VPTQ_RETURN_IF_ERROR(
      file->Init({static_cast<const uint8_t*>(map), static_cast<size_t>(size)}));
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(
    absl::Span<const uint8_t> bytes, std::string name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = std::move(name);
  VPTQ_RETURN_IF_ERROR(file->Init(bytes));
  return file;
}

absl::StatusOr<SafetensorsHeader> SafetensorsFile::ReadHeader(
    const std::string& path) {
  VPTQ_ASSIGN_OR_RETURN(auto fd_size, OpenRegular(path));
  const int fd = fd_size.first;
  const uint64_t size = fd_size.second;
  auto read = [&]() -> absl::StatusOr<SafetensorsHeader> {
    VPTQ_RETURN_IF_ERROR(CheckFileSize(size, path));
    uint8_t prefix[kPrefixBytes];
    VPTQ_RETURN_IF_ERROR(PreadAll(fd, prefix, sizeof(prefix), 0, path));
    VPTQ_ASSIGN_OR_RETURN(uint64_t header_len, CheckPrefix(prefix, size, path));
    std::string text(header_len, '\0');
    VPTQ_RETURN_IF_ERROR(
        PreadAll(fd, text.data(), text.size(), kPrefixBytes, path));
    const uint64_t data_start = kPrefixBytes + header_len;
    VPTQ_ASSIGN_OR_RETURN(SafetensorsHeader header,
                          ParseHeader(text, size - data_start, path));
    header.data_start = data_start;
    header.file_size = size;
    return header;
  };
  absl::StatusOr<SafetensorsHeader> result = read();
  ::close(fd);
  return result;
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(absl::string_view(name.data(), name.size()));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// --- writing ------------------------------------------------------------------

absl::Status SafetensorsWriter::Add(std::string name, DType dtype,
                                    std::vector<int64_t> shape,
                                    absl::Span<const uint8_t> bytes) {
  if (name == kMetadataKey) {
    return absl::InvalidArgumentError(
        "tensor name '__metadata__' is reserved for the metadata map");
  }
  if (!IsValidUtf8(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", Quote(name), ": name is not valid UTF-8"));
  }
  if (entries_.contains(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", Quote(name), ": added twice"));
  }
  if (DTypeSize(dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", Quote(name), ": invalid dtype value ",
                     static_cast<int>(dtype)));
  }
  int64_t numel, nbytes;
  if (!CountBytes(dtype, shape, &numel, &nbytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", Quote(name), ": shape ", ShapeString(shape),
                     " has a negative dim or overflows 64 bits"));
  }
  if (static_cast<uint64_t>(nbytes) != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor ", Quote(name), ": ", Sv(DTypeName(dtype)), " x ",
        ShapeString(shape), " needs ", nbytes, " bytes, got ", bytes.size()));
  }
  entries_.emplace(std::move(name),
                   Entry{dtype, std::move(shape),
                         std::vector<uint8_t>(bytes.begin(), bytes.end())});
  return absl::OkStatus();
}

void SafetensorsWriter::SetMetadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

size_t SafetensorsWriter::total_bytes() const {
  size_t total = 0;
  for (const auto& [name, e] : entries_) total += e.bytes.size();
  return total;
}

std::string SafetensorsWriter::SerializeHeader() const {
  // Built by hand rather than through an ordered JSON object, whose key
  // lookups are linear: thousands of tensors must stay cheap. Strings go
  // through the JSON library for escaping. Invalid UTF-8 can only come from
  // metadata (names are checked in Add): WriteAtomic rejects it, Serialize
  // replaces it with U+FFFD.
  auto quoted = [](std::string_view s) {
    return nlohmann::json(s).dump(-1, ' ', false,
                                  nlohmann::json::error_handler_t::replace);
  };
  std::string text = "{";
  if (!metadata_.empty()) {
    absl::StrAppend(&text, "\"", Sv(kMetadataKey), "\":{");
    bool first = true;
    for (const auto& [k, v] : metadata_) {
      absl::StrAppend(&text, first ? "" : ",", quoted(k), ":", quoted(v));
      first = false;
    }
    text += "}";
  }
  uint64_t offset = 0;
  for (const auto& [name, e] : entries_) {
    const uint64_t end = offset + e.bytes.size();
    absl::StrAppend(&text, text.size() > 1 ? "," : "", quoted(name),
                    ":{\"dtype\":\"", Sv(DTypeName(e.dtype)), "\",\"shape\":[",
                    absl::StrJoin(e.shape, ","), "],\"data_offsets\":[", offset,
                    ",", end, "]}");
    offset = end;
  }
  text += "}";
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(kPrefixBytes, '\0');
  StoreLe64(text.size(), out.data());
  out += text;
  return out;
}

std::string SafetensorsWriter::Serialize() const {
  std::string out = SerializeHeader();
  out.reserve(out.size() + total_bytes());
  for (const auto& [name, e] : entries_) {
    out.append(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size());
  }
  return out;
}

absl::Status SafetensorsWriter::WriteAtomic(const std::string& path) const {
  for (const auto& [k, v] : metadata_) {
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("writing '", path, "': __metadata__ entry ", Quote(k),
                       " is not valid UTF-8"));
    }
  }
  VPTQ_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(path));
  VPTQ_RETURN_IF_ERROR(out.Append(SerializeHeader()));
  for (const auto& [name, e] : entries_) {
    VPTQ_RETURN_IF_ERROR(out.Append(std::string_view(
        reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size())));
  }
  return out.Commit();
}

}  // namespace vptq
