// The emulation's command line: run one kernel launch on buffers kept in files.
//
//   emu KERNEL GX GY GZ BX BY BZ ARG...
//
// Each ARG is TYPE:VALUE with TYPE one of i32, f32 (a scalar; floats may be hex, %a), or
// f32*, i64* (a buffer: VALUE is a file of raw little-endian elements). Every ARG's type is
// checked against the kernel's parameter, so a Python caller that passes a float where the
// kernel takes an int fails here, as it would silently misbehave on a GPU. Each buffer is
// loaded into a heap block of exactly its size; the buffers the kernel takes as non-const
// pointers are written back to their files after the launch. The launch itself is checked
// against the limits of a real GPU (1024 threads a block, 65535 blocks in y and z).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <utility>

struct Buffer {
  std::string path;
  void* data;
  size_t bytes;
  bool writable;
};
inline std::vector<Buffer> buffers;

[[noreturn]] inline void fail(const std::string& message) {
  std::fprintf(stderr, "emu: %s\n", message.c_str());
  std::exit(2);
}

// "TYPE:VALUE" -> VALUE, after checking TYPE against what the kernel expects at `index`.
inline const char* value_of(const char* arg, const char* expected, size_t index) {
  const char* colon = std::strchr(arg, ':');
  const std::string type = colon ? std::string(arg, colon - arg) : std::string();
  if (type != expected)
    fail("argument " + std::to_string(index) + " is '" + arg + "' but the kernel takes " +
         expected);
  return colon + 1;
}

inline void* load(const char* path, bool writable) {
  FILE* file = std::fopen(path, "rb");
  if (!file) fail(std::string("cannot open buffer file ") + path);
  std::fseek(file, 0, SEEK_END);
  const size_t bytes = std::ftell(file);
  std::fseek(file, 0, SEEK_SET);
  void* data = std::malloc(bytes ? bytes : 1);
  if (std::fread(data, 1, bytes, file) != bytes) fail(std::string("short read of ") + path);
  std::fclose(file);
  buffers.push_back({path, data, bytes, writable});
  return data;
}

template <typename T>
struct Param;
template <>
struct Param<int> {
  static int parse(const char* arg, size_t i) {
    return std::strtol(value_of(arg, "i32", i), nullptr, 10);
  }
};
template <>
struct Param<float> {
  static float parse(const char* arg, size_t i) {
    return std::strtof(value_of(arg, "f32", i), nullptr);
  }
};
template <>
struct Param<float*> {
  static float* parse(const char* arg, size_t i) {
    return static_cast<float*>(load(value_of(arg, "f32*", i), true));
  }
};
template <>
struct Param<const float*> {
  static const float* parse(const char* arg, size_t i) {
    return static_cast<const float*>(load(value_of(arg, "f32*", i), false));
  }
};
template <>
struct Param<const long long*> {
  static const long long* parse(const char* arg, size_t i) {
    return static_cast<const long long*>(load(value_of(arg, "i64*", i), false));
  }
};

template <typename... P, size_t... I>
void run_with(void (*kernel)(P...), dim3 grid, dim3 block, char** args,
              std::index_sequence<I...>) {
  // Braced initialization evaluates left to right: buffers load in argument order.
  std::tuple<P...> values{Param<P>::parse(args[I], I)...};
  std::apply([&](P... v) { launch(grid, block, kernel, v...); }, values);
}

template <typename... P>
void run(void (*kernel)(P...), dim3 grid, dim3 block, char** args, int n_args) {
  if (n_args != static_cast<int>(sizeof...(P)))
    fail("the kernel takes " + std::to_string(sizeof...(P)) + " arguments, got " +
         std::to_string(n_args));
  run_with(kernel, grid, block, args, std::index_sequence_for<P...>{});
}

struct Entry {
  const char* name;
  void (*run)(dim3, dim3, char**, int);
};
#define EMU_KERNEL(k) \
  Entry{#k, [](dim3 g, dim3 b, char** a, int n) { run(k, g, b, a, n); }}

inline int dispatch(int argc, char** argv, std::initializer_list<Entry> table) {
  if (argc < 8) fail("usage: emu KERNEL GX GY GZ BX BY BZ ARG...");
  unsigned d[6];
  for (int i = 0; i < 6; ++i) d[i] = std::strtoul(argv[2 + i], nullptr, 10);
  const dim3 grid(d[0], d[1], d[2]), block(d[3], d[4], d[5]);
  if (block.x * block.y * block.z > 1024 || block.z > 64)
    fail("block (" + std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
         std::to_string(block.z) + ") exceeds a GPU's 1024 threads (z <= 64)");
  if (grid.y > 65535 || grid.z > 65535 || grid.x * grid.y * grid.z == 0)
    fail("grid (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
         std::to_string(grid.z) + ") is empty or exceeds 65535 blocks in y or z");
  for (const Entry& entry : table) {
    if (std::strcmp(entry.name, argv[1]) != 0) continue;
    entry.run(grid, block, argv + 8, argc - 8);
    for (const Buffer& buffer : buffers) {
      if (buffer.writable) {
        FILE* file = std::fopen(buffer.path.c_str(), "wb");
        std::fwrite(buffer.data, 1, buffer.bytes, file);
        std::fclose(file);
      }
      std::free(buffer.data);
    }
    return 0;
  }
  fail(std::string("no kernel named ") + argv[1]);
}
