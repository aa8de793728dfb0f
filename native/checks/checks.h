// What every checks program prints and how it ends: one line per check ("ok  " or "FAIL", then what was
// checked), then "N failed", and exit status 1 when any failed. test/engine/*-checks.test.ts read exactly that.
#pragma once
#include <cstdio>
#include <exception>
#include <functional>
#include <string>

namespace dllm::checks {

inline int failures = 0;

inline void expect(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) failures++;
}

// Whether f throws an E (any exception by default): for checks that something is refused.
template <typename E = std::exception>
bool throws(const std::function<void()>& f) {
  try {
    f();
  } catch (const E&) {
    return true;
  }
  return false;
}

// Runs the checks and returns the program's exit status. An exception (a kernel that fails to launch, a device
// that is not there) counts as one failure; the checks before it still print.
inline int run(const std::function<void()>& all) {
  try {
    all();
  } catch (const std::exception& e) {
    expect(false, std::string("the checks ran to the end: ") + e.what());
  }
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace dllm::checks
