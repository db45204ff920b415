// What the platform must give a C++ program (allvm/platform/cxx.py): exceptions and RTTI across translation
// units and modules, static constructors/destructors in order (also on exit()), thread_local,
// std::thread, iostreams and a program-replaced operator new/delete.
#include "shapes.h"
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

int allocations = 0;
int large_allocations = 0;  // only the C++ runtime's stream buffer makes one here
void *operator new(std::size_t size) {
  ++allocations;
  large_allocations += size >= 100000;
  if (void *p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }

namespace {
Announce main_static("main");
thread_local int per_thread = 1;

Announce &lazy() {  // constructed on first use: destroyed first, at exit() too
  static Announce instance("lazy");
  return instance;
}
}  // namespace

int main(int argc, char **argv) {
  lazy();
  try {
    fail("thrown in shapes.cpp");
  } catch (const std::exception &e) {
    std::cout << "caught " << typeid(e).name() << ": " << e.what() << std::endl;
  }
  try {
    throw_shape(3);
  } catch (const Shape &s) {
    std::cout << "caught a Shape of area " << s.area() << ", a Square: "
              << (typeid(s) == typeid(Square)) << std::endl;
  }
  try {
    throw_error(42);
  } catch (ShapeError e) {
    std::cout << "caught ShapeError " << e.code << std::endl;
  }
  Shape *shape = make_shape(4);
  Square *square = dynamic_cast<Square *>(shape);
  std::cout << "dynamic_cast: " << (square ? square->area() : -1) << " " << typeid(*shape).name()
            << std::endl;
  delete shape;
  try {
    (void)std::vector<int>(2).at(5);
  } catch (const std::out_of_range &) {
    std::cout << "caught out_of_range from the C++ runtime" << std::endl;
  }
  int seen = 0;
  std::thread worker([&seen] { per_thread += 10; seen = per_thread; });
  worker.join();
  std::cout << "thread_local: worker " << seen << ", main " << per_thread << std::endl;
  std::ostringstream text;
  text << std::string(argc > 1 ? argv[1] : "none") << " " << 1.5;
  std::cout << "iostreams: " << text.str() << std::endl;
  std::ostringstream large;
  for (int i = 0; i < 20000; i++) large << "0123456789";  // grows in libc++'s stringbuf
  std::cout << "replaced operator new used: " << (allocations > 0)
            << ", by the C++ runtime: " << (large_allocations > 0) << std::endl;
  if (argc > 1 && std::strcmp(argv[1], "exit") == 0) std::exit(3);
  return 0;
}
