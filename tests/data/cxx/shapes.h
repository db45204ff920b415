// Shared by the two translation units of the C++ platform test program.
#include <iostream>

// A static object that says when it is constructed and destroyed (inline: one definition
// shared by both translation units, and modules).
struct Announce {
  const char *name;
  explicit Announce(const char *n) : name(n) { std::cout << "construct " << name << std::endl; }
  ~Announce() { std::cout << "destroy " << name << std::endl; }
};
struct Shape {
  virtual ~Shape();
  virtual int area() const = 0;
};
struct Square : Shape {
  int side;
  explicit Square(int s) : side(s) {}
  int area() const override;
};
struct ShapeError {
  int code;
};
Shape *make_shape(int side);
void fail(const char *what);  // throws std::runtime_error
void throw_shape(int side);   // throws Square
void throw_error(int code);   // throws ShapeError
extern int allocations;       // counted by the program's own operator new
