// The program's other translation unit: std::string in and out, an exception of its own,
// and where the C++ runtime the program runs with lives.
#include "greeting.h"

#include <dlfcn.h>
#include <exception>
#include <sstream>

std::string greeting(const std::string &name, int count) {
  if (name == "nobody") throw Refused("refused to greet " + name);
  std::ostringstream out;
  for (int i = 0; i < count; ++i) out << (i ? ", " : "") << "hello " << name;
  return out.str();
}

// The file of the shared object that defines std::terminate: libstdc++.so.6 when the program
// runs with Debian's libstdc++, the program itself when a C++ runtime was linked into it.
const char *runtime_library() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void *>(&std::terminate), &info) || !info.dli_fname) return "?";
  const char *slash = __builtin_strrchr(info.dli_fname, '/');
  return slash ? slash + 1 : info.dli_fname;
}
