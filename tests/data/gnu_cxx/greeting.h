#pragma once
#include <stdexcept>
#include <string>

// Thrown in greeting.cpp, caught in main.cpp: another translation unit (and module).
struct Refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string greeting(const std::string &name, int count);
const char *runtime_library();
